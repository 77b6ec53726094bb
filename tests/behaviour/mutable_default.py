"""A mutable default is a new list per `def`; hoisted, every call would share one."""

# expect: declined: its default `[]`
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv, _seen=[]):
        _seen.append(q)
        return q >= kv and len(_seen) < 100

    return create_block_mask(causal, None, None, n, n)


for n in (4, 8, 12):
    print(build(n))
