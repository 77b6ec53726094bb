"""A module name used as a default is safe only if nothing rebinds it (here through `global`)."""

# expect: declined: its default `WINDOW`
from torch.nn.attention.flex_attention import create_block_mask

WINDOW = 1


def widen():
    global WINDOW
    WINDOW = 2


def build(n):
    def window(b, h, q, kv, w=WINDOW):
        return abs(q - kv) <= w

    return create_block_mask(window, None, None, n, n)


print(build(4))
widen()
print(build(4))
