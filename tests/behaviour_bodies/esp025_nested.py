"""A nested mask_mod and an inline lambda returning numbers, only ever passed to create_block_mask (which
rejects them): each returns its condition after the fix. (ESP001/ESP002 hoist them as well.)"""

# expect: fixed ESP025
import torch
from _probes import probe
from torch.nn.attention.flex_attention import create_block_mask


def causal_blocks(n):
    def causal(b, h, q_idx, kv_idx):
        return torch.where(q_idx >= kv_idx, 0.0, -float("inf"))

    return create_block_mask(causal, None, None, n, n, device="cpu")


def window_blocks(n):
    return create_block_mask(lambda b, h, q, kv: ((q >= kv) & (q - kv < 8)).int(), None, None, n, n, device="cpu")


probe("causal", lambda: causal_blocks(32))
probe("window", lambda: window_blocks(32))
