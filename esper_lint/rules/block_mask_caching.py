"""Rules about when BlockMasks are built."""

from __future__ import annotations

from collections.abc import Iterator

from ..analysis.model import MaskUse
from ..core.findings import Finding
from .base import Rule

_HEADER = """import torch
from torch import nn
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

"""


class BlockMaskPerForward(Rule):
    code = "ESP005"
    name = "block-mask-per-forward"
    summary = "A BlockMask that depends only on shapes is rebuilt on every forward call."
    what_it_does = (
        "Finds `create_block_mask` evaluated unconditionally in a module's `forward` (not under an `if`, "
        "a loop, `try`, or a short-circuit) when every mask function it receives captures nothing: a "
        "module-level function, a capture-free nested function or lambda, or `and_masks`/`or_masks` of "
        "those."
    )
    why_bad = (
        "A mask function that captures nothing depends only on the indices it is given, so the BlockMask "
        "is a pure function of its size arguments (B, H, Q_LEN, KV_LEN, BLOCK_SIZE, device). Building it "
        "evaluates the mask over the whole Q_LEN x KV_LEN grid on every step: work that a per-shape cache "
        "does once. Per-batch masks (closures over document ids, lengths) are not flagged."
    )
    example = (
        _HEADER
        + """
class Attention(nn.Module):
    def forward(self, q, k, v):
        block_mask = create_block_mask(causal, None, None, q.shape[-2], k.shape[-2])
        return flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    use_instead = (
        _HEADER
        + """
class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self._masks = {}

    def forward(self, q, k, v):
        key = (q.shape[-2], k.shape[-2], q.device)
        if key not in self._masks:
            self._masks[key] = create_block_mask(causal, None, None, key[0], key[1], device=q.device)
        return flex_attention(q, k, v, block_mask=self._masks[key])
"""
    )
    fix_safety = "No automatic fix: where to keep the cache (and how large it may grow) is the module's choice."
    VALID = (
        _HEADER
        + """
class Attention(nn.Module):
    def forward(self, q, k, v, document_ids):
        def same_doc(b, h, qi, kv):  # per-batch mask: depends on this batch's data
            return document_ids[qi] == document_ids[kv]
        block_mask = create_block_mask(same_doc, None, None, q.shape[-2], k.shape[-2])
        return flex_attention(q, k, v, block_mask=block_mask)
""",
        _HEADER
        + """
class Attention(nn.Module):
    def forward(self, q, k, v):
        n = q.shape[-2]
        if n not in self._masks:
            self._masks[n] = create_block_mask(causal, None, None, n, n)
        return flex_attention(q, k, v, block_mask=self._masks[n])
""",
    )
    INVALID = (
        _HEADER
        + """
class Attention(nn.Module):
    def forward(self, q, k, v):
        block_mask = create_block_mask(causal, None, None, q.shape[-2], k.shape[-2])
        return flex_attention(q, k, v, block_mask=block_mask)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        if not (use.per_forward and use.mask_is_capture_free):
            return
        api = use.api.rsplit(".", 1)[-1]
        yield self.finding(
            path,
            use,
            f"`{api}` runs on every `forward` call ({use.caller}), re-evaluating a mask that captures "
            "nothing over the whole sequence grid each step. Build the BlockMask once per shape and "
            "cache it (e.g. a dict keyed by sequence length).",
        )
