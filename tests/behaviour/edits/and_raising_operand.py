"""An operand that may raise (`q % kv` when `kv == 0`, `q // kv`) is guarded by the one before it: `&`
would evaluate it always and raise where `and` returned False."""

# expect: declined ESP008: may raise
from _observe import direct_calls, under_create_mask
from torch.nn.attention.flex_attention import create_mask


def divisible(b, h, q_idx, kv_idx):
    return kv_idx != 0 and q_idx % kv_idx == 0


def ratio(b, h, q_idx, kv_idx):
    return kv_idx == 0 or q_idx // kv_idx < 2


def build(n):
    return create_mask(divisible, None, None, n, n), create_mask(ratio, None, None, n, n)


for fn in (divisible, ratio):
    direct_calls(fn)
    under_create_mask(fn)
