"""The function is returned: callers could tell the per-call objects apart, or see them merged."""

# expect: declined: it is returned
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    create_block_mask(causal, None, None, n, n)
    return causal


print(build(2) is build(3))
