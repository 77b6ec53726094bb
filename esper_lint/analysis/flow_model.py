"""The call-flow facts (ESP018-ESP030): where a BlockMask goes, what `kernel_options` and `return_lse` a
`flex_attention` call gets, what sizes a `create_block_mask` call is given and whether it is compiled.

Collected by `call_flow.CallFlowFacts` after the mask uses and attention calls of a module are known
(`module_facts.ModuleAnalyzer.analyze`), and kept on `ModuleFacts.call_flow`. Values only: rules read them.
"""

from __future__ import annotations

import ast
from typing import NamedTuple

from ..core.span import Span
from .model import MaskFunction, MaskUse


class AdjustedBlockMask(NamedTuple):
    """`block_mask._adjust(q_len, kv_len)` on a BlockMask built in this module whose mask function reads
    the length it was built for (ESP018)."""

    span: Span  # the `_adjust(...)` call
    lengths: tuple[str, ...]  # the length arguments the mask function reads, as written (`kv_len`)
    functions: tuple[MaskFunction, ...]  # the mask functions of the BlockMask (for the message)


class SlicedBlockMask(NamedTuple):
    """A slice of a BlockMask (`bm[:, :, i]`, `bm[0]`) reaching `flex_attention`'s `block_mask` with no usable
    `mask_mod` (ESP020)."""

    span: Span  # the flex_attention callee
    slice_span: Span  # the subscript expression
    own_mask_mod: bool  # a `.mask_mod` was assigned, but built from the slice's own (error-raising) one


class StoredBlockMask(NamedTuple):
    """A BlockMask built once (in `__init__`, or at import) and read in a `forward` method (ESP028, ESP029)."""

    use: MaskUse  # the call that builds it
    stored_as: str  # `self.block_mask`, `BLOCK_MASK`
    built_in: str  # "`Attention.__init__`" or "module level"
    read_in: str  # "`Attention.forward` (line 12)"


class OptionKey(NamedTuple):
    name: str  # the key, exactly as written (`"BLOCK_m"`, `"PRESCALE_QK "`)
    span: Span  # the key's string literal (or `BLOCK_m` in `dict(BLOCK_m=64)`)
    value: ast.expr | None  # its value, None for a key of `dict(...)` without one


class KernelOptions(NamedTuple):
    """The literal keys of one `kernel_options` mapping a `flex_attention` call receives (ESP023)."""

    span: Span  # the dict display, `dict(...)` call, or the subscript assignment's target
    keys: tuple[OptionKey, ...]


class LseRequest(NamedTuple):
    """`flex_attention(..., return_lse=...)` (ESP027) and what a safe rewrite would need."""

    span: Span  # the value passed
    keyword_span: Span | None  # `return_lse=True` as a whole; None when passed positionally
    removal_span: Span | None  # where to cut the keyword with its comma (None: a comment sits there)
    value: object  # the literal value, or NOT_CONSTANT
    with_return_aux: bool  # `return_aux=` is passed too (a ValueError when return_lse is true)
    # For `out, lse = flex_attention(..., return_lse=True)`: the second name, and where its line ends.
    unpacked_lse: str | None
    line_end: tuple[int, int] | None  # (line, character column) after the statement's last line's text
    line_ending: str  # the statement's own line ending ("\n", "\r\n", "\r")
    indent: str  # the statement's indentation
    aux_request: str | None  # how `AuxRequest` can be spelled at the call (None: it cannot, safely)
    import_at: tuple[int, int] | None  # where to insert `AuxRequest, ` into an import (None: no import needed)
    no_fix_reason: str | None
    via: str | None = None  # the module's function that forwards it to flex_attention (`fused(**kwargs)`)


class HeadsFromKv(NamedTuple):
    """`create_block_mask(..., H=<number of key/value heads>)` (ESP019)."""

    use: MaskUse
    span: Span  # the H argument
    evidence: str  # why it counts key/value heads, e.g. "`k.shape[1]` (`k` is flex_attention's key)"


class BlockMaskBuild(NamedTuple):
    """A `create_block_mask` call, as ESP030 judges it: compiled or not, for which lengths."""

    use: MaskUse
    compiled: bool | None  # True: through torch.compile or `_compile=`; False: nothing compiles it; None: unknown
    dynamic_false: Span | None  # `dynamic=False` of the torch.compile that wraps it
    from_shape: str | None  # a length read from a tensor's shape (`q.shape[-2]`), as written: it varies
    configured: str | None  # a length read from an attribute (`config.max_seq_len`), as written
    largest: int | None  # the largest length that is an int constant


class CallFlow:
    """Every call-flow fact of one module."""

    __slots__ = ("adjusted", "builds", "heads_from_kv", "kernel_options", "lse_requests", "sliced", "stored")

    def __init__(self) -> None:
        self.adjusted: list[AdjustedBlockMask] = []
        self.sliced: list[SlicedBlockMask] = []
        self.stored: list[StoredBlockMask] = []
        self.kernel_options: list[KernelOptions] = []
        self.lse_requests: list[LseRequest] = []
        self.heads_from_kv: list[HeadsFromKv] = []
        self.builds: list[BlockMaskBuild] = []
