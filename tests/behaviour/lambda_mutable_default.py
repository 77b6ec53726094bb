"""A lambda's mutable default is also created per call of the enclosing function."""

# expect: declined: its default `[]`
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    return create_block_mask(lambda b, h, q, kv, _seen=[]: _seen.append(q) or len(_seen) <= 4, None, None, n, n)


for n in (2, 3):
    print(build(n))
