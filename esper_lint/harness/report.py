"""The verify report as a terminal table, as JSON (`--json`), and as a memory plot (`--plot`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .options import HarnessError

VARIANTS = ("original", "fixed")


def _bytes(value: float | None) -> str:
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1024
    return f"{sign}{value:.1f} GiB"  # pragma: no cover - loop always returns


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _diff(value: float | None, identical: bool) -> str:
    if identical:
        return "0 (bit-identical)"
    return "n/a (shapes differ)" if value is None else f"{value:.3g}"


def render_text(report: dict[str, Any]) -> str:
    """A readable table: the verdict first, then one column per variant."""
    v = report["variants"]
    comparison = report["comparison"]
    lines: list[str] = []
    add = lines.append
    fix = report["fix"]
    add(f"esper-lint verify {report['file']} (module {report['module']})")
    add(f"device: {report['device']} ({report['device_name']}), torch {report['torch_version']}")
    if fix["changed"]:
        add(f"fix: {fix['fixes_applied']} finding(s) fixed in memory; the file itself is unchanged")
    else:
        add("fix: no safe fix applies, so both variants run the same source (a determinism check)")
    for finding in fix["remaining_findings"]:
        add(f"  not fixable: {finding}")
    add("")
    add(f"equivalent:         {str(report['equivalent']).lower()}")
    add(f"max_abs_diff:       {_diff(report['max_abs_diff'], comparison['bit_identical'])}")
    add(f"mask_mod_retained:  {str(report['mask_mod_retained']).lower()}")
    add(f"masks_consistent:   {str(report['masks_consistent']).lower()}")
    add("")

    rows: list[tuple[str, str, str]] = []

    def row(label: str, fn: Any) -> None:
        rows.append((label, *(str(fn(v[name])) for name in VARIANTS)))  # type: ignore[arg-type]

    def section(title: str) -> None:
        rows.append((title, "", ""))

    section("Equivalence")
    row("  forwards compared", lambda s: s["equivalence"]["forwards"])
    row("  BlockMasks built", lambda s: s["equivalence"]["block_mask_builds"])
    rows.append(("  BlockMask tensors equal", _yes(comparison["block_masks_equal"]), ""))
    rows.append(("  weights identical", _yes(comparison["weights_identical"]), ""))
    row("  calls checked vs mask at build", lambda s: s["equivalence"]["checked_calls"])
    row("  outputs off the built mask", lambda s: s["equivalence"]["reference_mismatches"])
    row("  max diff vs built mask", lambda s: f"{s['equivalence']['reference_max_abs_diff']:.3g}")
    row("  calls with a stale mask_mod", lambda s: s["equivalence"]["stale_mask_mod_calls"])
    row("  calls whose mask varies over B/H=None", lambda s: s["equivalence"]["broadcast_mask_calls"])
    section("Retention")
    row("  BlockMask.mask_mod is the function", lambda s: _yes(s["retention"]["mask_mod_is_function_passed"]))
    row("  function alive while cached", lambda s: _yes(s["retention"]["function_alive_while_cached"]))
    row("  function alive after eviction", lambda s: _yes(s["retention"]["function_alive_after_eviction"]))
    row("  cache misses", lambda s: s["retention"]["cache_misses"])
    row("  mask functions created", lambda s: s["retention"]["distinct_functions_created"])
    row("  mask functions alive", lambda s: s["retention"]["functions_alive"])
    row("  bytes per function object", lambda s: _bytes(s["retention"]["function_object_bytes"]))
    row("  captured by the closures", lambda s: _captures(s["retention"]["captures"]))
    row("  captured tensors kept alive", lambda s: _bytes(s["retention"]["captured_tensor_bytes_alive"]))
    row("  del frees module without GC", lambda s: _yes(s["retention"]["freed_without_gc"]))
    row("  bytes held until gc.collect()", lambda s: _bytes(s["retention"]["bytes_held_until_gc"]))
    section(f"Long-running inference ({v['original']['memory']['iterations']} forwards)")
    row("  BlockMasks built", lambda s: s["memory"]["block_mask_builds"])
    row("  mask functions created", lambda s: s["memory"]["distinct_functions_created"])
    if all(v[name]["memory"]["growth_measured"] for name in VARIANTS):
        for key, label in (
            ("tracemalloc_bytes", "Python heap growth / 1k forwards"),
            ("rss_bytes", "RSS growth / 1k forwards"),
            ("cuda_allocated_bytes", "CUDA allocated growth / 1k"),
            ("cuda_reserved_bytes", "CUDA reserved growth / 1k"),
        ):
            if key in v["original"]["memory"]["samples"][0]:
                row(f"  {label}", lambda s, k=key: _growth(s["memory"]["growth_per_1000_iterations"].get(k)))
                row("    spread", lambda s, k=key: _range(s["memory"]["growth_per_1000_iterations"][k]))
    else:
        rows.append(("  memory growth", "too short to tell", ""))
    latency = report["latency"]
    rows.append(
        (
            f"  forward latency, median of {latency['pairs']}",
            f"{latency['original_median_ms']:.3f} ms",
            f"{latency['fixed_median_ms']:.3f} ms",
        )
    )
    rows.append(
        (
            "  forward CPU time, median",
            f"{latency['original_median_cpu_ms']:.3f} ms",
            f"{latency['fixed_median_cpu_ms']:.3f} ms",
        )
    )
    ratio = latency["ratio_fixed_over_original"]
    rows.append((f"  ratio fixed/original ({latency['clock']})", "", "n/a" if ratio is None else f"{ratio:.3f}"))
    if "compile" in v["original"]:
        section(f"torch.compile (backend {v['original']['compile']['backend']})")
        row("  frames compiled", lambda s: s["compile"]["frames_compiled"])
        row("  recompiles after first pass", lambda s: s["compile"]["recompiles_after_first_pass"])
        row("  graph breaks", lambda s: s["compile"]["graph_breaks"])
        row("  forwards off the eager outputs", lambda s: s["compile"]["forwards_off_eager"])
        compiled = comparison["compiled"]
        rows.append(("  compiled max abs diff", _diff(compiled["max_abs_diff"], compiled["bit_identical"]), ""))

    widths = [max(len(r[i]) for r in [("", *VARIANTS), *rows]) for i in range(3)]
    add(f"{'':<{widths[0]}}  {'original':>{widths[1]}}  {'fixed':>{widths[2]}}")
    for label, a, b in rows:
        add(f"{label:<{widths[0]}}  {a:>{widths[1]}}  {b:>{widths[2]}}".rstrip())
    add("")
    add(f"latency: {latency['verdict']} (median ratio of {latency['pairs']} timed pairs, {latency['clock']})")
    memory_note = v["original"]["memory"]["growth_note"]
    add(f"memory growth: {memory_note}")
    if report["problems"]:
        add("")
        for problem in report["problems"]:
            add(f"problem: {problem}")
    return "\n".join(lines) + "\n"


def _growth(value: dict[str, float] | None) -> str:
    if value is None:
        return "n/a"
    unclear = value["low"] <= 0 <= value["high"]  # the spread reaches zero: no growth shown
    return f"{_bytes(value['per_1000'])}{' (unclear)' if unclear else ''}"


def _range(value: dict[str, float] | None) -> str:
    return "n/a" if value is None else f"{_bytes(value['low'])} .. {_bytes(value['high'])}"


def _captures(captures: list[dict[str, Any]]) -> str:
    if not captures:
        return "nothing"
    parts = []
    for c in captures:
        if c["kind"] == "the module itself":
            parts.append(f"{c['name']} (module)")
        elif c["kind"] == "tensor":
            parts.append(f"{c['name']} ({_bytes(c['bytes'])})")
        else:
            parts.append(c["name"])
    return ", ".join(parts)


def write_json(report: dict[str, Any], path: Path) -> None:
    _atomic_write(path, json.dumps(report, indent=2) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    from ..core.atomic_files import write_text_atomic

    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise HarnessError(f"{path}: cannot write the report ({exc.strerror or exc})") from None


def check_plot_available() -> None:
    """Fail before the run, not after it, when --plot cannot be honoured."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise HarnessError("--plot needs matplotlib: pip install 'esper-lint[plot]'")


def write_plot(report: dict[str, Any], path: Path) -> None:
    """Memory over iterations, one line per variant, one panel per measure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = {name: report["variants"][name]["memory"]["samples"] for name in VARIANTS}
    keys = [
        (k, label)
        for k, label in (
            ("tracemalloc_bytes", "Python heap (tracemalloc)"),
            ("rss_bytes", "process RSS"),
            ("cuda_allocated_bytes", "CUDA allocated"),
            ("cuda_reserved_bytes", "CUDA reserved"),
        )
        if samples["original"] and samples["original"][0].get(k) is not None
    ]
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.8 * len(keys)), sharex=True, squeeze=False)
    for ax, (key, label) in zip(axes[:, 0], keys, strict=True):
        for name in VARIANTS:
            xs = [s["iteration"] for s in samples[name]]
            ys = [s[key] / 2**20 for s in samples[name]]
            ax.plot(xs, ys, label=name)
        ax.set_ylabel(f"{label}\nMiB")
        ax.axvline(report["variants"]["original"]["memory"]["warmup_iterations"], color="grey", linestyle=":")
        ax.legend(loc="best")
    axes[-1, 0].set_xlabel("forward iteration (dotted: end of warm-up)")
    fig.suptitle(f"{report['module']} on {report['device']}, torch {report['torch_version']}")
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise HarnessError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
