"""`and`/`or` over comparisons of the parameters, each reading the same parameters: `&`/`|` give the same
value and type for numbers, tensors and mixes, and create_mask runs."""

# expect: fixed ESP008
from _observe import direct_calls, under_create_mask
from torch.nn.attention.flex_attention import create_mask


def window(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx and (q_idx - kv_idx < 4 or q_idx // 2 == kv_idx // 2)


def block_causal(b, h, q_idx, kv_idx):
    return q_idx % 4 == kv_idx % 4 or -q_idx * 2 + 1 < -kv_idx


def build(n):
    return create_mask(window, None, None, n, n), create_mask(block_causal, None, None, n, n)


for fn in (window, block_causal):
    direct_calls(fn)
    under_create_mask(fn)
