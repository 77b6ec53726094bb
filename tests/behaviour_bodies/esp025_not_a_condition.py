"""A cast of something that is not a condition: no boolean to return, so no automatic fix."""

# expect: declined ESP025
from _probes import probe
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def distance(b, h, q_idx, kv_idx):
        return (q_idx - kv_idx).float()

    return create_block_mask(distance, None, None, n, n, device="cpu")


probe("block mask", lambda: build(32))
