"""Declined: `mask = mask` before the definition fails today (`UnboundLocalError`); deleting it and
hoisting the function would make that path succeed."""

# expect: declined: can run without the definition running first
from torch.nn.attention.flex_attention import create_block_mask


def build(n, early):
    if early:
        causal = causal

    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


try:
    build(3, True)
except UnboundLocalError as error:
    print("fails as before:", type(error).__name__)
print(build(3, False))
