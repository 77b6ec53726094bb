"""ESP009 claimed the mask never reads `b`, but the function passed is what the decorator returns: its
wrapper reads `b`. `B=None` would broadcast batch 0's mask. A decorated mask function is unknown: no ESP009."""

# expect: silent ESP009
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

LENGTHS = torch.tensor([128, 64])


def padded(mask_mod):
    def wrapper(b, h, q_idx, kv_idx):
        return mask_mod(b, h, q_idx, kv_idx) & (kv_idx < LENGTHS[b])

    return wrapper


@padded
def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def attend(q, k, v):
    block_mask = create_block_mask(causal, q.shape[0], None, q.shape[-2], k.shape[-2], device="cpu")
    return flex_attention(q, k, v, block_mask=block_mask)


q = torch.randn(2, 1, 128, 8, generator=torch.Generator().manual_seed(0))
print([round(float(x), 3) for x in attend(q, q, q).sum(dim=(1, 2, 3))])
