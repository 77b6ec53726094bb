"""A walrus in a later operand binds only when that operand runs: `|` would bind it always."""

# expect: declined ESP008: may raise, bind a name
from _observe import direct_calls, under_create_mask
from torch.nn.attention.flex_attention import create_mask


def window(b, h, q_idx, kv_idx):
    gap = 9
    ahead = q_idx < kv_idx or (gap := q_idx - kv_idx) < 4
    return ahead & (gap < 2)


def build(n):
    return create_mask(window, None, None, n, n)


direct_calls(window)
under_create_mask(window)
