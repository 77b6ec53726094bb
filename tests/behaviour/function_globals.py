"""A function's `__globals__` is the module's namespace: the hoisted name would appear in it."""

# expect: declined: `__globals__`
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


print(build(2), "causal" in build.__globals__)
