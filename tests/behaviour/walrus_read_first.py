"""Declined: the walrus's variable is read earlier in the same statement (`UnboundLocalError` today);
with the walrus replaced by the hoisted function's name, that read would succeed."""

# expect: declined: in the statement whose walrus binds it
from torch.nn.attention.flex_attention import create_mask


def build(n):
    try:
        return fn(0, 0, 1, 0), create_mask(fn := lambda b, h, q, kv: q >= kv, None, None, n, n)
    except UnboundLocalError as error:
        return type(error).__name__


print(build(3))
