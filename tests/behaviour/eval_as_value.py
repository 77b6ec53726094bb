"""`eval` passed around as a value looks names up by string: the hoisted name would appear to it."""

# expect: declined: the module uses `eval` as a value
from torch.nn.attention.flex_attention import create_block_mask

lookup = eval


def defined(name):
    try:
        lookup(name)
    except NameError:
        return False
    return True


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


print(build(2), defined("causal"))
