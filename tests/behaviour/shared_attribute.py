"""Two identical nested functions: the one whose object is written to stays nested, the other moves."""

# expect: declined: its attribute `.size` is used
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    causal.size = n
    return create_block_mask(causal, None, None, n, n)


def build_plain(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


first, second = build(2), build(3)
print(first.mask_mod.size, second.mask_mod.size, build_plain(2))
