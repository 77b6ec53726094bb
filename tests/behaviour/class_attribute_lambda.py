"""A lambda bound in a class body is reached through the class (`Holder.mask`), where uses cannot be followed."""

# expect: declined: it is a class attribute
from torch.nn.attention.flex_attention import create_block_mask


def factory(n):
    class Holder:
        mask = lambda b, h, q, kv: q >= kv
        block_mask = create_block_mask(mask, None, None, n, n)

    Holder.mask.size = n
    return Holder


first, second = factory(2), factory(3)
print(first.mask.size, second.mask.size, first.block_mask)
