"""`__builtins__.eval` is `eval` by another route: the hoisted name would appear to it."""

# expect: declined: `__builtins__`
from torch.nn.attention.flex_attention import create_block_mask

run = __builtins__.eval if hasattr(__builtins__, "eval") else __builtins__["eval"]


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


try:
    found = run("causal")
except NameError:
    found = None
print(build(2), found is not None)
