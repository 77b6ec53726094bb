"""Passed through a same-module helper that hands it to the mask API: still only passed as a mask."""

# expect: fixed
from torch.nn.attention.flex_attention import create_block_mask


def make(mask_mod, n):
    return create_block_mask(mask_mod, None, None, n, n)


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return make(causal, n)


print(build(3))
