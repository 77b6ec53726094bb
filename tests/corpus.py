"""A generated FlexAttention-heavy corpus, shared by the agreement tests and `benchmarks/run.py`.

Each file is ordinary model code (layers, helpers, docstrings) with, in a share of files, block masks
built in every pattern the rules know: nested defs and lambdas, closures over `self`, loop variables
and locals, aliases and module imports, `partial` / `torch.compile` wrappers, `and_masks`/`or_masks`,
per-forward builds, parenthesised and keyword mask arguments, non-ASCII text before an argument
(character vs byte columns), `# noqa`, and look-alikes that must not be reported. Deterministic for a
given seed, so a benchmark corpus can be rebuilt anywhere.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

_IMPORTS = (
    "from torch.nn.attention.flex_attention import create_block_mask, and_masks, or_masks, flex_attention\n",
    "from torch.nn.attention.flex_attention import create_block_mask as cbm, create_mask\n",
    "from torch.nn.attention import flex_attention as fa\n",
    "import torch.nn.attention.flex_attention as flex\n",
    "import torch\n",
    "import functools\nfrom functools import partial\n",
    "from torch.nn.attention.flex_attention import BlockMask\n",
)

_HEADER = '''"""Generated model code {i}: attention blocks and helpers."""

from __future__ import annotations

import math
import torch
from torch import nn
'''

_FILLER = '''

class Block{n}(nn.Module):
    """A feed-forward block ({n}) with pre-norm and a residual; café-style docs: naïve µ-scaling."""

    def __init__(self, dim: int, hidden: int = 4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, hidden * dim)
        self.down = nn.Linear(hidden * dim, dim)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(self.norm(x))
        h = torch.nn.functional.gelu(h) * self.scale
        for _ in range(2):
            h = h + 0.0
        return x + self.down(h)


def helper_{n}(values: list[int], k: int = {n}) -> dict[int, int]:
    counts: dict[int, int] = {{}}
    for v in values:
        counts[v % k] = counts.get(v % k, 0) + 1
    squares = [v * v for v in values if v > 0]
    return {{key: counts[key] + len(squares) for key in sorted(counts)}}
'''

# Mask patterns: each takes a unique suffix and returns code using names from _IMPORTS.
_PATTERNS: tuple[str, ...] = (
    # ESP001 nested def
    """
def build_causal_{n}(seq_len):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx
    return create_block_mask(causal, None, None, seq_len, seq_len)
""",
    # ESP002 lambda inline, parenthesised, after non-ASCII text
    """
def build_lambda_{n}(n):
    label = "masque: éàü"; m = create_block_mask((lambda b, h, q, kv: q >= kv), None, None, n, n)
    return label, m
""",
    # ESP002 through a variable and an alias import
    """
def build_alias_{n}(n):
    mask = lambda b, h, q, kv: q >= kv
    return cbm(mask, None, None, n, n)
""",
    # ESP003 captures self, cached on the module
    """
class SelfMask{n}(nn.Module):
    def __init__(self, window):
        super().__init__()
        self.window = window
        self._masks = {{}}

    def mask(self, n):
        def local(b, h, q, kv):
            return (q - kv).abs() < self.window
        self._masks[n] = fa.create_block_mask(local, None, None, n, n)
        return self._masks[n]
""",
    # ESP004 loop variable, def and comprehension lambda
    """
def build_windows_{n}(windows, n):
    masks = []
    for w in windows:
        def local(b, h, q, kv):
            return q - kv < w
        masks.append(create_block_mask(local, None, None, n, n))
    masks += [create_block_mask(lambda b, h, q, kv: q - kv < w2, None, None, n, n) for w2 in windows]
    return masks
""",
    # ESP005 per-forward, module-level mask, module import spelling
    """
def causal_{n}(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


class PerStep{n}(nn.Module):
    def forward(self, q, k, v):
        block_mask = flex.create_block_mask(
            causal_{n},  # the mask
            None,
            None,
            q.shape[-2],
            k.shape[-2],
        )
        return flex.flex_attention(q, k, v, block_mask=block_mask)
""",
    # ESP005 not reported: conditional cache; ESP006 document ids
    """
class Cached{n}(nn.Module):
    def forward(self, q, k, v, document_ids):
        n = q.shape[-2]
        if n not in self._masks:
            self._masks[n] = create_block_mask(causal_{n}, None, None, n, n)
        def same_doc(b, h, qi, kv):
            return document_ids[qi] == document_ids[kv]
        return create_block_mask(mask_mod=same_doc, B=None, H=None, Q_LEN=n, KV_LEN=n)
""",
    # and_masks / or_masks, torch.compile wrapper, partial
    """
def build_combined_{n}(n, sliding):
    def causal(b, h, q, kv):
        return q >= kv
    def window(b, h, q, kv):
        return q - kv < sliding
    compiled = torch.compile(create_block_mask)
    m1 = compiled(and_masks(causal, window), None, None, n, n)
    maker = partial(create_block_mask, or_masks(causal, lambda b, h, q, kv: kv == 0))
    return m1, maker(None, None, n, n)
""",
    # keyword mask, create_mask, noqa, staticmethod
    """
class Static{n}:
    @staticmethod
    def dense(n):
        def causal(b, h, q, kv):
            return q >= kv
        return create_mask(mod_fn=causal, B=1, H=1, Q_LEN=n, KV_LEN=n)  # noqa: ESP001

    @classmethod
    def by_cls(cls, n):
        return cbm(lambda b, h, q, kv: q < cls.limit, None, None, n, n)
""",
    # look-alikes that must not be reported: local function named like the API, another library
    """
def create_block_mask_local_{n}(fn, *args):
    return fn


def not_torch_{n}(n):
    def create_block_mask(fn, *args):
        return fn
    def causal(b, h, q, kv):
        return q >= kv
    return create_block_mask(causal, None, None, n, n)
""",
    # unfixable: decorator reads a local, nonlocal, rebound name
    """
def build_unfixable_{n}(n, deco):
    @deco
    def causal(b, h, q, kv):
        return q >= kv
    def counted(b, h, q, kv):
        nonlocal n
        return q >= kv
    other = lambda b, h, q, kv: q >= kv
    other = lambda b, h, q, kv: q > kv
    return (
        create_block_mask(causal, None, None, n, n),
        create_block_mask(counted, None, None, n, n),
        create_block_mask(other, None, None, n, n),
    )
""",
    # default-bound values, walrus, nested class inside a function
    """
def build_defaults_{n}(n, limit):
    def bounded(b, h, q, kv, limit=limit):
        return q - kv < limit
    if (m := create_block_mask(bounded, None, None, n, n)) is not None:
        return m

    class Inner(nn.Module):
        def forward(self, q, k, v):
            return create_block_mask(lambda b, h, qi, kv: qi >= kv, None, None, q.shape[-2], k.shape[-2])

    return Inner
""",
)


def _sources(count: int, seed: int, flex_share: float) -> Iterator[tuple[str, str]]:
    rng = random.Random(seed)
    for i in range(count):
        parts = [_HEADER.format(i=i)]
        flex = rng.random() < flex_share
        if flex:
            parts.extend(_IMPORTS)
        fillers = rng.randint(2, 9)  # realistic sizes: roughly 60 to 350 lines
        chosen = rng.sample(range(len(_PATTERNS)), k=rng.randint(3, len(_PATTERNS))) if flex else []
        slots = [_FILLER] * fillers + [_PATTERNS[p] for p in chosen]
        rng.shuffle(slots)
        for j, template in enumerate(slots):
            parts.append(template.format(n=i * 100 + j))
        yield f"pkg{i // 50}/module_{i:04d}.py", "".join(parts)


def write_corpus(root: Path, count: int = 500, seed: int = 0, flex_share: float = 0.6) -> list[Path]:
    """Write `count` files under `root` (about `flex_share` of them build block masks); return their paths."""
    paths = []
    for rel, text in _sources(count, seed, flex_share):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def corpus_sources(count: int = 60, seed: int = 0, flex_share: float = 0.8) -> list[tuple[str, str]]:
    """The same corpus in memory: (relative path, text) pairs."""
    return list(_sources(count, seed, flex_share))
