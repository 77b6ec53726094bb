"""A default that calls something runs per `def`; hoisted, once at import."""

# expect: declined: its default `next(counter)`
import itertools

from torch.nn.attention.flex_attention import create_block_mask

counter = itertools.count()


def build(n):
    def causal(b, h, q, kv, generation=next(counter)):
        return q + generation >= kv

    return create_block_mask(causal, None, None, n, n)


for _ in range(3):
    print(build(3))
