"""A parameter rebound in the body to a float that can be NaN: `not (q < kv)` and `q >= kv` differ there."""

# expect: declined ESP008: rebound in the body
from _observe import direct_calls, under_create_mask
from torch.nn.attention.flex_attention import create_mask


def scaled(b, h, q_idx, kv_idx):
    kv_idx = kv_idx * float("inf")
    return not (q_idx < kv_idx)


def build(n):
    return create_mask(scaled, None, None, n, n)


direct_calls(scaled)
under_create_mask(scaled)
