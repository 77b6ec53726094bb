"""A module-level mask_mod returning an additive float mask: create_block_mask rejects it, but create_mask,
direct calls and other modules see its float values. Returning the condition changes them: unsafe only."""

# expect: unsafe ESP025
import torch
from _probes import probe
from torch.nn.attention.flex_attention import create_block_mask, create_mask


def additive(b, h, q_idx, kv_idx):
    return torch.where(q_idx >= kv_idx, 0.0, -float("inf"))


zero = torch.tensor(0)
probe("direct, Python ints", lambda: additive(0, 0, 3, 2))
probe("direct, 0-d tensors", lambda: additive(zero, zero, torch.tensor(3), torch.tensor(2)))
probe("create_mask", lambda: create_mask(additive, 1, 1, 4, 4, device="cpu"))
probe("block mask", lambda: create_block_mask(additive, None, None, 32, 32, device="cpu"))
