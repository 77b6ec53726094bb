"""One variant of the module under test, imported and driven in its own process.

The parent (`driver.py`) starts `python -m esper_lint.harness.worker`, sends a setup message and then one
command per phase as JSON lines on stdin; the worker answers each with one JSON line (progress lines may
come first). Protocol lines travel on a duplicate of the original stdout: fd 1 itself is pointed at
stderr before the user's module is imported, so its prints can never corrupt the protocol.

Everything the worker keeps about the module's masks is a weak reference or a count, so the harness
itself never keeps a mask function, a BlockMask or the module alive, and memory figures are the module's.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import statistics
import sys
import time
import traceback
import tracemalloc
import weakref
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn
from torch.nn.attention import flex_attention as fa

from esper_lint.harness.options import no_cuda_reason, type_phrase
from esper_lint.harness.recorder import Recorder, install, off_by
from esper_lint.harness.variants import CheckError, import_variant, resolve_factory

# --------------------------------------------------------------------------------------------------
# The worker's state and phases
# --------------------------------------------------------------------------------------------------


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _tensor_digest(state: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        digest.update(name.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous().clone()
            digest.update(str((t.dtype, tuple(t.shape))).encode())
            digest.update(bytes(t.untyped_storage()))
    return digest.hexdigest()


class Worker:
    def __init__(self, setup: dict[str, Any], proto: IO[str]) -> None:
        self.setup = setup
        self.proto = proto
        self.opts = setup["options"]
        requested = self.opts["device"]
        if requested == "auto":
            requested = "cuda" if torch.cuda.is_available() else "cpu"
        if requested.startswith("cuda") and not torch.cuda.is_available():
            why = no_cuda_reason(torch.__version__, torch.version.cuda)
            raise CheckError(f"--device cuda: {why}; use --device cpu (or auto)")
        self.device = torch.device(requested)
        # Two workers run at once for most phases: half the cores each, so that their intra-op threads
        # do not spin against each other (the same count in both keeps the outputs comparable).
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
        self.dtype = getattr(torch, self.opts["dtype"])
        self.recorder = Recorder(fa.create_block_mask, fa.flex_attention)
        self._warm_up()
        install(self.recorder)
        try:
            self.module = import_variant(setup)
        except SyntaxError as exc:
            variant = setup["variant"]
            raise CheckError(f"the {variant} source does not compile: {exc.msg} (line {exc.lineno})") from None
        self.factory = resolve_factory(self.module, self.opts["factory"])
        self.out_dir = Path(setup["out_dir"])

    def _warm_up(self) -> None:
        # The first create_block_mask call in a process leaves a one-off reference cycle (torch 2.13):
        # pay it here so that it is never counted against the module.
        def warm(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
            return q_idx >= kv_idx

        with torch.no_grad():
            bm = self.recorder.real_cbm(warm, None, None, 32, 32, device=self.device, BLOCK_SIZE=16)
            x = torch.zeros(1, 1, 32, 16, device=self.device)
            self.recorder.real_flex(x, x, x, block_mask=bm)
        del bm, x
        gc.collect()

    # helpers -------------------------------------------------------------------------------------

    def build(self) -> nn.Module:
        torch.manual_seed(self.opts["seed"])
        result = self.factory(**self.opts["kwargs"])
        if isinstance(result, type):
            result = result()
        if not isinstance(result, nn.Module):
            raise CheckError(
                f"{self.opts['factory']}(...) returned {type_phrase(result)}; the factory must return an nn.Module "
                "instance or class (or be the class itself)"
            )
        return result.to(device=self.device, dtype=self.dtype).eval()

    def make_input(self, seq_len: int) -> torch.Tensor:
        shape = [seq_len if d is None else d for d in self.opts["input_shape"]]
        generator = torch.Generator().manual_seed(self.opts["seed"] * 1_000_003 + seq_len)
        return torch.randn(shape, generator=generator).to(device=self.device, dtype=self.dtype)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def progress(self, done: int, total: int) -> None:
        self.proto.write(json.dumps({"progress": done, "total": total}) + "\n")
        self.proto.flush()

    @staticmethod
    def _output(result: Any) -> torch.Tensor:
        out = result[0] if isinstance(result, (tuple, list)) else result
        if not isinstance(out, torch.Tensor):
            raise CheckError(f"forward returned {type_phrase(out)}; the harness compares tensor outputs")
        return out.detach().cpu()

    # phases --------------------------------------------------------------------------------------

    def setup_info(self) -> dict[str, Any]:
        model = self.build()
        info = {
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else _cpu_name(),
            "torch_version": torch.__version__,
            "module_class": type(model).__qualname__,
            "parameters": sum(p.numel() for p in model.parameters()),
            "weights_sha256": _tensor_digest(model.state_dict()),
        }
        del model
        return info

    def equivalence(self) -> dict[str, Any]:
        """Two passes over the sequence lengths (misses, then hits and evictions); every output kept."""
        model = self.build()
        rec = self.recorder
        rec.reset()
        rec.checking = True
        outputs = []
        try:
            with torch.no_grad():
                for _ in range(2):
                    for seq_len in self.opts["seq_lens"]:
                        outputs.append(self._output(model(self.make_input(seq_len))))
        finally:
            rec.checking = False
        torch.save({"outputs": outputs, "block_masks": rec.saved_masks}, self.out_dir / "equivalence.pt")
        result = {
            "forwards": len(outputs),
            "block_mask_builds": rec.builds,
            "flex_attention_calls": rec.flex_calls,
            "checked_calls": rec.checked_calls,
            "unchecked_calls": dict(rec.unchecked_reasons),
            "stale_mask_mod_calls": rec.stale_calls,
            "broadcast_mask_calls": rec.broadcast_calls,
            "reference_mismatches": rec.reference_mismatches,
            "reference_max_abs_diff": rec.reference_max_abs_diff,
        }
        rec.reset()
        del model
        return result

    def retention(self) -> dict[str, Any]:
        rec = self.recorder
        model = self.build()
        rec.reset()
        gc.collect()
        seq_lens = self.opts["seq_lens"]
        result: dict[str, Any] = {}
        gc.disable()  # everything below must be freed by reference counting alone
        try:
            with torch.no_grad():
                model(self.make_input(seq_lens[0]))
                if rec.first is None:
                    raise CheckError("forward built no BlockMask through create_block_mask; nothing to measure")
                bm_ref, fn_ref = rec.first
                block_mask = bm_ref()
                result["block_mask_cached"] = block_mask is not None
                result["mask_mod_is_function_passed"] = (
                    block_mask is not None and fn_ref is not None and block_mask.mask_mod is fn_ref()
                )
                del block_mask
                result["function_alive_while_cached"] = fn_ref is not None and fn_ref() is not None
                for _ in range(2):
                    for seq_len in seq_lens:
                        model(self.make_input(seq_len))
                result["cache_misses"] = rec.builds
                result["block_mask_alive_after_evictions"] = bm_ref() is not None
                result["function_alive_after_eviction"] = fn_ref is not None and fn_ref() is not None
                result["mask_mod_kept_by_every_block_mask"] = rec.mask_mod_is_argument
                result["distinct_functions_created"] = rec.distinct_functions
                live = [fn for fn in (r() for r in rec.live_functions) if fn is not None]
                result["functions_alive"] = len(live)
                result["untrackable_functions"] = rec.untrackable_functions
                result["function_object_bytes"] = max((_function_bytes(fn) for fn in live), default=0)
                result["captures"] = _captures(live, model)
                result["captured_tensor_bytes_alive"] = _captured_tensor_bytes(live)
                result["block_mask_build_ms"] = 1000 * rec.build_seconds / max(1, rec.builds)
                del live
        finally:
            gc.enable()
        holder = [model]
        del model  # the holder keeps the only reference the harness has
        result.update(self._deletion(holder))
        rec.reset()
        return result

    def _deletion(self, holder: list[nn.Module]) -> dict[str, Any]:
        """Does `del model` free the weights by reference counting, or only when the cyclic GC runs?"""
        gc.collect()
        model = holder.pop()
        module_ref = weakref.ref(model)
        tensor_refs = [weakref.ref(t) for t in (*model.parameters(), *model.buffers())]
        weight_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
        cuda_before = torch.cuda.memory_allocated(self.device) if self.device.type == "cuda" else None
        gc.disable()
        try:
            del model
            freed = module_ref() is None
            held = sum(t.numel() * t.element_size() for t in (r() for r in tensor_refs) if t is not None)
            cuda_held = torch.cuda.memory_allocated(self.device) if cuda_before is not None else None
            collected = gc.collect()
            freed_after_gc = module_ref() is None
        finally:
            gc.enable()
        out: dict[str, Any] = {
            "weight_bytes": weight_bytes,
            "freed_without_gc": freed,
            "bytes_held_until_gc": held,
            "freed_after_gc": freed_after_gc,
            "objects_collected_by_gc": collected,
        }
        if cuda_before is not None and cuda_held is not None:
            out["cuda_bytes_freed_by_del"] = cuda_before - cuda_held
        return out

    def memory(self) -> dict[str, Any]:
        """K forwards cycling the sequence lengths, memory sampled about 100 times."""
        iterations = int(self.opts["iterations"])
        seq_lens = self.opts["seq_lens"]
        rec = self.recorder
        rec.reset()
        self.model = self.build()
        inputs = {n: self.make_input(n) for n in seq_lens}
        every = max(1, iterations // 100)
        samples: list[dict[str, Any]] = []
        gc.collect()
        tracemalloc.start()
        try:
            with torch.no_grad():
                for i in range(1, iterations + 1):
                    self.model(inputs[seq_lens[(i - 1) % len(seq_lens)]])
                    if i % every == 0 or i == iterations:
                        self.sync()
                        sample: dict[str, Any] = {
                            "iteration": i,
                            "tracemalloc_bytes": tracemalloc.get_traced_memory()[0],
                            "rss_bytes": _rss_bytes(),
                        }
                        if self.device.type == "cuda":
                            sample["cuda_allocated_bytes"] = torch.cuda.memory_allocated(self.device)
                            sample["cuda_reserved_bytes"] = torch.cuda.memory_reserved(self.device)
                        samples.append(sample)
                        self.progress(i, iterations)
        finally:
            tracemalloc.stop()
        warmup = _warmup_iterations(iterations, len(seq_lens))
        measured = iterations - warmup
        growth: dict[str, Any] = {}
        if measured >= MIN_GROWTH_ITERATIONS:
            keys = [key for key in samples[0] if key.endswith("_bytes")]
            growth = {key: _growth_per_1000(samples, key, warmup) for key in keys}
            note = (
                f"from {measured} forwards after {warmup} warm-up forwards; spread: the overall rate and "
                f"{GROWTH_SEGMENTS} segments' rates (a spread that reaches 0 shows no growth: 'unclear')"
            )
        else:
            needed = next(n for n in range(iterations, 100 * MIN_GROWTH_ITERATIONS) if _measured(n, len(seq_lens)))
            note = (
                f"too short to tell: {measured} forwards after warm-up, a growth rate needs at least "
                f"{MIN_GROWTH_ITERATIONS} (--iterations {needed} or more)"
            )
        return {
            "iterations": iterations,
            "warmup_iterations": warmup,
            "measured_iterations": measured,
            "block_mask_builds": rec.builds,
            "distinct_functions_created": rec.distinct_functions,
            "functions_alive": sum(1 for r in rec.live_functions if r() is not None),
            "growth_measured": bool(growth),
            "growth_note": note,
            "growth_per_1000_iterations": growth,
            "samples": samples,
        }

    def latency(self, seq_len: int) -> dict[str, Any]:
        """One timed forward of the long-run module: the parent pairs it with the other variant's."""
        x = self.make_input(seq_len)
        with torch.no_grad():
            self.sync()
            begin, begin_cpu = time.perf_counter(), time.process_time()
            self.model(x)
            self.sync()
            return {"seconds": time.perf_counter() - begin, "cpu_seconds": time.process_time() - begin_cpu}

    def compile(self, backend: str) -> dict[str, Any]:
        import torch._dynamo
        from torch._dynamo.utils import counters

        model = self.build()
        torch._dynamo.reset()
        counters.clear()
        compiled = torch.compile(model, backend=backend)
        seq_lens = self.opts["seq_lens"]
        outputs = []
        with torch.no_grad():
            for seq_len in seq_lens:
                outputs.append(self._output(compiled(self.make_input(seq_len))))
            first_pass = counters["frames"]["total"]
            for _ in range(2):  # evictions and rebuilt masks: do new mask functions trigger recompiles?
                for seq_len in seq_lens:
                    compiled(self.make_input(seq_len))
        torch.save({"outputs": outputs}, self.out_dir / "compile.pt")
        # Eager outputs were checked call by call against attention under each mask as built, so compiled
        # outputs off the eager ones are off that mask too (e.g. a mask reading `b` under B=None, ESP007).
        eager = torch.load(self.out_dir / "equivalence.pt", weights_only=True)["outputs"][: len(outputs)]
        off_eager = [off_by(c, e) for c, e in zip(outputs, eager, strict=True)]
        breaks = counters["graph_break"]
        return {
            "max_abs_diff_vs_eager": max((d for d, _ in off_eager), default=0.0),
            "forwards_off_eager": sum(1 for _, off in off_eager if off),
            "backend": backend,
            "frames_compiled": counters["frames"]["total"],
            "frames_compiled_first_pass": first_pass,
            "recompiles_after_first_pass": counters["frames"]["total"] - first_pass,
            "unique_graphs": counters["stats"]["unique_graphs"],
            "graph_breaks": sum(breaks.values()),
            "graph_break_reasons": {reason.splitlines()[0]: n for reason, n in breaks.items()},
        }


# --------------------------------------------------------------------------------------------------
# Comparing the two variants' saved outputs and BlockMasks (run in the original's worker)
# --------------------------------------------------------------------------------------------------


def compare(dirs: list[Path], compiled: bool) -> dict[str, Any]:
    runs = [torch.load(d / "equivalence.pt", weights_only=True) for d in dirs]
    a, b = runs
    result: dict[str, Any] = {"forwards": len(a["outputs"])}
    result.update(_compare_outputs(a["outputs"], b["outputs"]))
    masks_a, masks_b = a["block_masks"], b["block_masks"]
    result["block_masks_built"] = {"original": len(masks_a), "fixed": len(masks_b)}
    differing = [i for i, (x, y) in enumerate(zip(masks_a, masks_b, strict=False)) if not _masks_equal(x, y)]
    result["block_masks_equal"] = len(masks_a) == len(masks_b) and not differing
    result["block_masks_differing"] = differing
    if compiled:
        outputs = [torch.load(d / "compile.pt", weights_only=True)["outputs"] for d in dirs]
        result["compiled"] = _compare_outputs(*outputs)
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


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _function_bytes(fn: Any) -> int:
    size = sys.getsizeof(fn)
    closure = getattr(fn, "__closure__", None) or ()
    if closure:
        size += sys.getsizeof(closure) + sum(sys.getsizeof(cell) for cell in closure)
    return size


def _closure_values(fn: Any) -> list[tuple[str, Any]]:
    code = getattr(fn, "__code__", None)
    closure = getattr(fn, "__closure__", None) or ()
    values: list[tuple[str, Any]] = []
    if code is not None:
        for name, cell in zip(code.co_freevars, closure, strict=False):
            try:
                values.append((name, cell.cell_contents))
            except ValueError:  # empty cell
                continue
    for i, default in enumerate(getattr(fn, "__defaults__", None) or ()):
        values.append((f"<default {i}>", default))
    return values


def _captures(functions: list[Any], model: nn.Module) -> list[dict[str, Any]]:
    """What the live mask functions keep alive, by captured name (first function that has it)."""
    seen: dict[str, dict[str, Any]] = {}
    for fn in functions:
        for name, value in _closure_values(fn):
            if name in seen:
                continue
            entry: dict[str, Any] = {"name": name, "type": type(value).__name__}
            if value is model:
                entry["kind"] = "the module itself"
            elif isinstance(value, nn.Module):
                entry["kind"] = "an nn.Module"
            elif isinstance(value, torch.Tensor):
                entry["kind"] = "tensor"
                entry["bytes"] = value.numel() * value.element_size()
            else:
                entry["kind"] = "value"
            seen[name] = entry
    return list(seen.values())


def _captured_tensor_bytes(functions: list[Any]) -> int:
    tensors: dict[int, int] = {}
    for fn in functions:
        for _, value in _closure_values(fn):
            if isinstance(value, torch.Tensor):
                tensors[id(value)] = value.numel() * value.element_size()
    return sum(tensors.values())


# A growth rate from a few dozen forwards is allocator noise (one run read 39.8 MiB per 1k forwards for one
# variant and 0 B for the identical other): below this many forwards after warm-up none is reported.
MIN_GROWTH_ITERATIONS = 100
GROWTH_SEGMENTS = 4  # the spread: the same rate fitted on consecutive quarters of the measured window


def _warmup_iterations(iterations: int, lengths: int) -> int:
    return min(iterations // 2, max(2 * lengths, iterations // 10))


def _measured(iterations: int, lengths: int) -> bool:
    return iterations - _warmup_iterations(iterations, lengths) >= MIN_GROWTH_ITERATIONS


def _slope_per_1000(points: list[tuple[int, int]]) -> float | None:
    if len({x for x, _ in points}) < 2:
        return None
    return 1000 * statistics.linear_regression([float(x) for x, _ in points], [float(y) for _, y in points]).slope


def _growth_per_1000(samples: list[dict[str, Any]], key: str, warmup: int) -> dict[str, float] | None:
    """Least-squares growth per 1,000 forwards after warm-up, and the spread: the lowest and highest of that
    rate and the same rate fitted on each segment (a step between two segments shows in none of them)."""
    points = [(s["iteration"], s[key]) for s in samples if s["iteration"] > warmup and s.get(key) is not None]
    overall = _slope_per_1000(points)
    if overall is None:
        return None
    size = max(2, len(points) // GROWTH_SEGMENTS)
    segments = [_slope_per_1000(points[i : i + size]) for i in range(0, len(points) - size + 1, size)]
    rates = [overall, *(r for r in segments if r is not None)]
    return {"per_1000": overall, "low": min(rates), "high": max(rates)}


# --------------------------------------------------------------------------------------------------
# Protocol
# --------------------------------------------------------------------------------------------------


def _user_frames(exc: BaseException, root: str | None) -> list[traceback.FrameSummary]:
    """Frames in files under the import root (the user's package), site-packages excluded."""
    if root is None:
        return []
    prefix = os.path.join(os.path.abspath(root), "")
    return [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if os.path.abspath(f.filename).startswith(prefix) and "site-packages" not in f.filename
    ]


def _describe(exc: BaseException, root: str | None) -> dict[str, str]:
    """One line and whose error it is: a failed check ("check"), the user's code ("module"), or ours."""
    if isinstance(exc, CheckError):
        return {"error": str(exc), "origin": "check"}
    message = f"{type(exc).__name__}: {exc}".splitlines()[0]
    frames = _user_frames(exc, root)
    if frames:
        return {"error": f"{message} (at {frames[-1].filename}:{frames[-1].lineno})", "origin": "module"}
    return {"error": message, "origin": "harness"}


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # the module's prints go to stderr, captured by the parent
    sys.stdout = sys.stderr
    worker: Worker | None = None
    root: str | None = None
    for line in sys.stdin:
        message = json.loads(line)
        command = message["cmd"]
        try:
            if command == "setup":
                root = message["root"]
                worker = Worker(message, proto)
                reply: dict[str, Any] = worker.setup_info()
            elif command == "exit":
                break
            elif worker is None:
                raise RuntimeError(f"command {command!r} before setup")
            elif command == "equivalence":
                reply = worker.equivalence()
            elif command == "retention":
                reply = worker.retention()
            elif command == "memory":
                reply = worker.memory()
            elif command == "latency":
                reply = worker.latency(message["seq_len"])
            elif command == "compare":
                reply = compare([Path(d) for d in message["dirs"]], message["compiled"])
            elif command == "compile":
                reply = worker.compile(message["backend"])
            else:
                raise RuntimeError(f"unknown command {command!r}")
            proto.write(json.dumps({"ok": reply}) + "\n")
        except Exception as exc:
            traceback.print_exc()  # full detail in the worker's log
            proto.write(json.dumps(_describe(exc, root)) + "\n")
        proto.flush()


if __name__ == "__main__":
    main()
