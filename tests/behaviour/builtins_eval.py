"""`builtins.eval` is `eval` by another route: the hoisted name would appear to it."""

# expect: declined: the module uses `builtins.eval`
import builtins

from torch.nn.attention.flex_attention import create_block_mask


def defined(name):
    try:
        builtins.eval(name)
    except NameError:
        return False
    return True


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


print(build(2), defined("causal"))
