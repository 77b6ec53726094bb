"""`not (q < kv)` returns a Python bool for 0-d tensors, where `q >= kv` returns a tensor; and a NaN argument
is neither `<` nor `>=`. The inversion is offered only behind --unsafe-fixes."""

# expect: unsafe ESP008: `not` returns a Python bool
from _observe import direct_calls, under_create_mask
from torch.nn.attention.flex_attention import create_mask


def not_ahead(b, h, q_idx, kv_idx):
    return not (q_idx < kv_idx)


def build(n):
    return create_mask(not_ahead, None, None, n, n)


direct_calls(not_ahead)
under_create_mask(not_ahead)
