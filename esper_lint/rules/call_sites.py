"""Rules about how FlexAttention APIs are called: broadcast dimensions, deprecated flags, argument slots."""

from __future__ import annotations

from collections.abc import Iterator

from ..analysis.call_sites import ParameterRead, parameter_read
from ..analysis.model import NOT_CONSTANT, CallArgument, MaskFunction, MaskUse, ModuleFacts
from ..core.apis import BLOCK_MASK_CONSTRUCTORS, FLEX_MODULE
from ..core.findings import Finding
from ..core.fixes import UNSAFE, Edit, Fix, insert_at, replace
from .base import Rule, passed_by, where

_HEADER = "from torch.nn.attention.flex_attention import create_block_mask\n"
_ATTEND_HEADER = """from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

"""
_TORCH = "torch 2.13.0 (CPU, B=2, H=2, S=256, D=16)"
# (parameter of create_block_mask, position of the mask function's parameter it sizes, that parameter)
_DIMENSIONS = (("B", 0, "b"), ("H", 1, "h"))
_CREATE_BLOCK_MASK = f"{FLEX_MODULE}.create_block_mask"


def _builds_block_mask(use: MaskUse) -> bool:
    return use.api in BLOCK_MASK_CONSTRUCTORS


def _reads(fn: MaskFunction, index: int) -> ParameterRead:
    return parameter_read(fn, index)


def _sized_by_call(use: MaskUse) -> list[MaskFunction]:
    """The functions whose B/H the call sizes: not bound methods, which torch 2.13's `create_block_mask`
    refuses outright (`_get_mod_type` counts their `self`: "requires a mask_mod function")."""
    return [fn for fn in use.functions if not fn.bound_method]


def _broadcast(arg: CallArgument) -> bool:
    """`None` or `1`: the BlockMask is computed once and broadcast over that dimension."""
    value = arg.constant
    return value is None or (type(value) is int and value == 1)


def _sized(arg: CallArgument) -> bool:
    """A size other than `None`/`1`: an int literal above 1, or any expression (the batch size, `q.shape[0]`)."""
    value = arg.constant
    if value is NOT_CONSTANT:
        return True
    return type(value) is int and value > 1


class MaskReadsBroadcastDim(Rule):
    code = "ESP007"
    name = "mask-reads-broadcast-dim"
    summary = "`create_block_mask(..., B=None/1, H=None/1)` with a mask function that reads `b` / `h`."
    what_it_does = (
        "Finds `create_block_mask` called with `B` (or `H`) set to `None` while a mask function it receives "
        "(directly, through `and_masks`/`or_masks`, or returned by a factory in the same module) reads its first "
        "parameter `b` (or second, `h`) in an expression such as `lengths[b]`, itself or in a function of the "
        "same module it passes `b` to. Passing `b` to a function it cannot see is not reported. A literal `1` is "
        "the same broadcast, but also the true size of a batch of one (a test with one sequence), so it is "
        "reported only where the code shows more than one batch (head): the mask indexes, by `b` (`h`), a tensor "
        "it captures whose size in that position is visibly above 1 (`torch.tensor([...])`, `torch.randn(4, "
        "...)`, a list), or the BlockMask reaches a `flex_attention` call whose query visibly has more than one "
        "batch (head)."
    )
    why_bad = (
        "With `B=None` the BlockMask is computed for batch 0 only and broadcast to every batch (`H=None`: "
        "head 0); `B=1` builds the very same BlockMask (checked too). Eager `flex_attention` still calls the "
        "mask function for every batch and head, so eager tests pass; compiled `flex_attention` skips the blocks "
        "that batch 0's mask skips. "
        f"Measured on {_TORCH}, against `scaled_dot_product_attention` with the dense mask from `create_mask`: "
        "eager max error 7e-7; compiled max error 0.94 for a padding mask reading `b` (`kv < lengths[b]`) and "
        "1.24 for a per-head window reading `h` (`tests/test_rationale_calls.py`). With one batch (head) there "
        "is nothing to broadcast to: `B=1` is then right."
    )
    example = (
        _HEADER
        + """
def padded(lengths, n):
    def mask(b, h, q, kv):
        return kv < lengths[b]
    return create_block_mask(mask, None, None, n, n)
"""
    )
    use_instead = (
        _HEADER
        + """
def padded(lengths, n):
    def mask(b, h, q, kv):
        return kv < lengths[b]
    return create_block_mask(mask, len(lengths), None, n, n)
"""
    )
    fix_safety = "No automatic fix: only the caller knows the batch size (or number of heads) to pass."
    VALID = (
        _HEADER
        + """
def causal(b, h, q, kv):
    return q >= kv

block_mask = create_block_mask(causal, None, None, 128, 128)
""",
        _HEADER
        + """
def build(lengths, batch, n):
    def mask(b, h, q, kv):
        return kv < lengths[b]
    return create_block_mask(mask, batch, None, n, n)
""",
        _HEADER
        + """
from helpers import doc_mask

def build(n):
    def mask(b, h, q, kv):  # `b` only passed on: doc_mask may not read it
        return doc_mask(b, h, q, kv)
    return create_block_mask(mask, None, None, n, n)
""",
        "import torch\n"
        + _HEADER
        + """
TOPK = torch.tensor([[[[0, 2], [1, 3]]]])  # one batch, one head: B=1, H=1 are the true sizes

def tiles(b, h, q, kv):
    return TOPK[b, h, q // 2, 0] == kv // 2

block_mask = create_block_mask(tiles, 1, 1, 4, 8)
""",
        _HEADER
        + """
def padding_factory(lengths):
    def padding(b, h, q, kv):
        return kv < lengths[b]
    return padding

def build(lengths, n):  # B=1: nothing here shows more than one batch
    return create_block_mask(padding_factory(lengths), 1, None, n, n)
""",
    )
    INVALID = (
        _HEADER
        + """
def build(lengths, n):
    def mask(b, h, q, kv):
        return kv < lengths[b]
    return create_block_mask(mask, None, None, n, n)
""",
        """
from torch.nn.attention.flex_attention import and_masks, create_block_mask

def causal(b, h, q, kv):
    return q >= kv

def head_window(b, h, q, kv):
    return q - kv < 16 * (h + 1)

mask = create_block_mask(and_masks(causal, head_window), B=4, H=None, Q_LEN=256, KV_LEN=256)
""",
        "import torch\n"
        + _HEADER
        + """
LENGTHS = torch.tensor([256, 64, 128, 32])

def padding(b, h, q, kv):
    return kv < LENGTHS[b]

block_mask = create_block_mask(padding, 1, None, 256, 256)  # LENGTHS holds 4 batches
""",
        "import torch\n"
        + _ATTEND_HEADER
        + """
def attend(lengths):
    q = torch.randn(4, 8, 256, 64)
    def padding(b, h, qi, kv):
        return kv < lengths[b]
    block_mask = create_block_mask(padding, 1, None, 256, 256)
    return flex_attention(q, q, q, block_mask=block_mask)  # a query with 4 batches
""",
        _HEADER
        + """
def same_document(b, h, q, kv):
    return DOCUMENTS[b, q] == DOCUMENTS[b, kv]

def causal_document(b, h, q, kv):  # passes b on to a function of this module that reads it
    return same_document(b, h, q, kv) & (q >= kv)

block_mask = create_block_mask(causal_document, None, None, 256, 256)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        if not _builds_block_mask(use):
            return
        for parameter, index, dim in _DIMENSIONS:
            arg = use.arguments.get(parameter)
            if arg is None or not _broadcast(arg):
                continue
            readers = [fn for fn in _sized_by_call(use) if _reads(fn, index) is ParameterRead.DIRECT]
            if not readers:
                continue
            value = "None" if arg.constant is None else "1"
            size = "the batch size" if parameter == "B" else "the number of heads"
            what = "batches" if parameter == "B" else "heads"
            seen = ""
            if value == "1":  # a real size of one unless the code shows more (a test with one sequence)
                count = use.reach.larger[index] if use.reach is not None else None
                if count is None:
                    continue
                seen = (
                    f", while the query `{count.what}` it meets (line {count.line}) has {count.size} {what}"
                    if count.query
                    else f", while `{count.what}` (line {count.line}), indexed by `{dim}`, has {count.size} "
                    "entries there"
                )
            yield self.finding_at(
                path,
                arg.span,
                f"Mask function {where(readers[0], use)} reads `{dim}` but `{parameter}={value}`{passed_by(use)} "
                f"computes the BlockMask for {dim} = 0 only and broadcasts it{seen}: compiled flex_attention then "
                f"gives wrong output (eager does not, so eager tests pass). Pass `{parameter}=<{size}>`.",
            )


class UnusedBatchHeadDims(Rule):
    code = "ESP009"
    name = "unused-batch-head-dims"
    fix = UNSAFE
    summary = "`create_block_mask` gets a batch/head size although the mask function never reads `b` / `h`."
    what_it_does = (
        "Finds `create_block_mask` called with `B` (or `H`) set to a size (an int above 1 or any expression) "
        "when every mask function it receives is known and provably never reads its first parameter `b` "
        "(or second, `h`): not directly, and not through a function it passes `b` to (those must be "
        "functions of the same module that provably do not read it either). A decorated function is not "
        "known (its wrapper may read `b`), unless the decorator is a function of the module that returns "
        "its argument unchanged. The BlockMask is followed wherever it goes in the module (local names, "
        "`self.<attr>` read in other methods, `return` to this module's callers, arguments of its functions, "
        "tuples, lists and dicts, `isinstance` checks that rule it out), and nothing is reported when the code "
        "visibly uses its batch (head) layout: indexes it (`bm[i]`, `bm[:, h]`) or its `kv_num_blocks`/"
        "`kv_indices`/`full_*`/`q_*` tensors there, reads `.shape`, calls `to_dense()`/`as_tuple()`/`numel()`, "
        "or reads its attributes by name (`getattr`). Where it also goes to code the check cannot see into "
        "(another module's function, the callers of a public function), it is reported only when the BlockMask "
        "visibly serves as an attention mask (it reaches `flex_attention`, or a `block_mask=`/`attention_mask=` "
        "argument) and nothing here indexes it; the message then names that code."
    )
    why_bad = (
        "The mask is the same for every batch (head), yet the BlockMask is built and stored B*H times. "
        "Measured on torch 2.13.0 CPU, S=4096, B=8, H=16: eager `create_block_mask` took 67 s and 18.7 GB "
        "against about 5 s and 0.46 GB with `B=None, H=None`; the BlockMask's tensors are B*H times larger "
        "(the runtime test checks the ratio at small sizes). Stored on a module or returned, it keeps that "
        "memory for as long as it lives."
    )
    example = (
        _ATTEND_HEADER
        + """
def attend(q, k, v):
    block_mask = create_block_mask(causal, q.shape[0], q.shape[1], q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    use_instead = (
        _ATTEND_HEADER
        + """
def attend(q, k, v):
    block_mask = create_block_mask(causal, None, None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    fix_safety = (
        "Unsafe (applied only with `--fix --unsafe-fixes`): replaces the size with `None`. A broadcast "
        "BlockMask is refused by `flex_attention` when the query and key/value batch sizes differ, and code "
        "the check cannot see (named in the message) may index it per batch or head; review the change."
    )
    VALID = (
        _ATTEND_HEADER
        + """
def attend(q, k, v, lengths):
    def mask(b, h, qi, kv):
        return kv < lengths[b]
    block_mask = create_block_mask(mask, q.shape[0], None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask)
""",
        _ATTEND_HEADER
        + """
from helpers import doc_mask

def attend(q, k, v):  # unknown function: it may read b and h
    return flex_attention(q, k, v, block_mask=create_block_mask(doc_mask, 8, 8, 128, 128))
""",
        _ATTEND_HEADER
        + """
class Paged:
    def __init__(self, batch_size):
        self.block_mask = create_block_mask(causal, batch_size, None, 4096, 4096)

    def blocks_of(self, batch_idx):
        return self.block_mask.kv_num_blocks[batch_idx]  # read per batch: the B dimension is used
""",
        _ATTEND_HEADER
        + """
from pager import convert_to_physical

def prefill(q, k, v, batch, n, slots):
    block_mask = create_block_mask(causal, batch, None, n, n)
    first = block_mask[0]  # indexed here, and given to code we cannot see: it may index it per batch
    return flex_attention(q, k, v, block_mask=convert_to_physical(block_mask, slots)), first
""",
        _ATTEND_HEADER
        + """
def make_block_mask(batch, n):  # returned to other modules only: what they do with it is not visible
    return create_block_mask(causal, batch, None, n, n)
""",
    )
    INVALID = (
        _ATTEND_HEADER
        + """
def attend(q, k, v):
    block_mask = create_block_mask(causal, 8, 16, 4096, 4096)
    return flex_attention(q, k, v, block_mask=block_mask)
""",
        _ATTEND_HEADER
        + """
def attend(q, k, v):
    mask = create_block_mask(lambda b, h, qi, kv: qi >= kv, q.shape[0], None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, None, mask)
""",
        _ATTEND_HEADER
        + """
def window(b, h, q_idx, kv_idx):
    return q_idx - kv_idx < 128

def causal_window(b, h, q_idx, kv_idx):  # b and h only reach functions that never read them
    return causal(b, h, q_idx, kv_idx) & window(b, h, q_idx, kv_idx)

def attend(q, k, v):
    return flex_attention(q, k, v, block_mask=create_block_mask(causal_window, 4, 8, 256, 256))
""",
        "import torch\n"
        + _ATTEND_HEADER
        + """
class Attention(torch.nn.Module):
    def __init__(self, batch_size, max_len):
        super().__init__()
        self.block_mask = create_block_mask(causal, batch_size, None, max_len, max_len)

    def forward(self, q, k, v):
        return flex_attention(q, k, v, block_mask=self.block_mask)
""",
        _ATTEND_HEADER
        + """
def _build(batch, heads, n):
    return create_block_mask(causal, batch, heads, n, n)

def attend(q, k, v):
    cases = [("causal", _build(q.shape[0], q.shape[1], q.shape[-2]))]
    return [flex_attention(q, k, v, block_mask=bm) for _, bm in cases]
""",
        _ATTEND_HEADER
        + """
from kernels import flash_flex

def attend(q, k, v):  # reported, and the message names flash_flex, which the check cannot see into
    block_mask = create_block_mask(causal, q.shape[0], None, q.shape[-2], k.shape[-2])
    return flash_flex(q, k, v, block_mask=block_mask)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        reach = use.reach
        if not _builds_block_mask(use) or not use.functions_known or not use.functions or reach is None:
            return
        for parameter, index, dim in _DIMENSIONS:
            arg = use.arguments.get(parameter)
            if arg is None or not _sized(arg):
                continue
            if any(fn.bound_method for fn in use.functions):
                continue  # torch refuses a bound method here (see _sized_by_call): nothing to size
            if not all(_reads(fn, index) is ParameterRead.NEVER for fn in use.functions):
                continue
            if index in reach.layout_used:
                continue  # the code reads the BlockMask per batch (head): the dimension is used on purpose
            if reach.out_of_sight is not None and (reach.indexed or not reach.attended):
                # Given to code we cannot see, which may index it per batch too: reported only when nothing here
                # indexes it and the code visibly uses it as an attention mask.
                continue
            fix = None if use.via_helper else replace(arg.span, "None", UNSAFE, f"pass `{parameter}=None`")
            what = "batch" if parameter == "B" else "head"
            unless = (
                f", unless code it reaches that this check cannot see into ({reach.out_of_sight}) indexes it per {what}"
                if reach.out_of_sight is not None
                else ""
            )
            yield self.finding_at(
                path,
                arg.span,
                f"No mask function here reads `{dim}`, so the mask is the same for every {what}, yet "
                f"`{parameter}`{passed_by(use)} makes create_block_mask build and keep it once per {what} (memory "
                f"and time grow with B*H). Pass `{parameter}=None` to broadcast it{unless} (unsafe fix: "
                "`--unsafe-fixes`).",
                fix,
            )


class DeprecatedCompileFlag(Rule):
    code = "ESP010"
    name = "deprecated-compile-flag"
    fix = "safe"
    summary = "`create_block_mask(..., _compile=True)` is deprecated; call `torch.compile(create_block_mask)`."
    what_it_does = "Finds `create_block_mask` called with the `_compile` keyword set to anything but `False`."
    why_bad = (
        'On torch 2.13.0 `_compile=True` emits a DeprecationWarning ("_compile flag on create_block_mask '
        '... will be removed in the future") and then does exactly `torch.compile(create_block_mask)(...)`. '
        "When the flag is removed the call fails with a TypeError."
    )
    example = (
        "import torch\n"
        + _HEADER
        + """
def build(mask_mod, n):
    return create_block_mask(mask_mod, None, None, n, n, _compile=True)
"""
    )
    use_instead = (
        "import torch\n"
        + _HEADER
        + """
def build(mask_mod, n):
    return torch.compile(create_block_mask)(mask_mod, None, None, n, n)
"""
    )
    fix_safety = (
        "Safe: `--fix` rewrites the call to `torch.compile(create_block_mask)(...)` without `_compile`, which "
        "is what torch 2.13 runs for `_compile=True` (less the DeprecationWarning). Offered only for the "
        "literal `True`, when the callee is a name imported once from torch, `torch` is imported once with "
        "`import torch` before the call, and nothing in the module rebinds either (another `def` or "
        "assignment, `del`, `global`, a star import, `torch.compile = ...`, `globals()`: "
        "docs/fix.md), and no comment sits next to the keyword. When the callee is a name certainly bound to "
        "`torch.compile(create_block_mask, ...)` when the call runs (`create_block_mask = "
        "torch.compile(create_block_mask, dynamic=False)` at module level: its last binding, run before the "
        "call, after imports of the API only, and nothing else rebinds it), the fix deletes `_compile=True` "
        "instead: the compiled function then builds the same BlockMask with its own options, where compiling "
        "it again would unwrap it and silently drop them (measured on torch 2.13: `torch.compile` of a compiled "
        "function compiles the original with default options). Where the callee only may be compiled (a name "
        "compiled on one branch only, or a class attribute every write of which is `None` or "
        "`torch.compile(create_block_mask)`, as `cls.compiled = torch.compile(create_block_mask)` in a "
        "classmethod), no fix is offered and the message says to delete `_compile` by hand."
    )
    VALID = (
        "import torch\n"
        + _HEADER
        + """
def build(mask_mod, n):
    return torch.compile(create_block_mask)(mask_mod, None, None, n, n)
""",
        _HEADER
        + """
def build(mask_mod, n):
    return create_block_mask(mask_mod, None, None, n, n, _compile=False)
""",
        _HEADER
        + """
COMPILE = False  # bound once to a literal: the same call as `_compile=False`

def build(mask_mod, n):
    return create_block_mask(mask_mod, None, None, n, n, _compile=COMPILE)
""",
    )
    INVALID = (
        "import torch\n"
        + _HEADER
        + """
def build(mask_mod, n):
    return create_block_mask(mask_mod, None, None, n, n, _compile=True)
""",
        _HEADER
        + """
def build(mask_mod, n, compile_it):
    return create_block_mask(mask_mod, None, None, n, n, device="cpu", _compile=compile_it)
""",
        "import torch\n"
        + _HEADER
        + """
create_block_mask = torch.compile(create_block_mask, dynamic=False)  # the fix deletes `_compile=True`

def build(mask_mod, n):
    return create_block_mask(mask_mod, None, None, n, n, _compile=True)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        arg = use.arguments.get("_compile")
        if arg is None or arg.keyword_span is None or arg.constant in (False, None):
            return
        if use.compiled_alias_line is not None:
            fix = self._delete_fix(use, arg)
            advice = "fixable with `esper-lint --fix`" if fix else "delete it by hand"
            yield self.finding_at(
                path,
                arg.keyword_span,
                "`_compile` is deprecated: torch 2.13 warns (DeprecationWarning) and will remove it, after which "
                f"this call fails. The callee is already `torch.compile(...)` (line {use.compiled_alias_line}), so "
                f"delete `_compile` ({advice}); compiling it again would unwrap it and silently drop the options "
                "it was compiled with (`dynamic=False`, the backend).",
                fix,
            )
            return
        fix = self._fix(use, arg)
        advice = "fixable with `esper-lint --fix`" if fix else "change it by hand"
        if use.callee_compiled:  # compiling it again is the wrong advice where it already is compiled
            instead = (
                "The callee may already be `torch.compile(...)`: then delete `_compile` by hand (compiling it again "
                "would unwrap it and drop its options), else call `torch.compile(create_block_mask)(...)`."
            )
        else:
            instead = f"Call `torch.compile(create_block_mask)(...)` instead ({advice})."
        yield self.finding_at(
            path,
            arg.keyword_span,
            "`_compile` is deprecated: torch 2.13 warns (DeprecationWarning) and will remove it, after which "
            f"this call fails. {instead}",
            fix,
        )

    @staticmethod
    def _delete_fix(use: MaskUse, arg: CallArgument) -> Fix | None:
        """Through a name that is certainly `torch.compile(create_block_mask, ...)`, `_compile=True` only adds a
        nested compile that dynamo traces through: the same BlockMask without it."""
        if arg.constant is not True or arg.removal_span is None or use.api != _CREATE_BLOCK_MASK or use.via_helper:
            return None
        return Fix((Edit(arg.removal_span, ""),), description="delete `_compile=True` (the callee is compiled)")

    @staticmethod
    def _fix(use: MaskUse, arg: CallArgument) -> Fix | None:
        callee = use.callee_span
        if (
            arg.constant is not True
            or arg.removal_span is None
            or callee is None
            or not use.torch_in_scope
            or not use.callee_is_api
            or not use.callee_stable
            or use.callee_compiled  # compiling a compiled function again unwraps it, dropping its options
            or use.api != _CREATE_BLOCK_MASK
        ):
            return None
        edits = (
            insert_at(callee.line, callee.column, "torch.compile("),
            insert_at(callee.end_line, callee.end_column, ")"),
            Edit(arg.removal_span, ""),
        )
        return Fix(edits, description="call `torch.compile(create_block_mask)` without `_compile`")


class BlockMaskAsScoreMod(Rule):
    code = "ESP013"
    name = "block-mask-as-score-mod"
    fix = "safe"
    summary = "A BlockMask passed in `flex_attention`'s score_mod slot, or a mask function as `block_mask=`."
    what_it_does = (
        "Finds a BlockMask built in the same module (by `create_block_mask`, directly or through a variable) "
        "passed as `flex_attention`'s fourth positional argument, which is `score_mod`; and a mask function "
        "passed as `block_mask=`."
    )
    why_bad = (
        "`flex_attention(q, k, v, score_mod=None, block_mask=None, ...)`: the fourth argument is the "
        "score_mod. Measured on torch 2.13.0 CPU: a BlockMask there fails with `Unsupported: Unsupported "
        "function call` (the BlockMask is called as a score function); a function as `block_mask=` fails "
        "with `AttributeError: 'function' object has no attribute 'BLOCK_SIZE'`."
    )
    example = (
        "from torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"
        + """
def attend(q, k, v, mask_mod):
    block_mask = create_block_mask(mask_mod, None, None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask)
"""
    )
    use_instead = (
        "from torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"
        + """
def attend(q, k, v, mask_mod):
    block_mask = create_block_mask(mask_mod, None, None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    fix_safety = (
        "Safe for a BlockMask passed positionally: `--fix` inserts `block_mask=` when it is the last "
        "positional argument, no `block_mask=` is given, and `flex_attention` is a name imported once from "
        "torch that nothing in the module rebinds (the call fails today, so only the failure changes). A "
        "`flex_attention` that may be another function (a shim defined later) is not reported at all. No "
        "fix for a function passed as `block_mask=`: build the BlockMask with `create_block_mask`."
    )
    VALID = (
        "from torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"
        + """
def attend(q, k, v, mask_mod):
    block_mask = create_block_mask(mask_mod, None, None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, None, block_mask)
""",
        """
from torch.nn.attention.flex_attention import flex_attention

def relative(score, b, h, q, kv):
    return score + (q - kv)

def attend(q, k, v):
    return flex_attention(q, k, v, relative)
""",
    )
    INVALID = (
        "from torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"
        + """
def attend(q, k, v, mask_mod):
    block_mask = create_block_mask(mask_mod, None, None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask)
""",
        """
from torch.nn.attention.flex_attention import flex_attention

def causal(b, h, q, kv):
    return q >= kv

def attend(q, k, v):
    return flex_attention(q, k, v, block_mask=causal)
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        for call in facts.attention_calls:
            score_mod = call.score_mod
            if score_mod is not None and call.score_mod_is_block_mask:
                fix = None
                if call.score_mod_to_keyword:
                    edit = insert_at(score_mod.span.line, score_mod.span.column, "block_mask=")
                    fix = Fix((edit,), description="pass it as `block_mask=`")
                advice = "fixable with `esper-lint --fix`" if fix else "pass it by keyword"
                yield self.finding_at(
                    path,
                    score_mod.span,
                    "This BlockMask is passed in flex_attention's 4th argument, the score_mod slot: the call fails "
                    f"(`Unsupported: Unsupported function call`). Pass it as `block_mask=` ({advice}).",
                    fix,
                )
            if call.block_mask is not None and call.block_mask_functions:
                yield self.finding_at(
                    path,
                    call.block_mask.span,
                    f"`block_mask=` receives mask function {where(call.block_mask_functions[0])}, not a BlockMask: "
                    "the call fails (`AttributeError: 'function' object has no attribute 'BLOCK_SIZE'`). Build "
                    "one with `create_block_mask(...)`, or pass a score function as `score_mod=`.",
                )


class FlexAttentionEager(Rule):
    code = "ESP016"
    name = "flex-attention-eager"
    default_enabled = False
    summary = "`flex_attention` called in a module where nothing compiles it: it runs the slow eager path."
    what_it_does = (
        "Finds `flex_attention` calls in a module that never mentions compilation (`torch.compile`, "
        "`_dynamo`, `jit`, any `compile`), so nothing visible compiles the call. Off by default: the model "
        "may be compiled in another module, which a linter cannot see."
    )
    why_bad = (
        "Uncompiled `flex_attention` materialises the full score matrix through a reference implementation "
        '(torch 2.13 warns: "flex_attention called without torch.compile() - this will use an unfused '
        'implementation"). Measured on torch 2.13.0 CPU, S=8192, H=4: eager 19.5 s and +3.3 GB peak memory '
        "against 1.9 s and no extra memory compiled. `tests/test_rationale_calls.py` checks the warning and "
        "that compiling keeps the output (timings belong to benchmarks, not tests)."
    )
    example = (
        "from torch.nn.attention.flex_attention import flex_attention\n"
        + """
def attend(q, k, v, block_mask):
    return flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    use_instead = (
        "import torch\nfrom torch.nn.attention.flex_attention import flex_attention\n"
        + """
compiled_flex_attention = torch.compile(flex_attention)


def attend(q, k, v, block_mask):
    return compiled_flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    fix_safety = "No automatic fix: where to compile (the call, the module, the model) is a design decision."
    VALID = (
        "import torch\nfrom torch.nn.attention.flex_attention import flex_attention\n"
        + """
flex = torch.compile(flex_attention)

def attend(q, k, v):
    return flex(q, k, v)
""",
    )
    INVALID = (
        "from torch.nn.attention.flex_attention import flex_attention\n"
        + """
def attend(q, k, v):
    return flex_attention(q, k, v)
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        for call in facts.attention_calls:
            if call.compiled is False:
                yield self.finding_at(
                    path,
                    call.callee_span,
                    "Nothing in this module compiles this flex_attention call, so it runs eagerly: about 10x "
                    "slower and it materialises the full score matrix. Compile it "
                    "(`torch.compile(flex_attention)`), or suppress if the model is compiled elsewhere.",
                )
