"""A `globals()` write can overwrite the hoisted module-level name."""

# expect: declined: calls `globals()`
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


globals()["causal"] = "overwritten"
print(build(3))
