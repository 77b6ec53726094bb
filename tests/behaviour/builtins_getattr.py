"""`getattr(builtins, "eval")` reaches `eval` without spelling `builtins.eval`: the hoisted name would appear
to it."""

# expect: declined: the module uses the `builtins` module as a value
import builtins

from torch.nn.attention.flex_attention import create_block_mask

run = getattr(builtins, "ev" + "al")


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


try:
    found = run("causal") is not None
except NameError:
    found = False
print(build(2), found)
