"""Rules about what is done with a BlockMask after it is built: adjusted, sliced, or built once and reused."""

from __future__ import annotations

from collections.abc import Iterator

from ..analysis.flow_model import CallFlow
from ..analysis.model import NOT_CONSTANT, ModuleFacts
from ..core.findings import Finding
from .base import Rule, where

_HEADER = "from torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"
_CAUSAL = """

def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx
"""
_MODEL = "import torch\n" + _HEADER + _CAUSAL
_SLICE_HEADER = "from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention\n"


def call_flow(facts: ModuleFacts) -> CallFlow:
    flow = facts.call_flow
    return flow if isinstance(flow, CallFlow) else CallFlow()


def _names(items: tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" for n in items)


class BlockMaskAdjust(Rule):
    code = "ESP018"
    name = "block-mask-adjust"
    summary = (
        "`block_mask._adjust(q_len, kv_len)` on a BlockMask whose mask function reads the length it was built for."
    )
    what_it_does = (
        "Finds `._adjust(...)` called on a BlockMask built in the same module (directly, through a variable, "
        "or stored on `self`) whose mask function reads the `Q_LEN`/`KV_LEN` it was built with: it closes over "
        "that length (or a value computed from it), or a factory in the mask argument receives it "
        "(`create_block_mask(right_aligned(q_len, kv_len), None, None, q_len, kv_len)`). A mask that reads "
        "only its indices (causal, a sliding window) is not reported: cropping it is right."
    )
    why_bad = (
        "`_adjust` (which torch's own error message suggests) crops the block tables to the top-left corner "
        "and keeps the mask function, still closed over the old length, so the mask is not the one the new "
        "length needs. Measured on torch 2.13.0 CPU (H=2, D=16), a BlockMask built at 512 and adjusted to "
        "(128, 256), against `scaled_dot_product_attention` with the mask built for the new length: "
        "right-aligned causal max error 3.54, a mask closing over the length 3.48, eager and compiled alike, "
        "no error raised. Adjusted to a larger length, compiled flex_attention fails (`InductorError: ... Q "
        "seqlen must be smaller than the block_mask size`) and eager gives 0.62 max error "
        "(`tests/test_rationale_call_flow.py` re-measures the eager case)."
    )
    example = (
        _HEADER
        + """

def right_aligned(q_len, kv_len):
    def mask(b, h, q_idx, kv_idx):
        return q_idx + (kv_len - q_len) >= kv_idx
    return mask


def attend(q, k, v, full):
    block_mask = create_block_mask(right_aligned(full, full), None, None, full, full)
    return flex_attention(q, k, v, block_mask=block_mask._adjust(q.shape[-2], k.shape[-2]))
"""
    )
    use_instead = (
        _HEADER
        + """

def right_aligned(q_len, kv_len):
    def mask(b, h, q_idx, kv_idx):
        return q_idx + (kv_len - q_len) >= kv_idx
    return mask


def attend(q, k, v):
    q_len, kv_len = q.shape[-2], k.shape[-2]
    block_mask = create_block_mask(right_aligned(q_len, kv_len), None, None, q_len, kv_len)
    return flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    fix_safety = "No automatic fix: a new BlockMask must be built (and cached) for each length the code meets."
    VALID = (
        _HEADER
        + _CAUSAL
        + """
def attend(q, k, v, full):
    block_mask = create_block_mask(causal, None, None, full, full)  # reads only its indices
    return flex_attention(q, k, v, block_mask=block_mask._adjust(q.shape[-2], k.shape[-2]))
""",
        _HEADER
        + """
def attend(q, k, v, window, full):
    def sliding(b, h, q_idx, kv_idx):
        return (q_idx - kv_idx).abs() < window  # reads a value that is not the length
    block_mask = create_block_mask(sliding, None, None, full, full)
    return flex_attention(q, k, v, block_mask=block_mask._adjust(q.shape[-2], k.shape[-2]))
""",
    )
    INVALID = (
        _HEADER
        + """
def attend(q, k, v, max_len):
    def padded(b, h, q_idx, kv_idx):
        return kv_idx < max_len - 16
    block_mask = create_block_mask(padded, None, None, max_len, max_len)
    return flex_attention(q, k, v, block_mask=block_mask._adjust(q.shape[-2], k.shape[-2]))
""",
        "import torch\n"
        + _HEADER
        + """
SEQ_LEN = 4096
OFFSET = SEQ_LEN // 2


def tail(b, h, q_idx, kv_idx):
    return kv_idx >= OFFSET


class Attention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block_mask = create_block_mask(tail, None, None, SEQ_LEN, SEQ_LEN)

    def forward(self, q, k, v):
        block_mask = self.block_mask._adjust(q.shape[-2], k.shape[-2])
        return flex_attention(q, k, v, block_mask=block_mask)
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        for adjusted in call_flow(facts).adjusted:
            mask = f"its mask function {where(adjusted.functions[0])}" if adjusted.functions else "its mask function"
            yield self.finding_at(
                path,
                adjusted.span,
                f"`_adjust` keeps this BlockMask's mask_mod, and {mask} reads the length it was built for "
                f"({_names(adjusted.lengths)}): flex_attention then gives silently wrong output at the new "
                "length, eager and compiled. Build a BlockMask for each length instead (and cache it).",
            )


class SlicedBlockMask(Rule):
    code = "ESP020"
    name = "sliced-block-mask"
    summary = "A sliced BlockMask (`bm[:, :, i]`, `bm[0]`) passed to `flex_attention` with no `mask_mod` assigned."
    what_it_does = (
        "Finds `flex_attention` calls whose `block_mask` is a slice of a BlockMask (built in the module, or a "
        "parameter annotated `BlockMask`), passed directly or through a variable, when no `.mask_mod = ...` "
        "is assigned to the slice, or the one assigned wraps the slice's own `mask_mod`. A slice that is "
        "passed anywhere else before (where its `mask_mod` could be set) is not reported."
    )
    why_bad = (
        "Slicing a BlockMask replaces its `mask_mod` with a function that raises. Measured on torch 2.13.0 "
        "CPU: `flex_attention` fails with `RuntimeError: Cannot use mask_mod from a sliced BlockMask`, eager "
        "and compiled; a `mask_mod` that wraps the slice's own fails with dynamo's `Unsupported: Observed "
        "exception` (pytorch#163314). Assigning the original's (`sliced.mask_mod = block_mask.mask_mod`) "
        "works."
    )
    example = (
        _SLICE_HEADER
        + _CAUSAL
        + """

def decode(q, k, v, block_mask: BlockMask, block_index):
    one_block = block_mask[:, :, block_index]
    return flex_attention(q, k, v, block_mask=one_block)


block_mask = create_block_mask(causal, None, None, 1024, 1024)
"""
    )
    use_instead = (
        _SLICE_HEADER
        + _CAUSAL
        + """

def decode(q, k, v, block_mask: BlockMask, block_index):
    one_block = block_mask[:, :, block_index]
    one_block.mask_mod = block_mask.mask_mod
    return flex_attention(q, k, v, block_mask=one_block)


block_mask = create_block_mask(causal, None, None, 1024, 1024)
"""
    )
    fix_safety = (
        "No automatic fix: the slice's `mask_mod` usually needs an offset for the sliced rows "
        "(`offset_mask(block_mask.mask_mod, ...)`), which only the author knows."
    )
    VALID = (
        _HEADER
        + _CAUSAL
        + """
block_mask = create_block_mask(causal, 2, None, 256, 256)


def first_batch(q, k, v):
    sliced = block_mask[0:1]
    sliced.mask_mod = block_mask.mask_mod
    return flex_attention(q, k, v, block_mask=sliced)
""",
        _HEADER
        + """
def attend(q, k, v, masks, i):
    return flex_attention(q, k, v, block_mask=masks[i])  # a list of BlockMasks: an element, not a slice
""",
    )
    INVALID = (
        _HEADER
        + _CAUSAL
        + """
block_mask = create_block_mask(causal, 2, None, 256, 256)


def first_batch(q, k, v):
    return flex_attention(q, k, v, block_mask=block_mask[0:1])
""",
        "from torch.nn.attention.flex_attention import BlockMask, flex_attention\n"
        + """

def decode(q, k, v, block_mask: BlockMask, rows):
    sliced = block_mask[:, :, rows]
    inner = sliced.mask_mod
    sliced.mask_mod = lambda b, h, q_idx, kv_idx: inner(b, h, q_idx, kv_idx)
    return flex_attention(q, k, v, block_mask=sliced)
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        for sliced in call_flow(facts).sliced:
            where_ = f"line {sliced.slice_span.line}"
            if sliced.own_mask_mod:
                message = (
                    f"The BlockMask slice passed here ({where_}) gets a mask_mod built from its own, which "
                    "raises: the call fails (dynamo `Unsupported: Observed exception`). Build it from the "
                    "original BlockMask's mask_mod (`sliced.mask_mod = block_mask.mask_mod`)."
                )
            else:
                message = (
                    f"The BlockMask slice passed here ({where_}) has no mask_mod (slicing replaces it with one "
                    "that raises): the call fails with `RuntimeError: Cannot use mask_mod from a sliced "
                    "BlockMask`. Assign the original's first: `sliced.mask_mod = block_mask.mask_mod`."
                )
            yield self.finding_at(path, sliced.span, message)


class BlockMaskFixedBatch(Rule):
    code = "ESP028"
    name = "block-mask-fixed-batch"
    default_enabled = False
    summary = "A BlockMask built once with a fixed batch size (`B=`), then used in `forward` with any batch."
    what_it_does = (
        "Finds a BlockMask built once, in `__init__` (stored on `self`) or at import (a module-level "
        "variable), with a batch size `B` other than `None`/`1`, and read in a `forward` method (not sliced, "
        "adjusted or rebuilt there). Off by default: a model that only ever sees that batch size is right."
    )
    why_bad = (
        "The BlockMask's batch dimension is fixed when it is built, and nothing stops an input with another "
        "batch (the last, partial batch of an epoch). Measured on torch 2.13.0 CPU with a padding mask "
        "reading `b` (S=256): compiled flex_attention crashes the whole process, with SIGFPE for batch 2 "
        "against B=4 and a segmentation fault for batch 6 against B=4 (attention-gym#98); the same for heads "
        "(SIGFPE for 3 heads against H=4). Eager flex_attention evaluates the mask function itself and gives "
        "the right output, so eager tests pass (`tests/test_rationale_call_flow.py`)."
    )
    example = (
        _MODEL
        + """

class Attention(torch.nn.Module):
    def __init__(self, batch_size, max_len):
        super().__init__()
        self.block_mask = create_block_mask(causal, batch_size, None, max_len, max_len)

    def forward(self, q, k, v):
        return flex_attention(q, k, v, block_mask=self.block_mask)
"""
    )
    use_instead = (
        _MODEL
        + """

class Attention(torch.nn.Module):
    def __init__(self, max_len):
        super().__init__()
        self.block_mask = create_block_mask(causal, None, None, max_len, max_len)

    def forward(self, q, k, v):
        return flex_attention(q, k, v, block_mask=self.block_mask)
"""
    )
    fix_safety = (
        "No automatic fix: `B=None` is right only when the mask function does not read `b`; otherwise the "
        "BlockMask must be built for each input's batch."
    )
    VALID = (
        use_instead,
        _MODEL
        + """

class Attention(torch.nn.Module):
    def forward(self, q, k, v):  # built from the input it meets
        block_mask = create_block_mask(causal, q.shape[0], None, q.shape[-2], k.shape[-2])
        return flex_attention(q, k, v, block_mask=block_mask)
""",
    )
    INVALID = (
        example,
        _MODEL
        + """
BLOCK_MASK = create_block_mask(causal, 8, None, 512, 512)


class Attention(torch.nn.Module):
    def forward(self, q, k, v):
        return flex_attention(q, k, v, block_mask=BLOCK_MASK)
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        for stored in call_flow(facts).stored:
            batch = stored.use.arguments.get("B")
            if batch is None:
                continue
            value = batch.constant
            if value is not NOT_CONSTANT and not (type(value) is int and value > 1):
                continue  # `None` or `1`: broadcast over any batch
            yield self.finding_at(
                path,
                batch.span,
                f"This BlockMask is built once ({stored.built_in}, as {stored.stored_as}) for a fixed batch size "
                f"and used in {stored.read_in}: an input with another batch (the last, partial one) crashes "
                "compiled flex_attention (SIGFPE or segmentation fault). Pass `B=None` if the mask does not "
                "read `b`, else build the BlockMask for each input's batch.",
            )


class BlockMaskFixedLength(Rule):
    code = "ESP029"
    name = "block-mask-fixed-length"
    default_enabled = False
    summary = "A BlockMask built once (in `__init__` or at import) for fixed lengths, then used in `forward`."
    what_it_does = (
        "Finds a BlockMask built once, in `__init__` (stored on `self`) or at import (a module-level "
        "variable), and read in a `forward` method that neither builds nor adjusts BlockMasks itself (nor "
        "slices this one), while nothing else in the class assigns it. Off by default: a model whose inputs "
        "always have that length (fixed patches, fixed context) is right."
    )
    why_bad = (
        "A BlockMask holds the lengths it was built for, and flex_attention refuses any other. Measured on "
        "torch 2.13.0 CPU: built for 256 in `__init__`, `forward` with length 128 or 384 fails with "
        "`ValueError: block_mask was created for block_mask.shape=(1, 1, 256, 256) but got q_len=128 and "
        "kv_len=128` (attention-gym#122)."
    )
    example = BlockMaskFixedBatch.use_instead
    use_instead = (
        _MODEL
        + """

class Attention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block_masks = {}

    def forward(self, q, k, v):
        lengths = (q.shape[-2], k.shape[-2])
        if lengths not in self.block_masks:
            self.block_masks[lengths] = create_block_mask(causal, None, None, *lengths)
        return flex_attention(q, k, v, block_mask=self.block_masks[lengths])
"""
    )
    fix_safety = "No automatic fix: where to build and cache BlockMasks per length is a design decision."
    VALID = (
        use_instead,
        _MODEL
        + """

class Attention(torch.nn.Module):
    def __init__(self, max_len):
        super().__init__()
        self.block_mask = create_block_mask(causal, None, None, max_len, max_len)

    def forward(self, q, k, v):  # crops it (ESP018 judges this)
        return flex_attention(q, k, v, block_mask=self.block_mask._adjust(q.shape[-2], k.shape[-2]))
""",
    )
    INVALID = (
        example,
        _MODEL
        + """
MASK = create_block_mask(causal, None, None, 1024, 1024)


class Attention(torch.nn.Module):
    def forward(self, q, k, v):
        return flex_attention(q, k, v, block_mask=MASK)
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        for stored in call_flow(facts).stored:
            q_len = stored.use.arguments.get("Q_LEN") or stored.use.arguments.get("KV_LEN")
            if q_len is None:
                continue
            yield self.finding_at(
                path,
                q_len.span,
                f"This BlockMask is built once ({stored.built_in}, as {stored.stored_as}) for fixed lengths and "
                f"used in {stored.read_in}: an input of any other length fails with `ValueError: block_mask "
                "was created for ...`. Build it in forward from the input's length (cached per length).",
            )
