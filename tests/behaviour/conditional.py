"""Defined under `if`: the path without the definition fails today, and must keep failing."""

# expect: declined: can run without the definition running first
from torch.nn.attention.flex_attention import create_block_mask


def build(n, flag):
    if flag:

        def causal(b, h, q, kv):
            return q >= kv

    return create_block_mask(causal, None, None, n, n)


print(build(2, True))
try:
    build(2, False)
except NameError as exc:
    print(type(exc).__name__)
