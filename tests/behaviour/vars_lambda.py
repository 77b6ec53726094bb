"""`vars()` sees a lambda bound to a local name."""

# expect: declined: calls `vars()`
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    mask = lambda b, h, q, kv: q >= kv
    names = sorted(vars())
    return names, create_block_mask(mask, None, None, n, n)


print(build(2)[0])
