"""A module-level helper reads its caller's locals through the frame: the nested function's name is among
them today, not once it is hoisted."""

# expect: declined: a function of the module inspects frames
import sys

from torch.nn.attention.flex_attention import create_block_mask


def local_names():
    return sorted(name for name in sys._getframe(1).f_locals if not name.startswith("_"))


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return local_names(), create_block_mask(causal, None, None, n, n)


print(build(2))
