"""Called and passed as a mask only, with literal and constant defaults: hoisting is unobservable."""

# expect: fixed
from torch.nn.attention.flex_attention import and_masks, create_block_mask, create_mask

WINDOW = 2


def build(n):
    def band(b, h, q, kv, width=WINDOW, offset=-1, label=("band", None)):
        return abs(q - kv + offset + 1) <= width

    def causal(b, h, q, kv) -> bool:
        return q >= kv

    assert causal(0, 0, 1, 0)
    dense = create_mask(band, None, None, n, n)
    return dense, create_block_mask(and_masks(causal, band), None, None, n, n)


class Server:
    def __init__(self, n):
        self.mask = create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)


for n in (3, 5):
    print(build(n), Server(n).mask)
