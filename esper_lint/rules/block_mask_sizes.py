"""Rules about the sizes `create_block_mask` is given and how it runs: heads counted from key/value (GQA), and
the eager (uncompiled) path for large or varying lengths."""

from __future__ import annotations

from collections.abc import Iterator

from ..analysis.block_mask_arguments import LARGE_LENGTH
from ..analysis.call_sites import ParameterRead, parameter_read
from ..analysis.model import ModuleFacts
from ..core.findings import Finding
from .base import Rule, where
from .block_mask_use import call_flow

_HEADER = "from torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"
_WINDOWS = """

def per_head_window(windows):
    def mask(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < windows[h])
    return mask
"""


class MaskHeadsFromKv(Rule):
    code = "ESP019"
    name = "mask-heads-from-kv"
    summary = "GQA: `create_block_mask(..., H=<number of key/value heads>)` while the mask function reads `h`."
    what_it_does = (
        "Finds `create_block_mask` whose `H` counts key/value heads: `X.shape[1]` / `X.size(1)` (or `-3`) of "
        "a variable passed as `key` or `value` (not as `query`) to a `flex_attention` call of the module, or "
        "a name spelled as a key/value head count (`n_kv_heads`, `num_key_value_heads`, `num_kv_heads`, ...), "
        "directly or through a local bound to one, while a mask function it receives reads `h`."
    )
    why_bad = (
        "flex_attention indexes the BlockMask by query head: `h` runs over the query heads, of which GQA has "
        "more than key/value heads. Measured on torch 2.13.0 CPU (B=1, 4 query heads, 2 key/value heads, "
        "S=256, a per-head window reading `h`, `enable_gqa=True`), against `scaled_dot_product_attention` with "
        "the dense mask: eager max error 3.6e-7 (eager evaluates the mask function itself), compiled max "
        "error 0.96; with `H` = query heads both are right (`tests/test_rationale_call_flow.py`)."
    )
    example = (
        _HEADER
        + _WINDOWS
        + """

def attend(q, k, v, windows):
    block_mask = create_block_mask(per_head_window(windows), None, k.shape[1], q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=True)
"""
    )
    use_instead = (
        _HEADER
        + _WINDOWS
        + """

def attend(q, k, v, windows):
    block_mask = create_block_mask(per_head_window(windows), None, q.shape[1], q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=True)
"""
    )
    fix_safety = (
        "No automatic fix: the number of query heads is usually another variable (`q.shape[1]`, `n_heads`), "
        "which only the author can name for sure."
    )
    VALID = (
        use_instead,
        _HEADER
        + """

def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def attend(q, k, v, n_kv_heads):  # the mask never reads h: H only repeats it
    block_mask = create_block_mask(causal, None, n_kv_heads, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=True)
""",
    )
    INVALID = (
        example,
        "import torch\n"
        + _HEADER
        + _WINDOWS
        + """

class Attention(torch.nn.Module):
    def __init__(self, config, windows):
        super().__init__()
        self.windows = windows
        self.config = config

    def forward(self, q, k, v):
        heads = self.config.num_key_value_heads
        block_mask = create_block_mask(per_head_window(self.windows), None, heads, q.shape[-2], k.shape[-2])
        return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=True)
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        for found in call_flow(facts).heads_from_kv:
            readers = [fn for fn in found.use.functions if parameter_read(fn, 1) is ParameterRead.DIRECT]
            if not readers:
                continue  # nothing known reads `h`: then H only repeats the same mask (ESP009's business)
            yield self.finding_at(
                path,
                found.span,
                f"`H` here is the number of key/value heads ({found.evidence}); flex_attention indexes the "
                f"BlockMask by query head and mask function {where(readers[0])} reads `h`: with GQA, compiled "
                "flex_attention gives "
                "wrong output (eager does not). Pass the number of query heads (`q.shape[1]`).",
            )


class CreateBlockMaskEager(Rule):
    code = "ESP030"
    name = "create-block-mask-eager"
    default_enabled = False
    summary = "`create_block_mask` run uncompiled for large or varying lengths, or compiled with `dynamic=False`."
    what_it_does = (
        "Finds `create_block_mask` called directly in a module that compiles nothing but `flex_attention` "
        "(no `torch.compile` around it, no `_compile=`, no `@torch.compile` above it) for large or varying "
        "lengths: read from a tensor's shape (`q.shape[-2]`), from an attribute (`config.max_seq_len`), or a "
        f"constant of {LARGE_LENGTH} or more (also through a local bound to one); and "
        "`torch.compile(create_block_mask, dynamic=False)` called with lengths read from a tensor's shape. "
        "Off by default: the module may be compiled from another one."
    )
    why_bad = (
        "Uncompiled, `create_block_mask` materializes the whole Q_LEN x KV_LEN mask. Measured on torch 2.13.0 "
        "CPU (causal, B=H=None): S=16384 took 3.8 s and +2560 MB peak memory eagerly, against 0.14 s and no "
        "measurable extra memory compiled; S=4096: 0.28 s and +160 MB against 0.02 s (pytorch#134756 runs out "
        "of memory at 96k). With `dynamic=False` every new length is a new compilation: 12 lengths gave 8 "
        "compilations of 1-12 s each, then torch hit its recompile limit and ran the rest eagerly "
        "(`tests/test_rationale_call_flow.py` checks the memory growth and the recompilations)."
    )
    example = (
        _HEADER
        + """

def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def attend(q, k, v):
    block_mask = create_block_mask(causal, None, None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    use_instead = (
        "import torch\n"
        + _HEADER
        + """

def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


compiled_create_block_mask = torch.compile(create_block_mask)


def attend(q, k, v):
    block_mask = compiled_create_block_mask(causal, None, None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    fix_safety = "No automatic fix: where to compile (the call, the module, the model) is a design decision."
    VALID = (
        use_instead,
        _HEADER
        + """

def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


BLOCK_MASK = create_block_mask(causal, None, None, 256, 256)  # small and fixed: built once, cheaply
""",
    )
    INVALID = (
        example,
        "import torch\n"
        + _HEADER
        + """

def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


build = torch.compile(create_block_mask, dynamic=False)


def attend(q, k, v):
    return flex_attention(q, k, v, block_mask=build(causal, None, None, q.shape[-2], k.shape[-2]))
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        for build in call_flow(facts).builds:
            if build.from_shape is not None:
                size = f"lengths read from the input (`{build.from_shape}`), which vary"
            elif build.configured is not None:
                size = f"a configured length (`{build.configured}`)"
            elif build.largest is not None and build.largest >= LARGE_LENGTH:
                size = f"a length of {build.largest}"
            else:
                size = None
            if build.compiled is False and size is not None and build.use.callee_span is not None:
                yield self.finding_at(
                    path,
                    build.use.callee_span,
                    f"create_block_mask runs uncompiled here, for {size}: it materializes the whole Q_LEN x "
                    "KV_LEN mask (S=16384: 3.8 s and +2.5 GB, against 0.14 s compiled). Call "
                    "`torch.compile(create_block_mask)(...)` instead, or suppress if a caller compiles it.",
                )
            if build.dynamic_false is not None and build.from_shape is not None:
                yield self.finding_at(
                    path,
                    build.dynamic_false,
                    f"`dynamic=False` compiles create_block_mask anew for every length, and these vary "
                    f"(`{build.from_shape}`): after 8 lengths torch stops compiling it and runs it eagerly. "
                    "Drop `dynamic=False`.",
                )
