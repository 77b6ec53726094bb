"""Defaults that read an attribute or an item freeze a value the program changes later."""

# expect: declined: its default `Cfg.window`
from torch.nn.attention.flex_attention import create_block_mask

SETTINGS = {"window": 1}


class Cfg:
    window = 1


def build(n):
    def window(b, h, q, kv, w=Cfg.window):
        return abs(q - kv) <= w

    def windowed(b, h, q, kv, w=SETTINGS["window"]):
        return abs(q - kv) <= w

    return create_block_mask(window, None, None, n, n), create_block_mask(windowed, None, None, n, n)


print(build(4))
Cfg.window = 2
SETTINGS["window"] = 3
print(build(4))
