"""Comparisons reading different parameters: called with a Python int for one and a tensor for the other,
`and` returns the Python bool it stopped at where `&` returns a tensor."""

# expect: declined ESP008: read different parameters
from _observe import direct_calls, under_create_mask
from torch.nn.attention.flex_attention import create_mask


def inside(b, h, q_idx, kv_idx):
    return q_idx < 4 and kv_idx < 4


def build(n):
    return create_mask(inside, None, None, n, n)


direct_calls(inside)
under_create_mask(inside)
