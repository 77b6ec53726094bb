"""A checked call of a FlexAttention entry point: the checks before it (within the budget), the real call
with the original arguments, ESP008/ESP021 from its errors (re-raised unchanged), and the compile
accounting after it (ESP015, ESP030, ESP016)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import checks, errors, frames, probes
from .records import Location, RuntimeFinding, SanitizerError
from .session import STATE

# A finding about compiles or the eager path comes once the count shows a pattern, not a one-off.
RECOMPILE_THRESHOLD = 4
EAGER_CALLS_THRESHOLD = 10


def _report(findings: list[RuntimeFinding]) -> list[RuntimeFinding]:
    reported = []
    for finding in findings:
        reported.extend(STATE.report(finding))
    return reported


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _device(value: Any) -> torch.device:
    if value is None:
        accelerator = torch.accelerator.current_accelerator() if hasattr(torch, "accelerator") else None
        return accelerator or torch.device("cpu")
    return torch.device(value)


def _bind(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    try:
        bound = _signature(original).bind(*args, **kwargs)
    except TypeError:
        return None  # the real call raises torch's own TypeError
    bound.apply_defaults()
    return dict(bound.arguments)


_SIGNATURES: dict[Any, inspect.Signature] = {}


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    if fn not in _SIGNATURES:
        _SIGNATURES[fn] = inspect.signature(fn)
    return _SIGNATURES[fn]


def _is_mask_mod(fn: Any) -> bool:
    from torch.nn.attention.flex_attention import _get_mod_type, _ModificationType

    try:
        return _get_mod_type(fn) == _ModificationType.MASK_MOD
    except Exception:
        return False


# --------------------------------------------------------------------------- compile accounting
@dataclass
class _Compiles:
    graphs: int = 0
    calls: int = 0
    values: dict[str, list[Any]] = field(default_factory=dict)
    lengths: list[tuple[int, int]] = field(default_factory=list)


_COMPILES: dict[Any, _Compiles] = {}
_EAGER_CALLS: dict[str, int] = {}
_EAGER_SITES: dict[str, tuple[Location | None, Location | None]] = {}  # (call site, definition): no references kept


def _account(
    key: Any,
    compiled: int,
    functions: list[Any],
    site: Location | None,
    lengths: tuple[int, int] | None,
    dynamic_false: bool,
) -> None:
    """Attribute the graphs compiled during one call to the captured numbers that changed (ESP015) or, for
    create_block_mask compiled with dynamic=False, to a new length (ESP030)."""
    record = _COMPILES.setdefault(key, _Compiles())
    record.calls += 1
    if not compiled:
        return
    record.graphs += compiled
    new_length = lengths is not None and lengths not in record.lengths
    if lengths is not None and new_length:
        record.lengths.append(lengths)
    changed_fn = None
    for fn in functions:
        for name, value in frames.captured_numbers(fn).items():
            seen = record.values.setdefault(f"{frames.underlying_code(fn).co_name}.{name}", [])  # type: ignore[union-attr]
            if value not in seen:
                seen.append(value)
                changed_fn = changed_fn or fn
    if record.graphs < RECOMPILE_THRESHOLD:
        return
    varied = {name: values for name, values in record.values.items() if len(values) >= RECOMPILE_THRESHOLD}
    if varied and changed_fn is not None:
        shown = "; ".join(f"`{n.split('.', 1)[1]}` took {len(v)} values ({_values(v)})" for n, v in varied.items())
        name = getattr(frames.underlying_code(changed_fn), "co_name", "?")
        message = (
            f"{record.graphs} graphs were compiled over {record.calls} calls because `{name}` reads Python "
            f"numbers that change: {shown}. Dynamo bakes each value into a new graph (past "
            f"torch._dynamo.config.recompile_limit={_limit()} compiled code falls back to eager); capture a 0-d "
            "tensor instead (`torch.tensor(value)`)."
        )
        evidence = {
            "graphs": record.graphs,
            "calls": record.calls,
            "captured": {n.split(".", 1)[1]: v[:16] for n, v in varied.items()},
        }
        _report([RuntimeFinding("ESP015", message, frames.definition(changed_fn), site, evidence, at_definition=True)])
    elif dynamic_false and len(record.lengths) >= RECOMPILE_THRESHOLD and new_length:
        shown = _values([q for q, _ in record.lengths])
        message = (
            f"torch.compile(create_block_mask, dynamic=False) compiled {record.graphs} graphs for "
            f"{len(record.lengths)} lengths ({shown}): each new length recompiles, and past "
            f"torch._dynamo.config.recompile_limit={_limit()} it silently runs eagerly. Compile it without "
            "dynamic=False (lengths then become dynamic), or round lengths to a few sizes."
        )
        evidence = {"graphs": record.graphs, "calls": record.calls, "lengths": [list(p) for p in record.lengths[:16]]}
        definition = frames.definition(functions[0]) if functions else None
        _report([RuntimeFinding("ESP030", message, definition, site, evidence, at_definition=False)])


def _values(values: list[Any]) -> str:
    return ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")


def _limit() -> int:
    return int(getattr(torch._dynamo.config, "recompile_limit", 8))


def _eager(site: Location | None, mask_mod: Any, score_mod: Any) -> None:
    key = str(site)
    calls = _EAGER_CALLS[key] = _EAGER_CALLS.get(key, 0) + 1
    if key not in _EAGER_SITES:
        fn = score_mod if score_mod is not None else mask_mod
        code = frames.underlying_code(fn)
        _EAGER_SITES[key] = (
            site,
            frames.definition(fn) if code is not None and not frames.is_torch_code(code) else None,
        )
    # Reported at the threshold, then every threshold calls and at the end (flush): the count stays current
    # without a report per call.
    if calls >= EAGER_CALLS_THRESHOLD and calls % EAGER_CALLS_THRESHOLD == 0:
        _report_eager(*_EAGER_SITES[key], calls)


def flush() -> None:
    """The final eager-path counts (at the end of a run, a pytest session or a sanitized block)."""
    for key, calls in list(_EAGER_CALLS.items()):
        if calls >= EAGER_CALLS_THRESHOLD and calls % EAGER_CALLS_THRESHOLD:
            _report_eager(*_EAGER_SITES[key], calls)
    _EAGER_CALLS.clear()
    _EAGER_SITES.clear()


def _report_eager(site: Location | None, definition: Location | None, calls: int) -> None:
    message = (
        f"flex_attention ran its eager (unfused) path {calls} times from this call site: each call "
        "materialises the whole score matrix. Call it through torch.compile (`torch.compile(flex_attention)` "
        "once, or compile the model)."
    )
    _report([RuntimeFinding("ESP016", message, definition, site, {"calls": calls}, at_definition=False)])


# --------------------------------------------------------------------------- the entry points
_OCCURRENCES: dict[Any, int] = {}


def _due(key: Any) -> bool:
    """Probing checks run on the 1st, 2nd, 4th, 8th, ... call with the same functions from the same call site:
    a training loop that builds a mask per step pays for a handful of checks, not one per step."""
    count = _OCCURRENCES[key] = _OCCURRENCES.get(key, 0) + 1
    return count & (count - 1) == 0


def _run_checks(work: Callable[[], list[RuntimeFinding]]) -> list[RuntimeFinding]:
    if not STATE.budget.allows():
        return []
    probes.warm()  # torch's own call imports the same dynamo modules: not the checks' cost
    started = time.perf_counter()
    try:
        return work()
    except SanitizerError:
        raise
    except Exception:  # a check must never break the program: an unexpected input is left to torch
        return []
    finally:
        STATE.budget.charge(time.perf_counter() - started)


def mask_call(
    api: str,
    original: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    compiled: Callable[..., Any] | None,
    dynamic_false: bool,
) -> Any:
    site = frames.call_site(3)
    bound = _bind(original, args, kwargs)
    fn = bound.get("mask_mod", bound.get("mod_fn")) if bound else None
    mask_like = fn is not None and _is_mask_mod(fn)
    device = torch.device("cpu")
    created: list[RuntimeFinding] = []
    codes = tuple(frames.underlying_code(part) for part in frames.components(fn)) if mask_like else ()
    if bound is not None and mask_like and _due(("create", api, str(site), codes)):
        device = _device(bound.get("device"))
        q_len, kv_len = int(bound["Q_LEN"]), int(bound["KV_LEN"])
        B, H = bound["B"], bound["H"]

        def work() -> list[RuntimeFinding]:
            found = checks.non_bool_mask(fn, q_len, kv_len, device, site, api)
            if not found:
                found += checks.broadcast_dims_at_creation(fn, B, H, q_len, kv_len, device, site, api)
            return found

        created = _run_checks(work)
        _report(created)
    before = _graphs() if compiled is not None else 0
    try:
        result = (compiled or original)(*args, **kwargs)
    except Exception as exc:
        if fn is not None:
            finding = errors.classify(exc, frames.components(fn), site)
            if finding is not None:
                _report([finding])
        raise
    if compiled is not None and bound is not None and fn is not None:
        lengths = (int(bound["Q_LEN"]), int(bound["KV_LEN"]))
        _account(
            ("compiled", api, site and str(site), frames.underlying_code(fn)),
            _graphs() - before,
            frames.components(fn),
            site,
            lengths,
            dynamic_false,
        )
    if api == "create_block_mask" and bound is not None and fn is not None:
        info = checks.MaskInfo(fn, bound["B"], bound["H"], int(bound["Q_LEN"]), int(bound["KV_LEN"]), site)
        info.reported = {f.evidence["dim"] for f in created if f.code == "ESP007"}
        checks.BLOCK_MASKS[result] = info
    return result


def flex_call(
    original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], compiled: Callable[..., Any] | None
) -> Any:
    site = frames.call_site(3)
    bound = _bind(original, args, kwargs)
    mask_mod = score_mod = None
    if bound is not None:
        q, k = bound["query"], bound["key"]
        block_mask, score_mod = bound.get("block_mask"), bound.get("score_mod")
        mask_mod = getattr(block_mask, "mask_mod", None)
        shaped = isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and q.dim() == 4 and k.dim() == 4
        crash: list[bool] = [False]

        def work() -> list[RuntimeFinding]:
            found: list[RuntimeFinding] = []
            if block_mask is not None and shaped:
                found += checks.sliced_without_mask_mod(block_mask, site)
                if not found:
                    found += checks.lengths(block_mask, int(q.shape[-2]), int(k.shape[-2]), site)
                    probe = _due(("flex", str(site), frames.underlying_code(mask_mod), tuple(q.shape[:2])))
                    counted, crash[0] = checks.counts(block_mask, q, k, bool(bound.get("enable_gqa")), site, probe)
                    found += counted
            if score_mod is not None and shaped and callable(score_mod) and _score_unchecked(score_mod):
                found += checks.score_mod_checks(score_mod, q, k, block_mask, site)
            return found

        reported = _report(_run_checks(work))
        if crash[0] and STATE.strict:
            refused = [f for f in reported if f.code in ("ESP019", "ESP028")]
            raise SanitizerError(
                "esper-lint sanitize (strict): refused the flex_attention call before it could crash the compiled "
                "kernel:\n" + "\n".join(f.render() for f in refused),
                refused,
            )
    before = _graphs()
    try:
        result = (compiled or original)(*args, **kwargs)
    except Exception as exc:
        functions = ([score_mod] if score_mod is not None else []) + (
            frames.components(mask_mod) if mask_mod is not None else []
        )
        finding = errors.classify(exc, functions, site)
        if finding is not None:
            _report([finding])
        raise
    functions = [
        f for f in (score_mod, mask_mod) if f is not None and not frames.is_torch_code(frames.underlying_code(f))
    ]
    if functions:
        key = ("flex", tuple(frames.underlying_code(f) for f in functions))
        _account(key, _graphs() - before, functions, site, None, False)
    if compiled is None:
        _eager(site, mask_mod, score_mod)
    return result


_SCORE_CHECKED: dict[Any, None] = {}


def _score_unchecked(score_mod: Any) -> bool:
    """Each score_mod (its code and the objects it captures) is checked once."""
    code = frames.underlying_code(score_mod)
    cells = tuple(id(c.cell_contents) for c in (getattr(score_mod, "__closure__", None) or ()) if _filled(c))
    key = (code, cells)
    if key in _SCORE_CHECKED:
        return False
    if len(_SCORE_CHECKED) > 4096:
        _SCORE_CHECKED.clear()
    _SCORE_CHECKED[key] = None
    return True


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def slice_call(original: Callable[..., Any], block_mask: Any, index: Any) -> Any:
    result = original(block_mask, index)
    parent = checks.BLOCK_MASKS.get(block_mask)
    if parent is None:
        q_len, kv_len = block_mask.seq_lengths
        parent = checks.MaskInfo(block_mask.mask_mod, None, None, q_len, kv_len, None)
    q_len, kv_len = result.seq_lengths
    site = frames.call_site(3)
    checks.BLOCK_MASKS[result] = checks.MaskInfo(result.mask_mod, None, None, q_len, kv_len, site, sliced_from=parent)
    return result
