"""Instrumentation inside a harness worker: pass-through wrappers around torch's create_block_mask and
flex_attention that count mask builds, track mask functions and BlockMasks through weak references only,
and check each attention call's output against the dense reference while asked to."""

from __future__ import annotations

import functools
import inspect
import time
import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import flex_attention as fa

from ..core.apis import BLOCK_MASK_TENSORS

# Above this many elements the creation-time dense mask is not materialised (the check is skipped).
_MAX_DENSE_ELEMENTS = 64 * 1024 * 1024
_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10, torch.float16: 1e-2, torch.bfloat16: 3e-2}


class Recorder:
    """Counts mask builds and tracks mask functions and BlockMasks through weak references only."""

    def __init__(self, real_create_block_mask: Callable[..., Any], real_flex: Callable[..., Any]) -> None:
        self.real_cbm = real_create_block_mask
        self.real_flex = real_flex
        self.cbm_signature = inspect.signature(real_create_block_mask)
        self.flex_signature = inspect.signature(real_flex)
        self.checking = False  # equivalence phase: snapshot dense masks and check every flex_attention call
        self.reset()

    def reset(self) -> None:
        self.builds = 0
        self.build_seconds = 0.0
        self.distinct_functions = 0  # mask-function objects seen for the first time
        self.untrackable_functions = 0  # objects that do not support weak references
        self.live_functions: list[weakref.ref[Any]] = []  # distinct ones, pruned when they die
        self.mask_mod_is_argument = True  # every BlockMask kept the very object it was given
        self.first: tuple[weakref.ref[Any], weakref.ref[Any] | None] | None = None  # (BlockMask, function)
        self.snapshots: dict[int, tuple[weakref.ref[Any], Any, tuple[Any, ...]]] = {}
        self.saved_masks: list[dict[str, Any]] = []
        self.flex_calls = 0
        self.checked_calls = 0
        self.unchecked_reasons: dict[str, int] = {}
        self.stale_calls = 0
        self.broadcast_calls = 0  # BlockMask built for batch 0 / head 0 while the mask differs across b or h
        self.reference_max_abs_diff = 0.0
        self.reference_mismatches = 0

    # create_block_mask ---------------------------------------------------------------------------

    def create_block_mask(self, mask_mod: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        block_mask = self.real_cbm(mask_mod, *args, **kwargs)
        self.build_seconds += time.perf_counter() - start
        self.builds += 1
        self._track(mask_mod, block_mask)
        if self.checking:
            self._snapshot(mask_mod, block_mask, args, kwargs)
        return block_mask

    def _track(self, mask_mod: Any, block_mask: Any) -> None:
        if getattr(block_mask, "mask_mod", None) is not mask_mod:
            self.mask_mod_is_argument = False
        self.live_functions = [r for r in self.live_functions if r() is not None]
        try:
            fn_ref: weakref.ref[Any] | None = weakref.ref(mask_mod)
        except TypeError:
            self.untrackable_functions += 1
            fn_ref = None
        if fn_ref is not None and not any(r() is mask_mod for r in self.live_functions):
            self.distinct_functions += 1
            self.live_functions.append(fn_ref)
        if self.first is None:
            self.first = (weakref.ref(block_mask), fn_ref)

    def _snapshot(self, mask_mod: Any, block_mask: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """What the mask function means now, while the BlockMask is built: the reference for later calls."""
        bound = self.cbm_signature.bind(mask_mod, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        dims = (a["B"], a["H"], a["Q_LEN"], a["KV_LEN"])
        size = (dims[0] or 1) * (dims[1] or 1) * dims[2] * dims[3]
        dense = fa.create_mask(mask_mod, *dims, device=a["device"]) if size <= _MAX_DENSE_ELEMENTS else None
        self.snapshots[id(block_mask)] = (weakref.ref(block_mask), dense, (*dims, a["device"]))
        self.saved_masks.append(
            {
                "seq_lengths": list(block_mask.seq_lengths),
                "block_size": list(block_mask.BLOCK_SIZE),
                **{
                    name: (None if getattr(block_mask, name) is None else getattr(block_mask, name).detach().cpu())
                    for name in BLOCK_MASK_TENSORS
                },
            }
        )

    # flex_attention ------------------------------------------------------------------------------

    def flex_attention(self, query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        out = self.real_flex(query, key, value, *args, **kwargs)
        if self.checking:
            self._check_call(query, key, value, args, kwargs, out)
        return out

    def _unchecked(self, reason: str) -> None:
        self.unchecked_reasons[reason] = self.unchecked_reasons.get(reason, 0) + 1

    def _check_call(self, q: Any, k: Any, v: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """Compare the output with attention under the mask as it was when its BlockMask was built."""
        self.flex_calls += 1
        a = self.flex_signature.bind(q, k, v, *args, **kwargs).arguments
        block_mask: Any = a.get("block_mask")
        if block_mask is None:
            return self._unchecked("no block_mask")
        if a.get("score_mod") is not None:
            return self._unchecked("score_mod (no dense reference)")
        entry = self.snapshots.get(id(block_mask))
        built: Any = entry[0]() if entry is not None else None
        if entry is None or built is not block_mask:
            return self._unchecked("BlockMask not built by create_block_mask")
        _, dense, (batch, heads, q_len, kv_len, device) = entry
        # B/H of None or 1 build the mask for batch 0 / head 0 and broadcast it; the call's own sizes are
        # where the mask function is meant to hold.
        call_batch = q.shape[0] if batch in (None, 1) else batch
        call_heads = q.shape[1] if heads in (None, 1) else heads
        if dense is None or call_batch * call_heads * q_len * kv_len > _MAX_DENSE_ELEMENTS:
            return self._unchecked("mask too large to materialise")
        self.checked_calls += 1
        # Stale: the function the BlockMask keeps no longer computes the mask its block structure encodes.
        now = fa.create_mask(built.mask_mod, batch, heads, q_len, kv_len, device=device)
        stale = not torch.equal(now, dense)
        self.stale_calls += stale
        reference_mask = dense
        if not stale and (call_batch, call_heads) != (dense.shape[0], dense.shape[1]):
            # The mask at every batch and head: what eager attention applies (element by element) and what
            # the BlockMask's broadcast block structure must agree with for compiled kernels to apply it too.
            reference_mask = fa.create_mask(built.mask_mod, call_batch, call_heads, q_len, kv_len, device=device)
            self.broadcast_calls += not torch.equal(reference_mask, dense.expand_as(reference_mask))
        out_t = out[0] if isinstance(out, tuple) else out
        with torch.no_grad():
            reference = F.scaled_dot_product_attention(
                q, k, v, attn_mask=reference_mask, scale=a.get("scale"), enable_gqa=bool(a.get("enable_gqa", False))
            )
            reference = torch.where(reference_mask.any(dim=-1, keepdim=True), reference, torch.zeros_like(reference))
        diff, off = off_by(out_t, reference)
        self.reference_max_abs_diff = max(self.reference_max_abs_diff, diff)
        if off:
            self.reference_mismatches += 1


def install(recorder: Recorder) -> None:
    """Patch torch's module so that `from torch.nn.attention.flex_attention import ...` gets the wrappers."""

    def create_block_mask(mask_mod: Any, *args: Any, **kwargs: Any) -> Any:
        return recorder.create_block_mask(mask_mod, *args, **kwargs)

    def flex_attention(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if recorder.checking:
            return recorder.flex_attention(query, key, value, *args, **kwargs)
        return recorder.real_flex(query, key, value, *args, **kwargs)

    for wrapper, real in ((create_block_mask, recorder.real_cbm), (flex_attention, recorder.real_flex)):
        setattr(fa, real.__name__, functools.update_wrapper(wrapper, real))


def off_by(out: torch.Tensor, reference: torch.Tensor) -> tuple[float, bool]:
    """The largest difference, and whether it exceeds the dtype's tolerance at the reference's scale."""
    if out.shape != reference.shape or not out.numel():
        return (float("inf"), True) if out.shape != reference.shape else (0.0, False)
    diff = (out.float() - reference.float()).abs().max().item()
    limit = _TOLERANCE.get(reference.dtype, 1e-4) * max(1.0, reference.abs().max().item())
    return diff, not diff <= limit  # NaN counts as off
