"""Detected and fixed: a walrus lambda passed inline, and a nested mask function that calls itself."""

# expect: fixed
from torch.nn.attention.flex_attention import create_block_mask, create_mask

staircase = "a module-level name: the hoisted function is renamed, and so is its recursive call"


def build(n):
    dense = create_mask(fn := lambda b, h, q, kv: q >= kv, None, None, n, n)
    return dense, fn(0, 0, 1, 0)


def build_recursive(n):
    def staircase(b, h, q, kv):
        if q <= 0 or kv <= 0:
            return q >= kv
        return staircase(b, h, q - 1, kv - 1)

    return create_block_mask(staircase, None, None, n, n)


print(build(3), build_recursive(4), staircase)
