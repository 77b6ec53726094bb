"""A module-level one-element tensor: other code (and other modules) may read it or call the mask directly,
and they see the shape change. Offered as an unsafe fix only."""

# expect: unsafe ESP024
import torch
from _probes import probe
from torch.nn.attention.flex_attention import create_block_mask, create_mask

OFFSET = torch.tensor([4])


def shifted(b, h, q_idx, kv_idx):
    return q_idx - kv_idx < OFFSET


zero = torch.tensor(0)
probe("direct, Python ints", lambda: shifted(0, 0, 9, 2))
probe("direct, 0-d tensors", lambda: shifted(zero, zero, torch.tensor(9), torch.tensor(2)))
probe("create_mask", lambda: create_mask(shifted, 1, 1, 8, 8, device="cpu"))
probe("the tensor", lambda: OFFSET)
probe("block mask", lambda: create_block_mask(shifted, None, None, 32, 32, device="cpu"))
