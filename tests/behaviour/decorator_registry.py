"""A decorator runs each time the `def` runs: a registry sees one entry per call, or one in all if hoisted."""

# expect: declined: it is decorated
from torch.nn.attention.flex_attention import create_block_mask

REGISTRY = []


def register(fn):
    REGISTRY.append(fn.__name__)
    return fn


def build(n):
    @register
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


print(len(REGISTRY))
build(2)
build(3)
print(len(REGISTRY))
