"""Stored in a container: the program sees one object or several."""

# expect: declined: it is stored in a container
from torch.nn.attention.flex_attention import create_block_mask

seen = set()


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    masks = [causal]
    seen.update(masks)
    return create_block_mask(causal, None, None, n, n)


build(2)
build(3)
print(len(seen))
