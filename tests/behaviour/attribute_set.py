"""An attribute set on the function: per call before, shared by all calls after a hoist."""

# expect: declined: its attribute `.size` is used
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    causal.size = n
    return create_block_mask(causal, None, None, n, n)


first = build(2)
second = build(3)
print(first.mask_mod.size, second.mask_mod.size)
