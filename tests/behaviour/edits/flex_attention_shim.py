"""`flex_attention` rebound by a later `def` (a compatibility shim taking the mask 4th): the BlockMask passed
4th is right for the shim, and `block_mask=` would break it. The call is not torch's: no ESP013."""

# expect: silent ESP013
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def attend(q, k, v):
    mask = create_block_mask(causal, None, None, q.shape[-2], k.shape[-2], device="cpu")
    return flex_attention(q, k, v, mask)


torch_flex_attention = flex_attention


def flex_attention(query, key, value, mask=None, **options):
    return torch_flex_attention(query, key, value, block_mask=mask, **options)


q = torch.ones(1, 1, 128, 8)
try:
    print(round(float(attend(q, q, q).sum()), 3))
except Exception as exc:
    print(type(exc).__name__)
