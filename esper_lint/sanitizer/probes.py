"""Evaluating mask_mods and score_mods on sampled points, as torch evaluates them, without side effects on
the program: under `torch.no_grad()`, with the sanitizer's own random generator (the program's random
state is never touched), on index tensors made here; the captured tensors are only read.

torch calls a mask_mod under four nested `vmap`s, one per index, with 0-d tensors; one `vmap` over paired
samples gives each call the same 0-d arguments, so the values are the ones torch computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

SAMPLES = 4096  # points per comparison: dense evaluation below this many (q, kv) pairs


class ProbeFailed(Exception):
    """The function could not be evaluated on the probe (an index out of range, randomness, ...): the check
    is inconclusive and reports nothing."""


def warm() -> None:
    _get_item_to_index()


def _get_item_to_index() -> Any:
    from torch._dynamo._trace_wrapped_higher_order_op import TransformGetItemToIndex

    return TransformGetItemToIndex()


class Points:
    """Sampled (q_idx, kv_idx) pairs: every pair when there are at most SAMPLES, else SAMPLES random ones
    (a fixed seed: the same evidence on every run)."""

    def __init__(self, q_len: int, kv_len: int, device: torch.device, samples: int = SAMPLES) -> None:
        total = q_len * kv_len
        if total <= samples:
            flat = torch.arange(total)
        else:
            generator = torch.Generator().manual_seed(0)
            flat = torch.randint(0, total, (samples,), generator=generator)
        self.q = (flat // kv_len).to(device)
        self.kv = (flat % kv_len).to(device)
        self.count = int(flat.numel())
        self.dense = total <= samples

    def full(self, value: int) -> torch.Tensor:
        return torch.full_like(self.q, value)


def eval_mask(
    mask_mod: Callable[..., Any], b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, kv: torch.Tensor
) -> torch.Tensor:
    try:
        with torch.no_grad(), _get_item_to_index():
            out = torch.vmap(mask_mod, in_dims=(0, 0, 0, 0))(b, h, q, kv)
    except Exception as exc:  # the real call will meet (and report) any real error
        raise ProbeFailed(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(out, torch.Tensor):
        raise ProbeFailed(f"returned {type(out).__name__}")
    return out.expand(q.shape) if out.dim() == 0 else out


def eval_score(
    score_mod: Callable[..., Any],
    score: torch.Tensor,
    b: torch.Tensor,
    h: torch.Tensor,
    q: torch.Tensor,
    kv: torch.Tensor,
) -> torch.Tensor:
    try:
        with torch.no_grad(), _get_item_to_index():
            out = torch.vmap(score_mod, in_dims=(0, 0, 0, 0, 0))(score, b, h, q, kv)
    except Exception as exc:
        raise ProbeFailed(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(out, torch.Tensor):
        raise ProbeFailed(f"returned {type(out).__name__}")
    return out.expand(q.shape) if out.dim() == 0 else out


def differing(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many sampled points differ (NaN equal to NaN)."""
    same = (a == b) | (torch.isnan(a) & torch.isnan(b)) if a.is_floating_point() else a == b
    return int((~same).sum().item())


def batch_values(limit: int, most: int = 4) -> list[int]:
    """Which batch (head) indices to compare with index 0: the first few and the last."""
    if limit <= 1:
        return []
    values = list(range(1, min(limit, most)))
    if limit - 1 not in values:
        values.append(limit - 1)
    return values
