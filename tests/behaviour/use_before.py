"""A use that runs before the definition (the loop's first pass) fails today, and must keep failing."""

# expect: declined: can run without the definition running first
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    out = []
    for _ in range(2):
        try:
            out.append(create_block_mask(causal, None, None, n, n))
        except NameError:
            out.append("unbound")

        def causal(b, h, q, kv):
            return q >= kv

        out.append(create_block_mask(causal, None, None, n, n))
    return out


print(build(2))
