"""A one-element slice: reported, no automatic fix (`t[i]` is the 0-d form, and `t` may have more dims)."""

# expect: declined ESP024
import torch
from _probes import probe
from torch.nn.attention.flex_attention import create_block_mask

LENGTHS = torch.tensor([20, 12, 30])
SECOND = LENGTHS[1:2]


def padding(b, h, q_idx, kv_idx):
    return kv_idx < SECOND


probe("block mask", lambda: create_block_mask(padding, None, None, 32, 32, device="cpu"))
