"""Defined under `if` whose other branch raises: every use still follows the definition."""

# expect: fixed
from torch.nn.attention.flex_attention import create_block_mask


def build(n, flag=True):
    if flag:

        def causal(b, h, q, kv):
            return q >= kv

    else:
        raise ValueError("no mask")
    return create_block_mask(causal, None, None, n, n)


print(build(3))
try:
    build(3, False)
except ValueError as exc:
    print(exc)
