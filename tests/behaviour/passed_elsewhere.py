"""Passed to something other than a mask API (here a cache keyed on the function)."""

# expect: declined: it is passed to `id`
from torch.nn.attention.flex_attention import create_block_mask

ids = set()


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    ids.add(id(causal))
    return create_block_mask(causal, None, None, n, n)


kept = [build(2), build(3)]
print(len(ids))
