"""ESP009 claimed the BlockMask only reaches `flex_attention`, but `flex_attention` is a later shim that reads
the mask's batch dimension. Not torch's call: no ESP009."""

# expect: silent ESP009
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def attend(q, k, v):
    block_mask = create_block_mask(causal, q.shape[0], None, q.shape[-2], k.shape[-2], device="cpu")
    return flex_attention(q, k, v, block_mask=block_mask)


torch_flex_attention = flex_attention


def flex_attention(query, key, value, block_mask):
    print("batches in the mask:", block_mask.shape[0])
    return torch_flex_attention(query, key, value, block_mask=block_mask)


q = torch.ones(2, 1, 128, 8)
print(round(float(attend(q, q, q).sum()), 3))
