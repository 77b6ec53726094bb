"""Two inline lambdas in one argument (`a if c else b`, `and_masks(a, b)`): each is a finding of its own, at
its own place, and both are hoisted."""

# expect: fixed
from torch.nn.attention.flex_attention import and_masks, create_block_mask


def build(n, causal):
    return create_block_mask((lambda b, h, q, kv: q >= kv) if causal else (lambda b, h, q, kv: q <= kv), None, None, n, n)


def banded(n):
    return create_block_mask(and_masks(lambda b, h, q, kv: q >= kv, lambda b, h, q, kv: q - kv < 2), None, None, n, n)


print(build(3, True).mask_mod(0, 0, 1, 2), build(3, False).mask_mod(0, 0, 1, 2))
print(banded(4).mask_mod(0, 0, 3, 0), banded(4).mask_mod(0, 0, 3, 2))
