"""A frame's `f_locals` sees the nested function's name."""

# expect: declined: inspects frames (`._getframe`)
import sys

from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    has = "causal" in sys._getframe().f_locals
    return has, create_block_mask(causal, None, None, n, n)


print(build(2)[0])
