"""`_getframe` imported on its own, and the caller's locals read through `getattr`: no `.f_locals` to spell,
and the nested function's name is among them until it is hoisted."""

# expect: declined: a function of the module inspects frames
from sys import _getframe

from torch.nn.attention.flex_attention import create_block_mask


def caller_names():
    return sorted(name for name in getattr(_getframe(1), "f_" + "locals") if not name.startswith("_"))


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return caller_names(), create_block_mask(causal, None, None, n, n)


print(build(2))
