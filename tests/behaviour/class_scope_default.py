"""A lambda evaluated in a class body reads its default from the class (`W = 100`); hoisted to module level
the default would read the module's `W`."""

# expect: declined: which the class body around it binds
from torch.nn.attention.flex_attention import create_mask

W = 1


def make(n):
    class Config:
        W = 100
        dense = create_mask(lambda b, h, q, kv, w=W: q + w >= kv + 99, None, None, n, n)

    return Config.dense


print(sum(sum(row) for row in make(4)))
