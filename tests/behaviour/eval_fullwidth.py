"""A builtin spelled in fullwidth letters is that builtin (Python normalizes identifiers): here the one
that looks module names up by string, and the hoisted name would appear to it."""

# expect: declined: could read or bind the new module-level name unseen
from torch.nn.attention.flex_attention import create_block_mask


def defined(name):
    try:
        ｅｖａｌ(name)
    except NameError:
        return False
    return True


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


print(build(2), defined("causal"))
