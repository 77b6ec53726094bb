"""A local one-element tensor read only by a nested mask and an inline score_mod, each passed to the call
that fails on its shape: `torch.tensor([x])` becomes `torch.tensor(x)`, nothing else can see the shape."""

# expect: fixed ESP024
import torch
from _probes import probe
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def build(n):
    limit = torch.tensor([8])

    def sliding(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < limit)

    return create_block_mask(sliding, None, None, n, n, device="cpu")


def attend(q, k, v):
    bias = torch.tensor([0.5])
    return flex_attention(q, k, v, score_mod=lambda score, b, h, q_idx, kv_idx: score + bias * (q_idx - kv_idx))


q = torch.randn(1, 2, 32, 8, generator=torch.Generator().manual_seed(0))
probe("block mask", lambda: build(32))
probe("attention", lambda: attend(q, q, q).sum().round(decimals=3))
