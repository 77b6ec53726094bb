"""A star import below the enclosing function binds `causal` at module level after the hoisted `def`:
calls made after it would read the imported function."""

# expect: declined: `from ... import *` after
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


from star_helpers import *  # noqa: E402, F403

print(build(2))
