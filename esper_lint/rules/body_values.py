"""Rules about the values a mask_mod / score_mod body computes: ESP017, ESP021, ESP025, ESP026.

Like the rules of `mask_bodies.py` they read every mask/score function the analysis knows (the functions of
each use) and report inside the function, where the code must change. Facts come from
`analysis/operator_precedence.py`, `analysis/python_data.py` and `analysis/mask_returns.py`.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator

from ..analysis import mask_returns as returns
from ..analysis.function_references import passed_only_to
from ..analysis.mask_bodies import FuncNode, positional_parameters
from ..analysis.model import MASK_MOD, SCORE_MOD, MaskFunction, MaskUse, ModuleFacts
from ..analysis.operator_precedence import (
    PrecedenceMistake,
    SourceText,
    parenthesised,
    precedence_mistakes,
)
from ..analysis.python_data import INDEX, MATH, MEMBERSHIP, NUMPY, PythonData, python_data_uses
from ..core.apis import FLEX_MODULE
from ..core.findings import Finding
from ..core.fixes import UNSAFE, Edit, Fix
from .base import where
from .mask_bodies import IMPORTS, TORCH, BodyRule, body_functions, maybe_traced_by_dynamo

_BOTH = frozenset({MASK_MOD, SCORE_MOD})
_CREATE_BLOCK_MASK = f"{FLEX_MODULE}.create_block_mask"
# mask_mod APIs whose result must be boolean (measured for create_block_mask; create_nested_block_mask builds
# the same BlockMask). create_mask accepts any dtype: a float additive mask from it is legitimate.
_BOOLEAN_MASK_APIS = frozenset({_CREATE_BLOCK_MASK, f"{FLEX_MODULE}.create_nested_block_mask"})


def source_text(fn: MaskFunction) -> SourceText:
    positions = fn.positions
    return SourceText(positions.start, positions.end, positions.text_between)


# --------------------------------------------------------------------------- ESP017
_COMPARISON_SYMBOLS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
_LOOSER_THAN_COMPARISON = (ast.Compare, ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr, ast.UnaryOp)


def _grouping(mistake: PrecedenceMistake, source: SourceText) -> str:
    """How Python groups the comparison, every parenthesis written out."""
    compare = mistake.compare
    operands = [compare.left, *compare.comparators]
    parts = []
    for i, operand in enumerate(operands):
        text = ast.unparse(operand)
        needs = operand in mistake.grouped or parenthesised(operands, i, source)
        needs = needs or (isinstance(operand, _LOOSER_THAN_COMPARISON) and not isinstance(operand, ast.UnaryOp))
        parts.append(f"({text})" if needs else text)
        if i < len(compare.ops):
            parts.append(_COMPARISON_SYMBOLS[type(compare.ops[i])])
    return " ".join(parts)


def _intended(mistake: PrecedenceMistake) -> str | None:
    """What was most likely meant: the bitwise operator between the comparisons; None when unclear."""
    compare, grouped = mistake.compare, mistake.grouped
    operands = [compare.left, *compare.comparators]
    if len(grouped) != 1 or len(compare.ops) > 2:
        return None
    [bitwise] = grouped
    at = next(i for i, o in enumerate(operands) if o is bitwise)
    if len(compare.ops) == 2 and at != 1:
        return None  # `a & b < c < d`: no single reading
    left_side = ast.Compare(operands[at - 1], [compare.ops[at - 1]], [bitwise.left]) if at > 0 else bitwise.left
    right_side = (
        ast.Compare(bitwise.right, [compare.ops[at]], [operands[at + 1]]) if at + 1 < len(operands) else bitwise.right
    )
    return ast.unparse(ast.BinOp(left_side, bitwise.op, right_side))


class MaskOperatorPrecedence(BodyRule):
    code = "ESP017"
    name = "mask-operator-precedence"
    roles = _BOTH
    summary = "`&`/`|`/`^` next to a comparison without parentheses: Python groups it another way than meant."
    what_it_does = (
        "Finds comparisons in a mask_mod or score_mod, on values computed from its parameters, with an "
        "operand that is an unparenthesised `&`, `|` or `^` expression which either joins a condition (a "
        "comparison, `~` of one, a local bound to one) with something else, as in `(q_idx >= kv_idx) & "
        "kv_idx < L` or `q_idx >= kv_idx & (kv_idx != 7)`, or sits in a chain, as in `kv >= 30 & kv < 606`. "
        "Integer bit tests such as `(q_idx & 7) == (kv_idx & 7)` and `q_idx & 7 == 0`, and `(a) & (b) | (c)` "
        "(no comparison at that level), are fine."
    )
    why_bad = (
        "In Python `&`, `|` and `^` bind tighter than comparisons (unlike `and`/`or`): `(q_idx >= kv_idx) & "
        "kv_idx < L` is `((q_idx >= kv_idx) & kv_idx) < L`, and `kv >= 30 & kv < 606` is the chained "
        "comparison `kv >= (30 & kv) < 606`. Measured on "
        f"{TORCH} (S=128, L=100): the first form gives 52% of `create_mask` entries wrong and "
        "`q_idx >= kv_idx & (kv_idx != 7)` 50%, with `flex_attention` outputs off by 1.80 and 1.96 (max abs), "
        "identical eager and compiled and without any error, so tests that run eagerly pass. A chain hides "
        "an `and`: `create_block_mask` and `create_mask` raise `RuntimeError: vmap: ... data-dependent control "
        "flow`, compiled or not."
    )
    example = (
        IMPORTS
        + """
def causal_prefix(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx) & kv_idx < 100

block_mask = create_block_mask(causal_prefix, None, None, 4096, 4096)
"""
    )
    use_instead = (
        IMPORTS
        + """
def causal_prefix(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx) & (kv_idx < 100)

block_mask = create_block_mask(causal_prefix, None, None, 4096, 4096)
"""
    )
    fix_safety = (
        "No automatic fix: the program does what it says, and only a person can tell which grouping was "
        "meant. The message shows how Python groups the expression and the likely intended one. ESP008 "
        "does not report a chained comparison found here, and its `and`/`or`/`not`/`x if c else y` fixes "
        "decline when they would keep such a grouping."
    )
    VALID = (
        IMPORTS
        + """
def same_lane(b, h, q_idx, kv_idx):  # integers masked, then compared: what Python's precedence gives
    return (q_idx & 7) == (kv_idx & 7)

def even(b, h, q_idx, kv_idx):
    return q_idx & 1 == 0

def windowed(b, h, q_idx, kv_idx):  # every comparison in parentheses: & before |
    return (q_idx >= kv_idx) & (q_idx - kv_idx < 64) | (kv_idx == 0)

masks = [create_block_mask(m, None, None, 128, 128) for m in (same_lane, even, windowed)]
""",
        IMPORTS
        + """
FLAGS = 3

def causal(b, h, q_idx, kv_idx):
    if FLAGS & 1 == 1:  # Python numbers only: decided once, when the function is traced
        return q_idx >= kv_idx
    return kv_idx >= 0

create_block_mask(causal, None, None, 128, 128)
""",
    )
    INVALID = (
        example,
        IMPORTS
        + """
def document_start(b, h, q_idx, kv_idx):
    return kv_idx >= 30 & kv_idx < 606

create_block_mask(document_start, None, None, 1024, 1024)
""",
        IMPORTS
        + """
def bias(score, b, h, q_idx, kv_idx):
    return torch.where(q_idx >= kv_idx & (kv_idx != 7), score, -float("inf"))

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=bias)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        for fn, node in body_functions(use):
            source = source_text(fn)
            for mistake in precedence_mistakes(node, use.role, source):
                grouping, intended = _grouping(mistake, source), _intended(mistake)
                advice = (
                    f"Parenthesise each comparison: `{intended}`."
                    if intended
                    else ("Put each comparison in its own parentheses.")
                )
                if mistake.chained:
                    consequence = (
                        f"the chained comparison `{grouping}` (an `and` of two comparisons), which "
                        "`create_block_mask`/`create_mask` reject with a vmap data-dependent control flow error"
                    )
                else:
                    consequence = f"`{grouping}`, a different mask, silently (no error, eager or compiled)"
                message = (
                    f"In {where(fn)}, `&`, `|` and `^` bind tighter than comparisons: Python reads "
                    f"`{ast.unparse(mistake.compare)}` as {consequence}. {advice}"
                )
                yield self.body_finding(path, fn, mistake.compare, message)


# --------------------------------------------------------------------------- ESP021
class PythonDataInMask(BodyRule):
    code = "ESP021"
    name = "python-data-in-mask"
    roles = _BOTH
    summary = "A Python list/dict/set, `in`, or `math`/`numpy` applied to a mask's tensors fails when torch runs it."
    what_it_does = (
        "Finds, in a mask_mod or score_mod, on values computed from its parameters: indexing a Python "
        "list, tuple or dict (a literal, or a name whose every binding is one: a local, a capture or a module "
        "constant), `x in`/`x not in` a Python list, tuple, set, dict or `range`, and calls of `math.*` or "
        "`numpy.*`. `x in [a, b]` is reported only where plain `vmap` runs the function (an uncompiled "
        "`create_block_mask`/`create_mask` in a module that compiles nothing) and `numpy` only in a "
        "mask_mod: dynamo traces those. `math.*` on constants, and a list the function builds and indexes "
        "with constants, are fine."
    )
    why_bad = (
        "Torch never calls the function with Python numbers: the indices are batched tensors under `vmap` "
        "and traced tensors under dynamo. Measured on "
        f"{TORCH}: `LENGTHS[b]` on a list or tuple raises `RuntimeError: vmap: It looks like you're calling "
        ".item() on a Tensor` (a dict: `KeyError`), compiled or not, and fails in a score_mod too; "
        "`kv_idx in [0, 5, 9]` raises a vmap data-dependent control flow error under an uncompiled "
        "`create_block_mask`/`create_mask` and works only where dynamo traces it; `not in`, `in range(...)` "
        "and `in` a set fail everywhere; `math.log(kv_idx + 1)` raises (vmap `.item()`; "
        "`TorchRuntimeError` compiled); `numpy.abs(q_idx - kv_idx)` raises `RuntimeError: Cannot access data "
        "pointer of Tensor that doesn't have storage` in a mask_mod."
    )
    example = (
        IMPORTS
        + """
LENGTHS = [100, 60]

def padding(b, h, q_idx, kv_idx):
    return kv_idx < LENGTHS[b]

block_mask = create_block_mask(padding, 2, None, 128, 128)
"""
    )
    use_instead = (
        IMPORTS
        + """
LENGTHS = torch.tensor([100, 60])

def padding(b, h, q_idx, kv_idx):
    return kv_idx < LENGTHS[b]

block_mask = create_block_mask(padding, 2, None, 128, 128)
"""
    )
    fix_safety = (
        "No automatic fix: the data must become a tensor, built once outside the function, and its device "
        "and dtype are the author's choice."
    )
    VALID = (
        IMPORTS
        + """
import math

SCALE = math.log(2)  # math on constants: Python numbers, computed once

def local(b, h, q_idx, kv_idx):
    windows = [64, 128]  # a local list read with constants
    return (q_idx - kv_idx < windows[0] * SCALE) & (q_idx >= kv_idx)

create_block_mask(local, None, None, 128, 128)
""",
        IMPORTS
        + """
SPECIAL = [0, 5, 9]

def sinks(b, h, q_idx, kv_idx):
    return kv_idx in SPECIAL  # dynamo traces it: a compiled create_block_mask accepts `in` a list

torch.compile(create_block_mask)(sinks, None, None, 128, 128)
""",
        IMPORTS
        + """
import numpy as np

def alibi(score, b, h, q_idx, kv_idx):  # dynamo traces numpy in a score_mod
    return score - np.abs(q_idx - kv_idx)

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=alibi)
""",
    )
    INVALID = (
        example,
        IMPORTS
        + """
def sinks(b, h, q_idx, kv_idx):
    return kv_idx in range(4)

create_block_mask(sinks, None, None, 128, 128)
""",
        IMPORTS
        + """
import math

def log_distance(score, b, h, q_idx, kv_idx):
    return score - math.log(q_idx - kv_idx + 1)

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=log_distance)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        for fn, node in body_functions(use):
            traced = functools.partial(maybe_traced_by_dynamo, use, fn)
            for item in python_data_uses(node, use.role, fn.module_ast, traced, fn.outer_functions):
                message = (
                    f"{where(fn)} {item.what}: torch passes tensors (batched by vmap, traced by dynamo), not "
                    f"Python numbers, so {_python_data_failure(item, use.role)}. {_python_data_advice(item)}"
                )
                yield self.body_finding(path, fn, item.node, message)


def _python_data_failure(item: PythonData, role: str) -> str:
    if item.kind == INDEX:
        return "it raises when torch calls the function (a list index calls `.item()`; a dict key is the tensor)"
    if item.kind == NUMPY:
        return "`create_block_mask`/`create_mask` raise `Cannot access data pointer of Tensor`"
    if item.kind == MEMBERSHIP and not item.fails_when_traced:
        return "an uncompiled `create_block_mask`/`create_mask` raises a vmap data-dependent control flow error"
    if role == SCORE_MOD:
        return "`flex_attention` raises when it traces the score_mod"
    return "it raises when torch calls the function, compiled or not"


def _python_data_advice(item: PythonData) -> str:
    if item.kind == INDEX:
        return "Make the data a tensor once, outside the function (`torch.tensor(...)`), and index that."
    if item.kind == MEMBERSHIP:
        return "Compare instead: `(x == a) | (x == b)`, or `(x >= start) & (x < stop)` for a range."
    if item.kind == MATH:
        return "Use the `torch` function of the same name (`torch.log`, `torch.sqrt`, ...)."
    return "Use the `torch` function of the same name."


# --------------------------------------------------------------------------- ESP025
class MaskReturnsNonBool(BodyRule):
    code = "ESP025"
    name = "mask-returns-non-bool"
    fix = "safe"
    roles = frozenset({MASK_MOD})
    summary = "A mask_mod given to `create_block_mask` returns numbers (`.int()`, `.float()`, an additive mask)."
    what_it_does = (
        "Finds a mask_mod passed to `create_block_mask` that returns a cast of its result (`.int()`, "
        "`.float()`, `.long()`, `.to(torch.float32)`, ...) or `torch.where(c, a, b)` with two numbers (`0.0` "
        "and `-inf`: an additive mask; `1` and `0`). A function used only with `create_mask` is not "
        "reported: there a float mask is a legitimate input to `scaled_dot_product_attention`."
    )
    why_bad = (
        "A BlockMask is built from a boolean mask. Measured on "
        f"{TORCH}: `create_block_mask` with `(q_idx >= kv_idx).int()`, `.float()`, `.to(torch.int8)`, "
        "`torch.where(c, 1, 0)` or `torch.where(c, 0.0, -inf)` raises `AssertionError: mask.dtype must be "
        "torch.bool`, eager and compiled (through `and_masks`: the same, or `NotImplementedError` for a float). "
        "`create_mask` accepts them and returns an int or float tensor."
    )
    example = (
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    return torch.where(q_idx >= kv_idx, 0.0, -float("inf"))

def build(n):
    return create_block_mask(lambda b, h, q, kv: (q >= kv).int(), None, None, n, n)

block_mask = create_block_mask(causal, None, None, 128, 128)
"""
    )
    use_instead = (
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

def build(n):
    return create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)

block_mask = create_block_mask(causal, None, None, 128, 128)
"""
    )
    fix_safety = (
        "The fix returns the boolean the numbers stand for: the receiver of the cast when it is a "
        "comparison (or `&`/`|`/`~` of comparisons), or `c` of `torch.where(c, 0, -inf)` / "
        "`torch.where(c, 1, 0)`. The function's result changes dtype (and, for `torch.where`, values), so "
        "the fix is safe only where nothing else can see that result: a lambda written in the call, or a "
        "def nested in a function whose every reference is the mask argument of `create_block_mask`, which "
        "raises on the old result, eager and compiled. Elsewhere (a module-level function, which other "
        "modules may call or pass to `create_mask`) the same edit is an unsafe fix (`--unsafe-fixes`)."
    )
    VALID = (
        IMPORTS
        + """
from torch.nn.attention.flex_attention import create_mask

def additive(b, h, q_idx, kv_idx):  # only for create_mask: a float mask for scaled_dot_product_attention
    return torch.where(q_idx >= kv_idx, 0.0, -float("inf"))

dense = create_mask(additive, 1, 1, 128, 128)
""",
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx).to(torch.bool)

create_block_mask(causal, None, None, 128, 128)
""",
    )
    INVALID = (
        example,
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx).float()

create_block_mask(causal, None, None, 128, 128)
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        seen: set[int] = set()
        checked = [u for u in facts.uses if u.role == MASK_MOD and u.api in _BOOLEAN_MASK_APIS]
        for use in checked:
            for fn, node in body_functions(use):
                if id(node) in seen:
                    continue
                seen.add(id(node))
                for item in returns.non_bool_returns(node, fn.module_ast, fn.outer_functions):
                    fix = _non_bool_fix(fn, item, facts.uses)
                    advice = (
                        f"Return the condition itself: `{ast.unparse(item.condition)}`"
                        if item.condition is not None
                        else "Return a boolean tensor (a comparison, without a cast)"
                    )
                    message = (
                        f"mask_mod {where(fn)} returns {item.what}, not a boolean: `create_block_mask` raises "
                        f"`AssertionError: mask.dtype must be torch.bool`. {advice}"
                        + (" (fixable with `esper-lint --fix`)." if fix is not None and fix.safe else ".")
                    )
                    yield self.body_finding(path, fn, item.node, message, fix)


def _only_create_block_mask(use: MaskUse) -> bool:
    return use.role == MASK_MOD and use.api == _CREATE_BLOCK_MASK and use.via_helper is None


def _non_bool_fix(fn: MaskFunction, item: returns.NonBoolReturn, uses: list[MaskUse]) -> Fix | None:
    condition = item.condition
    if condition is None or "#" in fn.positions.segment(item.node):
        return None
    text = fn.positions.segment(condition)
    if isinstance(condition, (ast.BoolOp, ast.IfExp, ast.NamedExpr, ast.Lambda)) or "\n" in text:
        text = f"({text})"
    safe = passed_only_to(fn, uses, _only_create_block_mask)
    edit = Edit(fn.positions.span(item.node), text)
    if safe:
        return Fix((edit,), description="return the condition")
    return Fix((edit,), UNSAFE, "return the condition (the function's result changes dtype)")


# --------------------------------------------------------------------------- ESP026
class MaskingInScoreMod(BodyRule):
    code = "ESP026"
    name = "masking-in-score-mod"
    roles = frozenset({SCORE_MOD})
    summary = "A score_mod that masks with -inf computes every block; a BlockMask would skip the masked ones."
    what_it_does = (
        "Finds a score_mod, passed to `flex_attention` without a `block_mask`, that returns "
        "`torch.where(cond, <score>, -inf)`, `<score>.masked_fill(cond, -inf)` or `<score> if cond else -inf` "
        "(or a large negative number instead of -inf) where `cond` does not read the score: a mask written "
        "as a score_mod. `torch.where(cond, score, score + bias)` is not masking and is fine."
    )
    why_bad = (
        "`flex_attention` skips only the blocks a BlockMask marks empty; a score_mod runs for every score, so "
        "masking there gives the same output for all the work. Measured on "
        f"{TORCH}, compiled `flex_attention` (inductor), B=1, H=4, D=64, causal window of 256: S=4096 "
        "1170.5 ms with the masking score_mod vs 57.3 ms with the BlockMask (20.4x; S=2048: 339.8 vs 63.5 ms, "
        "5.4x), outputs equal to 5e-7. Eager `flex_attention` computes every block either way (S=2048: 1224 "
        "vs 1052 ms)."
    )
    example = (
        IMPORTS
        + """
def sliding_window(score, b, h, q_idx, kv_idx):
    return torch.where((q_idx >= kv_idx) & (q_idx - kv_idx < 256), score, -float("inf"))

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=sliding_window)
"""
    )
    use_instead = (
        IMPORTS
        + """
def sliding_window(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx) & (q_idx - kv_idx < 256)

def attend(q, k, v):
    block_mask = create_block_mask(sliding_window, None, None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    fix_safety = (
        "No automatic fix: the BlockMask needs the sequence lengths and a place to be built once (and "
        "cached), which only the author knows. The message gives the mask_mod to write."
    )
    VALID = (
        IMPORTS
        + """
def biased(score, b, h, q_idx, kv_idx):  # not masking: both branches keep a score
    return torch.where(q_idx >= kv_idx, score, score + 1.0)

def soft_cap(score, b, h, q_idx, kv_idx):  # the condition reads the score: no mask_mod can say it
    return torch.where(score > 30, score, -float("inf"))

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=biased), flex_attention(q, k, v, score_mod=soft_cap)
""",
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

def causal_score(score, b, h, q_idx, kv_idx):
    return torch.where(q_idx >= kv_idx, score, -float("inf"))

def attend(q, k, v, block_mask):  # a BlockMask already skips the blocks
    return flex_attention(q, k, v, score_mod=causal_score, block_mask=block_mask)
""",
    )
    INVALID = (
        example,
        IMPORTS
        + """
def document(score, b, h, q_idx, kv_idx):
    return score.masked_fill(DOCUMENT[q_idx] != DOCUMENT[kv_idx], float("-inf"))

DOCUMENT = torch.zeros(1024, dtype=torch.int64)

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=document, block_mask=None)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        block_mask = use.arguments.get("block_mask")
        if not use.arguments or (block_mask is not None and block_mask.constant is not None):
            return  # a BlockMask (or something unknown) already skips blocks
        for fn, node in body_functions(use):
            for item in returns.score_masking(node, fn.module_ast, fn.outer_functions):
                yield self.body_finding(path, fn, item.node, _masking_message(fn, node, item))


def _masking_message(fn: MaskFunction, node: FuncNode, item: returns.ScoreMasking) -> str:
    params = (positional_parameters(node, SCORE_MOD) or [])[1:]
    condition = ast.unparse(item.condition)
    if not item.kept_where_true:  # the condition says where to drop: the mask_mod keeps the rest
        dropped = item.condition
        if isinstance(dropped, ast.UnaryOp) and isinstance(dropped.op, ast.Invert):
            condition = ast.unparse(dropped.operand)
        else:
            condition = f"~({condition})"
    return (
        f"score_mod {where(fn)} masks with {item.form} and -inf: `flex_attention` still computes every block "
        "(same output; measured 20x slower compiled at S=4096 with a 256 window). Write the condition as a "
        f"mask_mod, `def mask_mod({', '.join(params)}): return {condition}`, pass "
        "`block_mask=create_block_mask(mask_mod, ...)` and keep only the score arithmetic in the score_mod."
    )
