"""A typical FlexAttention model file (benchmark input for the one-file pre-commit latency target).

Block masks for causal, sliding-window and document masking, built once per sequence length and
cached; attention through `flex_attention`. About 150 lines, as a small model file in a real project.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.attention.flex_attention import (
    BlockMask,
    and_masks,
    create_block_mask,
    flex_attention,
    or_masks,
)


@dataclass
class AttentionConfig:
    dim: int = 512
    n_heads: int = 8
    window: int = 256
    block_size: int = 128
    causal: bool = True
    dropout: float = 0.0


def causal_mask(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def prefix_mask(b, h, q_idx, kv_idx):
    return kv_idx < 16


def sliding_window(window: int):
    def mask(b, h, q_idx, kv_idx):
        return q_idx - kv_idx < window

    return mask


def document_mask(document_ids: torch.Tensor):
    def mask(b, h, q_idx, kv_idx):
        return document_ids[b, q_idx] == document_ids[b, kv_idx]

    return mask


def soft_cap(score, b, h, q_idx, kv_idx, cap: float = 30.0):
    return cap * torch.tanh(score / cap)


@functools.lru_cache(maxsize=32)
def cached_causal_block_mask(seq_len: int, device: str = "cpu") -> BlockMask:
    return create_block_mask(causal_mask, None, None, seq_len, seq_len, device=device)


def build_block_mask(config: AttentionConfig, seq_len: int, device: str) -> BlockMask:
    masks = [causal_mask] if config.causal else []
    if config.window:
        masks.append(sliding_window(config.window))
    mask_mod = and_masks(*masks) if masks else or_masks(prefix_mask, causal_mask)
    return create_block_mask(
        mask_mod,
        B=None,
        H=None,
        Q_LEN=seq_len,
        KV_LEN=seq_len,
        device=device,
        BLOCK_SIZE=config.block_size,
    )


class RotaryEmbedding(nn.Module):
    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq_len = x.shape[-2]
        t = torch.arange(seq_len, device=x.device, dtype=self.inv_freq.dtype)
        freqs = torch.outer(t, self.inv_freq)
        cos, sin = freqs.cos(), freqs.sin()
        x1, x2 = x[..., ::2], x[..., 1::2]
        rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
        return rotated.flatten(-2)


class FlexSelfAttention(nn.Module):
    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        self.config = config
        self.head_dim = config.dim // config.n_heads
        self.qkv = nn.Linear(config.dim, 3 * config.dim, bias=False)
        self.out = nn.Linear(config.dim, config.dim, bias=False)
        self.rotary = RotaryEmbedding(self.head_dim)
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self._block_masks: dict[tuple[int, str], BlockMask] = {}

    def block_mask(self, seq_len: int, device: torch.device) -> BlockMask:
        key = (seq_len, str(device))
        if key not in self._block_masks:
            self._block_masks[key] = build_block_mask(self.config, seq_len, str(device))
        return self._block_masks[key]

    def forward(self, x: torch.Tensor, document_ids: torch.Tensor | None = None) -> torch.Tensor:
        batch, seq_len, _ = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.view(batch, seq_len, self.config.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        q, k = self.rotary(q), self.rotary(k)
        if document_ids is None:
            block_mask = self.block_mask(seq_len, x.device)
        else:
            block_mask = create_block_mask(
                and_masks(causal_mask, document_mask(document_ids)),
                batch,
                None,
                seq_len,
                seq_len,
                device=str(x.device),
            )
        y = flex_attention(q, k, v, score_mod=soft_cap, block_mask=block_mask, scale=self.scale)
        y = y.transpose(1, 2).reshape(batch, seq_len, self.config.dim)
        return self.out(y)


class Block(nn.Module):
    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim)
        self.attn = FlexSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.dim)
        self.mlp = nn.Sequential(
            nn.Linear(config.dim, 4 * config.dim),
            nn.GELU(),
            nn.Linear(4 * config.dim, config.dim),
        )

    def forward(self, x: torch.Tensor, document_ids: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), document_ids)
        return x + self.mlp(self.norm2(x))


def tiny_model(layers: int = 2) -> nn.Sequential:
    config = AttentionConfig(dim=64, n_heads=4, window=32, block_size=16)
    return nn.Sequential(*(Block(config) for _ in range(layers)))
