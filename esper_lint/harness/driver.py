"""Plan and drive a verify run: two worker processes (original, fixed), the same phases, one report.

Each variant runs in its own subprocess so that import-time side effects (registries that refuse a
second registration) cannot collide and each process's memory belongs to one variant only. The parent
never imports torch. Phases that count, compare or measure per-process memory run in both workers at
once; latency is timed one forward at a time, in pairs that alternate which variant goes first.
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .options import INSTALL_HINT, HarnessError, VerifyOptions
from .source import check_factory, locate, read_sources
from .stats import RatioEstimate, median_ratio

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
                raise _worker_error(self.variant, message)
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

    def close(self, kill: bool = False) -> None:
        if kill and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
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


def _close_all(workers: list[_WorkerProcess], kill: bool) -> None:
    """Close every worker. Ctrl-C while one exits (it may take seconds) kills them all, the others too, so
    that an interrupted `verify` leaves no worker running."""
    try:
        for worker in workers:
            worker.close(kill=kill)
    except BaseException:
        for worker in workers:
            worker.close(kill=True)
        raise


class _PhaseClock:
    """Wall-clock seconds per phase, so that a slow run says where its time went."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.laps[phase] = round(now - self._last, 3)
        self._last = now


def _worker_error(variant: str, message: dict[str, Any]) -> HarnessError:
    """Say whose error it is: a failed check on the run's inputs, the module under test, or the harness."""
    origin, error = message.get("origin"), message["error"]
    if origin == "check":
        return HarnessError(error)
    if origin == "module":
        return HarnessError(f"{variant} variant: {error} (raised in the module under test)")
    return HarnessError(f"{variant} variant: {error} (an error in esper-lint's harness, not in your module)")


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
    if not options.path.is_file():
        raise HarnessError(f"{options.path}: no such file")
    location = locate(options.path)
    # Static checks first: a wrong file or factory name is reported before torch is even looked for.
    check_factory(options.path, options.factory, location.is_package)
    check_torch()
    sources = read_sources(options.path)
    with tempfile.TemporaryDirectory(prefix="esper-lint-verify-") as tmp:
        workdir = Path(tmp)
        workers: dict[str, _WorkerProcess] = {}
        failed = True
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
            # Both workers import torch and the module concurrently; only latency is timed one at a time.
            clock = _PhaseClock()
            sections: dict[str, dict[str, Any]] = {v: {"setup": workers[v].receive()} for v in VARIANTS}
            clock.lap("setup")
            for phase in ("equivalence", "retention"):
                _in_both(workers, sections, phase, {"cmd": phase})
                clock.lap(phase)
            _memory(options, workers, sections, on_phase)
            clock.lap("memory")
            latency = _latency(options, workers, sections["original"]["setup"]["device"])
            clock.lap("latency")
            if options.compile:
                _in_both(workers, sections, "compile", {"cmd": "compile", "backend": options.compile_backend})
                clock.lap("compile")
            dirs = [str(workdir / v) for v in VARIANTS]
            comparison = workers["original"].call({"cmd": "compare", "dirs": dirs, "compiled": options.compile})
            clock.lap("compare")
            comparison["phase_seconds"] = clock.laps
            failed = False
        finally:
            _close_all(list(workers.values()), kill=failed)
    return _assemble(options, location.name, sources, sections, comparison, latency)


def _in_both(
    workers: dict[str, _WorkerProcess],
    sections: dict[str, dict[str, Any]],
    phase: str,
    message: dict[str, Any],
    progress: dict[str, ProgressCallback] | None = None,
) -> None:
    """The same command in both workers at once (for phases whose figures do not depend on timing)."""
    for variant in VARIANTS:
        workers[variant].send(message)
    for variant in VARIANTS:
        sections[variant][phase] = workers[variant].receive((progress or {}).get(variant))


def _memory(
    options: VerifyOptions,
    workers: dict[str, _WorkerProcess],
    sections: dict[str, dict[str, Any]],
    on_phase: Callable[[str, int], ProgressCallback | None] | None,
) -> None:
    callback = on_phase("long-running inference", 2 * options.iterations) if on_phase else None
    done = dict.fromkeys(VARIANTS, 0)

    def stepper(variant: str) -> ProgressCallback:
        def step(count: int) -> None:
            done[variant] = count
            if callback is not None:
                callback(sum(done.values()))

        return step

    _in_both(workers, sections, "memory", {"cmd": "memory"}, {v: stepper(v) for v in VARIANTS})


def _latency(options: VerifyOptions, workers: dict[str, _WorkerProcess], device: str) -> dict[str, Any]:
    """Timed pairs: one forward of each variant at the same length, back to back, alternating who goes first.

    On the CPU the verdict uses each forward's process CPU time: on a shared machine wall time mostly
    measures how long the process waited for a core, which no pairing cancels. On CUDA it uses wall time
    (CPU time there is the host waiting for the device).
    """
    clocks = ("seconds", "cpu_seconds")
    seconds: dict[str, dict[str, list[float]]] = {v: {c: [] for c in clocks} for v in VARIANTS}
    for round_ in range(options.latency_rounds):
        seq_len = options.seq_lens[round_ % len(options.seq_lens)]
        for variant in VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]:
            reply = workers[variant].call({"cmd": "latency", "seq_len": seq_len})
            for clock in clocks:
                seconds[variant][clock].append(reply[clock])
    clock = "cpu_seconds" if device == "cpu" else "seconds"
    estimates = {c: _ratio_estimate(seconds["original"][c], seconds["fixed"][c], options.seed) for c in clocks}
    estimate = estimates[clock]
    wall = {v: seconds[v]["seconds"] for v in VARIANTS}
    wall_estimate = estimates["seconds"]
    return {
        "clock": "process CPU time" if clock == "cpu_seconds" else "wall clock",
        "wall_ratio": wall_estimate.ratio if wall_estimate else None,
        "wall_ratio_ci95": [wall_estimate.low, wall_estimate.high] if wall_estimate else None,
        "pairs": options.latency_rounds,
        "original_median_ms": statistics.median(wall["original"]) * 1000,
        "fixed_median_ms": statistics.median(wall["fixed"]) * 1000,
        # The fastest forward is the least disturbed by other load on a shared machine.
        "original_min_ms": min(wall["original"]) * 1000,
        "fixed_min_ms": min(wall["fixed"]) * 1000,
        "original_median_cpu_ms": statistics.median(seconds["original"]["cpu_seconds"]) * 1000,
        "fixed_median_cpu_ms": statistics.median(seconds["fixed"]["cpu_seconds"]) * 1000,
        "ratio_fixed_over_original": estimate.ratio if estimate else None,
        "ratio_ci95": [estimate.low, estimate.high] if estimate else None,
        "significant": estimate.significant if estimate else False,
        "verdict": estimate.verdict() if estimate else "not measured",
    }


def _ratio_estimate(original: list[float], fixed: list[float], seed: int) -> RatioEstimate | None:
    ratios = [f / o for o, f in zip(original, fixed, strict=True) if o > 0]
    return median_ratio(ratios, seed=seed) if ratios else None


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
        if eq["broadcast_mask_calls"]:
            inconsistent.append(variant)
            problems.append(
                f"{variant}: {eq['broadcast_mask_calls']} of {eq['checked_calls']} flex_attention calls use a "
                "BlockMask built with B=None or H=None (computed for batch 0 / head 0, then broadcast) whose "
                "mask_mod gives a different mask for other batches or heads: eager outputs are still right, "
                "compiled kernels skip the blocks batch 0 marks full (ESP007); pass B=<batch size> / H=<heads>"
            )
        if sections[variant].get("compile", {}).get("forwards_off_eager"):
            compiled_section = sections[variant]["compile"]
            inconsistent.append(variant)
            problems.append(
                f"{variant}: {compiled_section['forwards_off_eager']} compiled forwards differ from the eager ones "
                f"(max abs diff {compiled_section['max_abs_diff_vs_eager']:.3g}), which match attention under each "
                "mask as built: the compiled kernel did not compute the mask its BlockMask was built from (e.g. a "
                "mask that reads `b` or `h` while the BlockMask was built with B=None or H=None)"
            )
    original_retention = sections["original"]["retention"]
    return {
        "equivalent": equivalent,
        "max_abs_diff": comparison["max_abs_diff"],
        "mask_mod_retained": bool(
            original_retention["mask_mod_is_function_passed"] and original_retention["function_alive_while_cached"]
        ),
        "masks_consistent": not inconsistent,  # every mask computed what it was built from, eager and compiled
        "latency_ratio": latency["ratio_fixed_over_original"],
        "latency_ratio_ci": latency["ratio_ci95"],
        "latency_significant": latency["significant"],
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
        "phase_seconds": comparison.pop("phase_seconds"),
        "variants": sections,
    }
