"""The workload behind `esper-lint sanitize`'s overhead figure (docs/benchmarks.md, docs/sanitize.md).

A transformer block (pre-norm attention + MLP) run for 20 steps on CPU. Each step packs documents of new
random lengths into the sequence and builds the BlockMask for them (a document mask and a sliding window,
`and_masks`), then runs the block forward (torch 2.13 has no FlexAttention backward on CPU: "FlexAttention
does not support backward on CPU"). Run it plain and under the
sanitizer and compare whole processes:

    python benchmarks/sanitize_overhead.py
    esper-lint sanitize -- python benchmarks/sanitize_overhead.py

It prints the in-process time of the 20 steps too (`steps: X s`), which leaves out torch's import.
"""

from __future__ import annotations

import time
import warnings

import torch
from torch import nn
from torch.nn.attention.flex_attention import and_masks, create_block_mask, flex_attention

warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")

STEPS, BATCH, HEADS, LENGTH, DIM, WINDOW = 20, 2, 4, 512, 128, 128


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.qkv, self.out = nn.Linear(DIM, 3 * DIM), nn.Linear(DIM, DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, 4 * DIM), nn.GELU(), nn.Linear(4 * DIM, DIM))

    def forward(self, x: torch.Tensor, block_mask: object) -> torch.Tensor:
        b, s, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, s, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        attended = flex_attention(q, k, v, block_mask=block_mask)
        x = x + self.out(attended.transpose(1, 2).reshape(b, s, DIM))
        return x + self.mlp(self.norm2(x))


def document_ids(generator: torch.Generator) -> torch.Tensor:
    """Per batch row: documents of random lengths packed into LENGTH tokens."""
    rows = []
    for _ in range(BATCH):
        cuts = torch.randint(1, LENGTH, (5,), generator=generator).sort().values
        ids = torch.zeros(LENGTH, dtype=torch.long)
        for cut in cuts:
            ids[cut:] += 1
        rows.append(ids)
    return torch.stack(rows)


def main() -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    block = Block()
    started = time.perf_counter()
    for _ in range(STEPS):
        documents = document_ids(generator)

        def same_document(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
            return documents[b, q_idx] == documents[b, kv_idx]  # noqa: B023  (used within the step)

        def sliding_window(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
            return (q_idx - kv_idx).abs() <= WINDOW

        block_mask = create_block_mask(and_masks(same_document, sliding_window), BATCH, None, LENGTH, LENGTH, "cpu")
        x = torch.randn(BATCH, LENGTH, DIM, generator=generator)
        with torch.no_grad():
            out = block(x, block_mask)
    print(f"steps: {time.perf_counter() - started:.2f} s, last output mean {out.mean().item():.6f}")


if __name__ == "__main__":
    main()
