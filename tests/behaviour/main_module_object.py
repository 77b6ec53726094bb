"""A script reaches its own module object as `sys.modules["__main__"]`: the hoisted name would be one more
attribute of it."""

# expect: declined: reaches its own module object
import sys

from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


print(build(2), hasattr(sys.modules["__main__"], "causal"))
