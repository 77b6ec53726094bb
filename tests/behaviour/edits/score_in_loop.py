"""`score += x` in a loop with a read after it: the name read in an earlier pass holds the tensor the later
passes update in place; out of place it would keep an older value."""

# expect: declined ESP011: runs in a loop
import torch
from _observe import direct_calls
from torch.nn.attention.flex_attention import flex_attention


def accumulated(score, b, h, q_idx, kv_idx):
    seen = []
    for _ in range(2):
        score += q_idx
        seen.append(score)
    return torch.stack([s * 1 for s in seen]).sum() if isinstance(seen[0], torch.Tensor) else sum(seen)


def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=accumulated)


direct_calls(accumulated, score=True)
