"""`locals()` in the enclosing function lists the nested function's name."""

# expect: declined: calls `locals()`
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    names = sorted(locals())
    return names, create_block_mask(causal, None, None, n, n)


print(build(2)[0])
