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
        "Finds `create_block_mask` called with `B` (or `H`) set to `None` or `1` while a mask function it "
        "receives (directly, through `and_masks`/`or_masks`, or returned by a factory in the same module) "
        "reads its first parameter `b` (or second, `h`) in an expression such as `lengths[b]`, itself or "
        "in a function of the same module it passes `b` to. Passing `b` to a function it cannot see is "
        "not reported."
    )
    why_bad = (
        "With `B=None` the BlockMask is computed for batch 0 only and broadcast to every batch (`H=None`: "
        "head 0). Eager `flex_attention` still calls the mask function for every batch and head, so eager "
        "tests pass; compiled `flex_attention` skips the blocks that batch 0's mask skips. Measured on "
        f"{_TORCH}, against `scaled_dot_product_attention` with the dense mask from `create_mask`: eager "
        "max error 7e-7; compiled max error 0.94 for a padding mask reading `b` (`kv < lengths[b]`) and 1.24 "
        "for a per-head window reading `h` (`tests/test_rationale_calls.py`)."
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

mask = create_block_mask(and_masks(causal, head_window), B=4, H=1, Q_LEN=256, KV_LEN=256)
""",
        _HEADER
        + """
def padding_factory(lengths):
    def padding(b, h, q, kv):
        return kv < lengths[b]
    return padding

def build(lengths, n):
    return create_block_mask(padding_factory(lengths), 1, None, n, n)
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
            yield self.finding_at(
                path,
                arg.span,
                f"Mask function {where(readers[0], use)} reads `{dim}` but `{parameter}={value}`{passed_by(use)} "
                f"computes the BlockMask for {dim} = 0 only and broadcasts it: compiled flex_attention then gives "
                f"wrong output (eager does not, so eager tests pass). Pass `{parameter}=<{size}>`.",
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
        "its argument unchanged. Only when the "
        "BlockMask goes nowhere but `flex_attention(..., block_mask=...)` (directly or through a local "
        "variable): a BlockMask stored, returned, indexed or passed elsewhere may need its dimensions."
    )
    why_bad = (
        "The mask is the same for every batch (head), yet the BlockMask is built and stored B*H times. "
        "Measured on torch 2.13.0 CPU, S=4096, B=8, H=16: eager `create_block_mask` took 67 s and 18.7 GB "
        "against about 5 s and 0.46 GB with `B=None, H=None`; the BlockMask's tensors are B*H times larger "
        "(the runtime test checks the ratio at small sizes)."
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
        "BlockMask is refused by `flex_attention` when the query and key/value batch sizes differ; review "
        "the change."
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
        # kept and indexed per batch later: the B dimension is used on purpose
        self.block_mask = create_block_mask(causal, batch_size, None, 4096, 4096)
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
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        if not _builds_block_mask(use) or not use.functions_known or not use.functions:
            return
        if not use.result_only_attended:
            return  # the BlockMask goes elsewhere too: its B/H dimensions may be indexed on purpose
        for parameter, index, dim in _DIMENSIONS:
            arg = use.arguments.get(parameter)
            if arg is None or not _sized(arg):
                continue
            if any(fn.bound_method for fn in use.functions):
                continue  # torch refuses a bound method here (see _sized_by_call): nothing to size
            if not all(_reads(fn, index) is ParameterRead.NEVER for fn in use.functions):
                continue
            fix = None if use.via_helper else replace(arg.span, "None", UNSAFE, f"pass `{parameter}=None`")
            what = "batch" if parameter == "B" else "head"
            yield self.finding_at(
                path,
                arg.span,
                f"No mask function here reads `{dim}`, so the mask is the same for every {what}, yet "
                f"`{parameter}`{passed_by(use)} makes create_block_mask build and keep it once per {what} (memory "
                f"and time grow with B*H). Pass `{parameter}=None` to broadcast it (unsafe fix: `--unsafe-fixes`).",
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
        "function compiles the original with default options). Where the callee only may be compiled, no "
        "fix is offered."
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
        yield self.finding_at(
            path,
            arg.keyword_span,
            "`_compile` is deprecated: torch 2.13 warns (DeprecationWarning) and will remove it, after which "
            f"this call fails. Call `torch.compile(create_block_mask)(...)` instead ({advice}).",
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
