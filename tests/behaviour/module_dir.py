"""`dir()` at module level lists the module's names: a hoisted function would be one more."""

# expect: declined: the module calls `dir()`
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


print(build(2), [name for name in dir() if not name.startswith("__")])
