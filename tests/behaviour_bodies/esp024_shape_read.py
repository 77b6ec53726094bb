"""A local one-element tensor that the enclosing function also reads itself: its shape is observable, so
the fix is unsafe although the mask is nested."""

# expect: unsafe ESP024
import torch
from _probes import probe
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    limit = torch.tensor([8])
    print("limit shape", tuple(limit.shape))

    def sliding(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < limit)

    return create_block_mask(sliding, None, None, n, n, device="cpu")


probe("block mask", lambda: build(32))
