"""Plan and drive a verify run: two worker processes (original, fixed), the same phases, one report.

Each variant runs in its own subprocess so that import-time side effects (registries that refuse a
second registration) cannot collide and each process's memory belongs to one variant only. Phases that
measure time or memory run one worker at a time; latency alternates between the two workers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .options import INSTALL_HINT, HarnessError, VerifyOptions
from .source import locate, read_sources

VARIANTS = ("original", "fixed")
ProgressCallback = Callable[[int], None]


class _WorkerProcess:
    """One `python -m esper_lint.harness.worker` child and its JSON-lines conversation."""

    def __init__(self, variant: str, workdir: Path) -> None:
        self.variant = variant
        self.log_path = workdir / f"{variant}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "esper_lint.harness.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            encoding="utf-8",
        )

    def send(self, message: dict[str, Any]) -> None:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()
        except BrokenPipeError:
            raise self._crashed() from None

    def receive(self, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        stdout: IO[str] | None = self.proc.stdout
        assert stdout is not None
        while True:
            line = stdout.readline()
            if not line:
                raise self._crashed()
            message: dict[str, Any] = json.loads(line)
            if "progress" in message:
                if on_progress is not None:
                    on_progress(message["progress"])
                continue
            if "error" in message:
                where = "the module under test" if message.get("user") else "the harness"
                raise HarnessError(f"{self.variant} variant: {message['error']} (raised in {where})")
            result: dict[str, Any] = message["ok"]
            return result

    def call(self, message: dict[str, Any], on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        self.send(message)
        return self.receive(on_progress)

    def _crashed(self) -> HarnessError:
        code = self.proc.wait()
        self._log.flush()
        tail = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()][-1:]
        detail = f": {tail[0].strip()}" if tail else ""
        return HarnessError(f"{self.variant} variant: the worker process stopped (exit code {code}){detail}")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "exit"})
                self.proc.wait(timeout=30)
            except (HarnessError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._log.close()


def check_torch() -> None:
    if importlib.util.find_spec("torch") is None:
        raise HarnessError(f"`esper-lint verify` runs your module and needs torch: {INSTALL_HINT}")


def run(
    options: VerifyOptions,
    on_phase: Callable[[str, int], ProgressCallback | None] | None = None,
) -> dict[str, Any]:
    """Run every phase for both variants and return the report (see report.py for its layout).

    `on_phase(label, total)` is called before long phases and may return a callback that receives the
    number of steps done so far (used for the progress bar).
    """
    check_torch()
    if not options.path.is_file():
        raise HarnessError(f"{options.path}: no such file")
    location = locate(options.path)
    sources = read_sources(options.path)
    with tempfile.TemporaryDirectory(prefix="esper-lint-verify-") as tmp:
        workdir = Path(tmp)
        workers: dict[str, _WorkerProcess] = {}
        try:
            for variant in VARIANTS:
                (workdir / variant).mkdir()
                source_file = workdir / variant / "source.py"
                source_file.write_bytes(sources.original if variant == "original" else sources.fixed)
                workers[variant] = _WorkerProcess(variant, workdir)
                workers[variant].send(
                    {
                        "cmd": "setup",
                        "variant": variant,
                        "path": str(options.path.resolve()),
                        "root": str(location.root),
                        "module": location.name,
                        "is_package": location.is_package,
                        "source_file": str(source_file),
                        "out_dir": str(workdir / variant),
                        "options": options.to_json(),
                    }
                )
            # Both workers import torch and the module concurrently; everything timed runs one at a time.
            sections: dict[str, dict[str, Any]] = {v: {"setup": workers[v].receive()} for v in VARIANTS}
            for phase in ("equivalence", "retention"):
                for variant in VARIANTS:
                    sections[variant][phase] = workers[variant].call({"cmd": phase})
            _memory(options, workers, sections, on_phase)
            latency = _latency(options, workers)
            if options.compile:
                for variant in VARIANTS:
                    sections[variant]["compile"] = workers[variant].call(
                        {"cmd": "compile", "backend": options.compile_backend}
                    )
            comparison = _compare(workdir, options)
        finally:
            for worker in workers.values():
                worker.close()
    return _assemble(options, location.name, sources, sections, comparison, latency)


def _memory(
    options: VerifyOptions,
    workers: dict[str, _WorkerProcess],
    sections: dict[str, dict[str, Any]],
    on_phase: Callable[[str, int], ProgressCallback | None] | None,
) -> None:
    callback = on_phase("long-running inference", 2 * options.iterations) if on_phase else None
    for offset, variant in enumerate(VARIANTS):

        def step(done: int, base: int = offset * options.iterations) -> None:
            if callback is not None:
                callback(base + done)

        sections[variant]["memory"] = workers[variant].call({"cmd": "memory"}, step)


def _latency(options: VerifyOptions, workers: dict[str, _WorkerProcess]) -> dict[str, Any]:
    """Rounds of forwards, alternating which variant goes first, so drift hits both equally."""
    count = len(options.seq_lens)
    seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for round_ in range(options.latency_rounds):
        order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            reply = workers[variant].call({"cmd": "latency", "count": count, "start": round_ * count})
            seconds[variant].extend(reply["seconds"])
    medians = {v: statistics.median(seconds[v]) * 1000 if seconds[v] else None for v in VARIANTS}
    original, fixed = medians["original"], medians["fixed"]
    return {
        "forwards_per_variant": len(seconds["original"]),
        "rounds": options.latency_rounds,
        "original_median_ms": original,
        "fixed_median_ms": fixed,
        "ratio_fixed_over_original": fixed / original if original and fixed is not None else None,
        # The fastest forward is the least disturbed by other load on a shared machine.
        "original_min_ms": min(seconds["original"]) * 1000 if seconds["original"] else None,
        "fixed_min_ms": min(seconds["fixed"]) * 1000 if seconds["fixed"] else None,
    }


def _compare(workdir: Path, options: VerifyOptions) -> dict[str, Any]:
    import torch

    runs = {v: torch.load(workdir / v / "equivalence.pt", weights_only=True) for v in VARIANTS}
    a, b = runs["original"], runs["fixed"]
    result: dict[str, Any] = {"forwards": len(a["outputs"])}
    result.update(_compare_outputs(a["outputs"], b["outputs"]))
    masks_a, masks_b = a["block_masks"], b["block_masks"]
    result["block_masks_built"] = {"original": len(masks_a), "fixed": len(masks_b)}
    differing = [i for i, (x, y) in enumerate(zip(masks_a, masks_b, strict=False)) if not _masks_equal(x, y)]
    result["block_masks_equal"] = len(masks_a) == len(masks_b) and not differing
    result["block_masks_differing"] = differing
    if options.compile:
        compiled = {v: torch.load(workdir / v / "compile.pt", weights_only=True) for v in VARIANTS}
        result["compiled"] = _compare_outputs(compiled["original"]["outputs"], compiled["fixed"]["outputs"])
    return result


def _compare_outputs(a: list[Any], b: list[Any]) -> dict[str, Any]:
    if len(a) != len(b):
        return {"bit_identical": False, "max_abs_diff": None, "shape_mismatch": True}
    identical = True
    max_diff = 0.0
    for x, y in zip(a, b, strict=True):
        if x.shape != y.shape or x.dtype != y.dtype:
            return {"bit_identical": False, "max_abs_diff": None, "shape_mismatch": True}
        if not x.equal(y):
            identical = False
            diff = (x.double() - y.double()).abs().max().item() if x.numel() else 0.0
            max_diff = max(max_diff, diff if diff == diff else float("inf"))  # NaN counts as a difference
    return {"bit_identical": identical, "max_abs_diff": max_diff, "shape_mismatch": False}


def _masks_equal(x: dict[str, Any], y: dict[str, Any]) -> bool:
    if x["seq_lengths"] != y["seq_lengths"] or x["block_size"] != y["block_size"]:
        return False
    for name, value in x.items():
        other = y.get(name)
        if name in ("seq_lengths", "block_size"):
            continue
        if value is None or other is None:
            if value is not other:
                return False
        elif not value.equal(other):
            return False
    return True


def _assemble(
    options: VerifyOptions,
    module: str,
    sources: Any,
    sections: dict[str, dict[str, Any]],
    comparison: dict[str, Any],
    latency: dict[str, Any],
) -> dict[str, Any]:
    setup = {v: sections[v]["setup"] for v in VARIANTS}
    weights_identical = setup["original"]["weights_sha256"] == setup["fixed"]["weights_sha256"]
    comparison["weights_identical"] = weights_identical
    problems: list[str] = []
    if not weights_identical:
        problems.append("the two variants built different weights from the same seed, so outputs cannot be compared")
    if comparison["shape_mismatch"]:
        problems.append("the variants returned outputs of different shapes or dtypes")
    elif comparison["max_abs_diff"] is not None and comparison["max_abs_diff"] > options.atol:
        problems.append(f"outputs differ by up to {comparison['max_abs_diff']:.3g} (allowed: {options.atol:g})")
    if not comparison["block_masks_equal"]:
        problems.append("the variants built different BlockMasks (block counts or indices differ)")
    compiled = comparison.get("compiled")
    if compiled is not None and (compiled["shape_mismatch"] or (compiled["max_abs_diff"] or 0.0) > options.atol):
        problems.append("compiled outputs differ between the variants")
    equivalent = not problems

    inconsistent = []
    for variant in VARIANTS:
        eq = sections[variant]["equivalence"]
        if eq["stale_mask_mod_calls"] or eq["reference_mismatches"]:
            inconsistent.append(variant)
            problems.append(
                f"{variant}: {eq['reference_mismatches']} of {eq['checked_calls']} flex_attention calls differ from "
                f"attention under the mask as it was built (max abs diff {eq['reference_max_abs_diff']:.3g}); "
                f"{eq['stale_mask_mod_calls']} used a mask_mod that no longer computes its BlockMask's mask "
                "(a closure over a variable that changed later, e.g. a loop variable)"
            )
    original_retention = sections["original"]["retention"]
    return {
        "equivalent": equivalent,
        "max_abs_diff": comparison["max_abs_diff"],
        "mask_mod_retained": bool(
            original_retention["mask_mod_is_function_passed"] and original_retention["function_alive_while_cached"]
        ),
        "masks_consistent": not inconsistent,
        "device": setup["original"]["device"],
        "device_name": setup["original"]["device_name"],
        "torch_version": setup["original"]["torch_version"],
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "file": str(options.path),
        "module": module,
        "options": options.to_json(),
        "fix": {
            "changed": sources.changed,
            "fixes_applied": sources.fixes_applied,
            "remaining_findings": sources.remaining,
        },
        "comparison": comparison,
        "latency": latency,
        "problems": problems,
        "variants": sections,
    }
