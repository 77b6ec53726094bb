"""`and` around a comparison grouped by mistake: ESP008's `&` rewrite would keep the grouping, so it declines
(ESP017 reports the grouping itself)."""

# expect: declined ESP008
import torch
from _probes import probe
from torch.nn.attention.flex_attention import create_block_mask


def not_seven(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx & (kv_idx != 7) and kv_idx < 20


zero = torch.tensor(0)
probe("direct, Python ints", lambda: [not_seven(0, 0, q, kv) for q in range(4) for kv in range(4)])
probe("block mask", lambda: create_block_mask(not_seven, None, None, 32, 32, device="cpu"))
