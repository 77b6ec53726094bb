"""The checks, each named by the rule it proves at run time. Each takes what the call was given, evaluates
what it needs on samples (probes.py), and returns findings; none changes an argument or raises (the
strict-mode refusal of a crashing call is decided by the caller, calls.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import frames
from .probes import Points, ProbeFailed, batch_values, differing, eval_mask, eval_score
from .records import HINT, Location, RuntimeFinding


def _name(fn: Any) -> str:
    code = frames.underlying_code(fn)
    return code.co_name if code is not None else type(fn).__name__


def _n(count: int) -> str:
    return f"{count:,}"


@dataclass
class MaskInfo:
    """What create_block_mask was given for a BlockMask the program holds (weakly)."""

    mask_mod: Any
    B: int | None
    H: int | None
    q_len: int
    kv_len: int
    created_at: Location | None
    sliced_from: MaskInfo | None = None
    checked: set[tuple[str, int]] = field(default_factory=set)  # ("b"/"h", size) already compared
    reported: set[str] = field(default_factory=set)  # dims ESP007 already reported when it was built


BLOCK_MASKS: weakref.WeakKeyDictionary[Any, MaskInfo] = weakref.WeakKeyDictionary()


def _finding(
    code: str,
    message: str,
    fn: Any,
    site: Location | None,
    evidence: dict[str, Any],
    at_definition: bool,
    severity: str = "error",
) -> RuntimeFinding:
    return RuntimeFinding(code, message, frames.definition(fn), site, evidence, severity, at_definition)


# --------------------------------------------------------------------------- ESP007 / ESP019
def _dependence(
    mask_mod: Any, dim: str, sizes: dict[str, int], limit: int, q_len: int, kv_len: int, device: torch.device
) -> tuple[Any, int, int, int] | None:
    """Whether `mask_mod` differs between index 0 and another index of `dim` ("b" or "h") below `limit`:
    (the component function that differs, the other index, differing points, sampled points), or None.
    Other indices stay 0, as in the BlockMask torch builds for a broadcast dimension."""
    points = Points(q_len, kv_len, device)
    zero = points.full(0)
    for part in frames.components(mask_mod):
        try:
            base = eval_mask(part, zero, zero, points.q, points.kv)
            for other in batch_values(limit):
                args = {"b": zero, "h": zero}
                args[dim] = points.full(other)
                changed = differing(base, eval_mask(part, args["b"], args["h"], points.q, points.kv))
                if changed:
                    return part, other, changed, points.count
        except ProbeFailed:
            continue
    return None


def broadcast_dims_at_creation(
    mask_mod: Any,
    B: int | None,
    H: int | None,
    q_len: int,
    kv_len: int,
    device: torch.device,
    site: Location | None,
    api: str,
) -> list[RuntimeFinding]:
    """ESP007 when the mask is built: with B (H) of None or 1, a mask that gives another value at b=1 (h=1),
    where the captured data has that row (on CPU an out-of-range index fails the probe, which reports
    nothing; on other devices this is left to flex_attention, where the real sizes are known)."""
    if device.type != "cpu":
        return []
    found = []
    for dim, given in (("b", B), ("h", H)):
        if given not in (None, 1):
            continue
        hit = _dependence(mask_mod, dim, {}, 2, q_len, kv_len, device)  # index 1 only: the sizes are unknown here
        if hit is not None:
            found.append(_esp007(hit, dim, given, api, site, "the captured data has that row"))
    return found


def _esp007(
    hit: tuple[Any, int, int, int], dim: str, given: int | None, api: str, site: Location | None, why: str
) -> RuntimeFinding:
    part, other, changed, count = hit
    arg = "B" if dim == "b" else "H"
    what = "batch" if dim == "b" else "head"
    message = (
        (
            f"{api} was called with {arg}={given} but mask_mod `{_name(part)}` reads `{dim}`: it differs between "
            f"{dim}=0 and {dim}={other} at {_n(changed)} of {_n(count)} sampled points ({why}). The BlockMask holds "
            f"{what} 0's blocks for every {what}, so compiled flex_attention skips blocks the others need (eager "
            f"hides it); pass {arg}=<number of {what}es>."
        )
        .replace("batches>", "batch items>")
        .replace("heades>", "heads>")
    )
    evidence = {"dim": dim, arg: given, "compared": [0, other], "differing": changed, "sampled": count}
    return _finding("ESP007", message, part, site, evidence, at_definition=False)


# --------------------------------------------------------------------------- ESP025
def non_bool_mask(
    mask_mod: Any, q_len: int, kv_len: int, device: torch.device, site: Location | None, api: str
) -> list[RuntimeFinding]:
    points = Points(q_len, kv_len, device, samples=256)
    zero = points.full(0)
    try:
        out = eval_mask(mask_mod, zero, zero, points.q, points.kv)
    except ProbeFailed:
        return []
    if out.dtype == torch.bool:
        return []
    values = sorted({float(v) for v in out.flatten()[:256].tolist()})[:4]
    if api == "create_mask":
        consequence = (
            f"create_mask returns a {out.dtype} tensor, which scaled_dot_product_attention adds to the scores "
            "instead of masking with it"
        )
    else:
        consequence = f"{api} raises `AssertionError: mask.dtype must be torch.bool`"
    message = (
        f"mask_mod `{_name(mask_mod)}` returns {out.dtype} (values {values}), not a boolean: {consequence}. "
        "Return the condition itself (drop `.float()`/`.int()`, or `torch.where(cond, 0.0, -inf)` -> `cond`)."
    )
    evidence = {"dtype": str(out.dtype).replace("torch.", ""), "values": values}
    return [_finding("ESP025", message, mask_mod, site, evidence, at_definition=True)]


# --------------------------------------------------------------------------- flex_attention's BlockMask
def sliced_without_mask_mod(block_mask: Any, site: Location | None) -> list[RuntimeFinding]:
    from torch.nn.attention.flex_attention import _sliced_mask_mod_error

    mask_mod = getattr(block_mask, "mask_mod", None)
    direct = mask_mod is _sliced_mask_mod_error
    if not direct and not _refers_to(mask_mod, _sliced_mask_mod_error):
        return []
    info = BLOCK_MASKS.get(block_mask)
    original = info.sliced_from.mask_mod if info is not None and info.sliced_from is not None else None
    how = (
        "torch raises `Cannot use mask_mod from a sliced BlockMask`"
        if direct
        else "its mask_mod wraps the slice's error stub, which raises as soon as torch calls it"
    )
    message = (
        f"flex_attention got a sliced BlockMask (`block_mask[...]`) without a usable mask_mod: {how}. Assign "
        "the original BlockMask's mask_mod to the slice first (`sliced.mask_mod = block_mask.mask_mod`, "
        "shifted by the slice's offset where it has one)."
    )
    evidence: dict[str, Any] = {"wrapped_stub": not direct}
    if info is not None and info.sliced_from is not None and info.sliced_from.created_at is not None:
        evidence["original_created_at"] = str(info.sliced_from.created_at)
    return [_finding("ESP020", message, original or mask_mod, site, evidence, at_definition=False)]


def _refers_to(fn: Any, target: Any, depth: int = 3) -> bool:
    if fn is None or depth == 0:
        return False
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if value is target or (callable(value) and _refers_to(value, target, depth - 1)):
            return True
    return False


def _counts(block_mask: Any) -> tuple[int, int] | None:
    kv_num_blocks = getattr(block_mask, "kv_num_blocks", None)
    if not isinstance(kv_num_blocks, torch.Tensor) or kv_num_blocks.dim() != 3:
        return None
    return int(kv_num_blocks.shape[0]), int(kv_num_blocks.shape[1])


def is_noop(block_mask: Any) -> bool:
    from torch.nn.attention.flex_attention import _LARGE_SPARSE_BLOCK_SIZE

    return tuple(getattr(block_mask, "BLOCK_SIZE", ())) == (_LARGE_SPARSE_BLOCK_SIZE, _LARGE_SPARSE_BLOCK_SIZE)


def lengths(block_mask: Any, q_len: int, kv_len: int, site: Location | None) -> list[RuntimeFinding]:
    if is_noop(block_mask):
        return []
    built = tuple(int(n) for n in block_mask.seq_lengths)
    if built == (q_len, kv_len):
        return []
    info = BLOCK_MASKS.get(block_mask)
    message = (
        f"flex_attention got a BlockMask built for q_len={built[0]}, kv_len={built[1]} with q_len={q_len}, "
        f"kv_len={kv_len}: torch raises ValueError (and `block_mask._adjust` only crops the mask, which is "
        "wrong for masks that depend on the length). Build the BlockMask for the lengths it meets."
    )
    evidence: dict[str, Any] = {"built_for": list(built), "called_with": [q_len, kv_len]}
    if info is not None and info.created_at is not None:
        evidence["created_at"] = str(info.created_at)
    return [_finding("ESP029", message, block_mask.mask_mod, site, evidence, at_definition=False)]


def counts(
    block_mask: Any, q: torch.Tensor, k: torch.Tensor, enable_gqa: bool, site: Location | None, probe: bool = True
) -> tuple[list[RuntimeFinding], bool]:
    """ESP028 (a batch or head count neither 1 nor the query's), ESP019 (H = key/value heads under GQA while
    the mask reads `h`), and ESP007 at the sizes flex_attention meets. Returns (findings, would crash)."""
    found: list[RuntimeFinding] = []
    sizes = _counts(block_mask)
    if sizes is None or is_noop(block_mask):
        return found, False
    bm_b, bm_h = sizes
    q_b, q_h, kv_h = int(q.shape[0]), int(q.shape[1]), int(k.shape[1])
    mask_mod = block_mask.mask_mod
    info = BLOCK_MASKS.get(block_mask)
    q_len, kv_len = int(q.shape[-2]), int(k.shape[-2])
    crash = False
    if bm_b not in (1, q_b):
        crash = True
        found.append(_esp028("batch size", "B", bm_b, q_b, mask_mod, site, info))
    if bm_h not in (1, q_h):
        crash = True
        hit = None
        if enable_gqa and bm_h == kv_h and _plain(mask_mod):
            hit = _dependence(mask_mod, "h", {}, q_h, q_len, kv_len, q.device)
        if hit is not None:
            part, other, changed, count = hit
            message = (
                f"The BlockMask was built with H={bm_h}, the key/value heads, but the query has {q_h} heads (GQA) "
                f"and mask_mod `{_name(part)}` reads `h`: it differs between h=0 and h={other} at {_n(changed)} of "
                f"{_n(count)} sampled points. Compiled flex_attention indexes the BlockMask by query head, so heads "
                f"get other heads' blocks (eager hides it); build it with H=q.shape[1] ({q_h})."
            )
            evidence = {
                "H": bm_h,
                "query_heads": q_h,
                "kv_heads": kv_h,
                "compared": [0, other],
                "differing": changed,
                "sampled": count,
            }
            found.append(_finding("ESP019", message, part, site, evidence, at_definition=False))
        else:
            found.append(_esp028("head count", "H", bm_h, q_h, mask_mod, site, info))
    # ESP007 where the mask was built for one batch (head) and meets several.
    if probe and _plain(mask_mod) and (info is None or info.sliced_from is None):
        for dim, built, met in (("b", bm_b, q_b), ("h", bm_h, q_h)):
            if built != 1 or met <= 1 or (info is not None and ((dim, met) in info.checked or dim in info.reported)):
                continue
            if info is not None:
                info.checked.add((dim, met))
            hit = _dependence(mask_mod, dim, {}, met, q_len, kv_len, q.device)
            if hit is not None:
                given = (info.B if dim == "b" else info.H) if info is not None else 1
                api = "create_block_mask" if info is not None else "the BlockMask's constructor"
                why = f"flex_attention meets {met} {'batch items' if dim == 'b' else 'heads'}"
                found.append(_esp007(hit, dim, given, api, site, why))
    return found, crash


def _plain(mask_mod: Any) -> bool:
    from torch.nn.attention.flex_attention import _sliced_mask_mod_error, noop_mask

    return mask_mod is not None and mask_mod is not noop_mask and mask_mod is not _sliced_mask_mod_error


def _esp028(
    what: str, arg: str, built: int, met: int, mask_mod: Any, site: Location | None, info: MaskInfo | None
) -> RuntimeFinding:
    message = (
        f"flex_attention got a BlockMask built for {what} {built} with a query of {what} {met} (neither 1 nor "
        f"equal): eager flex_attention silently uses the wrong rows, compiled flex_attention can crash the "
        f"process (SIGFPE or segfault on CPU). Build the BlockMask for the query it meets ({arg}={met}), or "
        f"{arg}=None when the mask does not depend on it."
    )
    evidence: dict[str, Any] = {arg: built, "query": met}
    if info is not None and info.created_at is not None:
        evidence["created_at"] = str(info.created_at)
    return _finding("ESP028", message, mask_mod, site, evidence, at_definition=False)


# --------------------------------------------------------------------------- score_mod: ESP012, ESP011, ESP026
def score_mod_checks(
    score_mod: Callable[..., Any], q: torch.Tensor, k: torch.Tensor, block_mask: Any, site: Location | None
) -> list[RuntimeFinding]:
    q_len, kv_len = int(q.shape[-2]), int(k.shape[-2])
    points = Points(q_len, kv_len, q.device)
    generator = torch.Generator().manual_seed(1)
    dtype = torch.float64 if q.dtype == torch.float64 else torch.float32  # what torch's eager path passes
    scores = torch.randn(points.count, generator=generator, dtype=dtype).to(q.device)
    zero = points.full(0)
    given = scores.clone()
    try:
        first = eval_score(score_mod, given, zero, zero, points.q, points.kv)
        second = eval_score(score_mod, scores + 1.5, zero, zero, points.q, points.kv)
    except ProbeFailed:
        return []
    found: list[RuntimeFinding] = []
    name = _name(score_mod)
    changed = differing(given, scores)
    if changed:
        message = (
            f"score_mod `{name}` changes its `score` argument in place (at {_n(changed)} of {_n(points.count)} "
            "sampled points): eager flex_attention accepts it, torch.compile(flex_attention) fails with "
            "`Mutations detected in score_mod`. Return a new tensor (`return score + bias`)."
        )
        found.append(_finding("ESP011", message, score_mod, site, {"changed": changed, "sampled": points.count}, True))
    if first.dtype == torch.bool:
        message = (
            f"score_mod `{name}` returns torch.bool: flex_attention uses the 0/1 it returns as the attention "
            "score and drops the real scores (compiled, it fails to build). Return `score` modified, and put "
            "the condition in a mask_mod with a BlockMask."
        )
        found.append(_finding("ESP012", message, score_mod, site, {"dtype": "bool"}, True))
        return found
    if not changed and differing(first, second) == 0:
        message = (
            f"score_mod `{name}` returns the same values whatever `score` is (at all {_n(points.count)} sampled "
            "points): flex_attention uses them as the attention scores and the real q·k scores are thrown away. "
            "Return an expression of `score`."
        )
        found.append(
            _finding("ESP012", message, score_mod, site, {"ignores_score": True, "sampled": points.count}, True)
        )
        return found
    masked = torch.isneginf(first) & torch.isneginf(second) & torch.isfinite(scores)
    if int(masked.sum().item()) == 0:
        return found
    skippable = masked
    if block_mask is not None and _plain(getattr(block_mask, "mask_mod", None)):
        try:  # points the BlockMask's mask_mod already masks are skipped already
            kept = eval_mask(block_mask.mask_mod, zero, zero, points.q, points.kv).to(torch.bool)
            skippable = masked & kept
        except ProbeFailed:
            pass
    count = int(skippable.sum().item())
    if count:
        message = (
            f"score_mod `{name}` returns -inf at {_n(count)} of {_n(points.count)} sampled points whatever `score` "
            "is: that is masking, and flex_attention computes every block for it. A mask_mod in a BlockMask gives "
            "the same output and lets flex_attention skip the masked blocks."
        )
        found.append(
            _finding("ESP026", message, score_mod, site, {"masked": count, "sampled": points.count}, True, HINT)
        )
    return found
