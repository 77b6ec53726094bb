"""`eval` imported from `builtins` under another name: the hoisted name would appear to it."""

# expect: declined: the module imports `eval` from `builtins`
from builtins import eval as run

from torch.nn.attention.flex_attention import create_block_mask


def defined(name):
    try:
        run(name)
    except NameError:
        return False
    return True


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


print(build(2), defined("causal"))
