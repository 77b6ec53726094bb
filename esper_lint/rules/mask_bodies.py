"""Rules about what a mask_mod / score_mod body does with the tensors FlexAttention passes in.

Facts come from `esper_lint.analysis.mask_bodies` (pure functions over the function's stdlib `ast`);
findings are reported inside the function, where the user must change the code.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator

from ..analysis import loop_iterables as loops
from ..analysis import mask_bodies as bodies
from ..analysis.edit_safety import INVERSE_COMPARISON, NO_FIX, EditSafety
from ..analysis.model import MASK_MOD, SCORE_MOD, MaskFunction, MaskUse
from ..analysis.operator_precedence import SourceText, boolean_locals, contains_mistake, grouping_mistake
from ..core.findings import Finding
from ..core.fixes import Edit, Fix
from ..core.span import Span
from .base import Rule, where

IMPORTS = "import torch\nfrom torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"
TORCH = "torch 2.13.0, CPU"


_BOTH = frozenset({MASK_MOD, SCORE_MOD})
# A rewrite of code that groups `&`/`|` with a comparison would keep the wrong grouping ESP017 reports.
_GROUPING_MISTAKE = EditSafety(NO_FIX, "it groups `&`/`|` with a comparison by mistake (ESP017): fix that first")


def body_functions(use: MaskUse) -> Iterator[tuple[MaskFunction, bodies.FuncNode]]:
    """The functions of a use whose body can be read (the backend gave its `ast` node and positions)."""
    for fn in use.functions:
        node = fn.called_as  # a bound method or a partial: parameters from torch's first argument
        if fn.positions is not None and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield fn, node


class BodyRule(Rule):
    """A rule that reports inside the mask/score function, where the code must change. It judges the body
    alone, so it also sees functions no call passes, recognised by their parameters."""

    needs_call = False

    def body_finding(self, path: str, fn: MaskFunction, node: ast.AST, message: str, fix: Fix | None = None) -> Finding:
        return self.finding_at(path, fn.positions.span(node), message, fix)


# --------------------------------------------------------------------------- source text of ast nodes
def _segment(fn: MaskFunction, node: ast.AST) -> str:
    """The node's source text (without its enclosing parentheses, as `ast` positions go)."""
    text: str = fn.positions.segment(node)
    return text


def _render_tensor_logic(fn: MaskFunction, expr: ast.expr, nested: bool) -> str:
    """`and`/`or` of comparisons written with `&`/`|`, each comparison in parentheses; `not (a < b)` as
    the inverted comparison (analysis/edit_safety.py says when each is offered)."""
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        compare = expr.operand
        if isinstance(compare, ast.UnaryOp) and isinstance(compare.op, ast.Not):
            return _render_tensor_logic(fn, compare.operand, nested)  # `not not x` is x's truth
        assert isinstance(compare, ast.Compare)
        inverse = INVERSE_COMPARISON[type(compare.ops[0])]
        text = f"{_operand(fn, compare.left)} {inverse} {_operand(fn, compare.comparators[0])}"
        return f"({text})" if nested else text
    if isinstance(expr, ast.BoolOp):
        joiner = " & " if isinstance(expr.op, ast.And) else " | "
        joined = joiner.join(_render_tensor_logic(fn, v, nested=True) for v in expr.values)
        return f"({joined})" if nested else joined
    return f"({_segment(fn, expr)})" if nested else _segment(fn, expr)


_BINDS_TIGHTER_THAN_COMPARISON = (ast.Name, ast.Constant, ast.Attribute, ast.Subscript, ast.Call, ast.BinOp)


def _operand(fn: MaskFunction, expr: ast.expr) -> str:
    text = _segment(fn, expr)
    return text if isinstance(expr, _BINDS_TIGHTER_THAN_COMPARISON) else f"({text})"


def _control_flow_fix(fn: MaskFunction, item: bodies.ControlFlow) -> Fix | None:
    """The rewrite of `item` the analysis offers (safe or unsafe), or None."""
    target = item.node
    if not item.fixable or "#" in _segment(fn, target):
        return None  # a comment inside the expression would be lost
    applicability = item.safety.applicability
    if isinstance(target, ast.IfExp):
        condition = _render_tensor_logic(fn, target.test, nested=False)
        branches = [
            _render_tensor_logic(fn, b, nested=False) if _is_logic(b) else _segment(fn, b)
            for b in (target.body, target.orelse)
        ]
        text = f"torch.where({condition}, {branches[0]}, {branches[1]})"
        return Fix((Edit(fn.positions.span(target), text),), applicability, "use `torch.where`")
    if isinstance(target, (ast.BoolOp, ast.UnaryOp)):
        text = _render_tensor_logic(fn, target, nested=False)
        description = "use `&`, `|` and inverted comparisons"
        return Fix((Edit(fn.positions.span(target), text),), applicability, description)
    return None


def _is_logic(expr: ast.expr) -> bool:
    return isinstance(expr, ast.BoolOp) or (isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not))


def fix_advice(fix: Fix | None, reason: str) -> str:
    """How a message ends: what `--fix` does about it, and why not more."""
    if fix is not None and fix.safe:
        return " (fixable with `esper-lint --fix`)."
    if fix is not None:
        return f" (unsafe fix, applied only with `--unsafe-fixes`: {reason})."
    return f"; no automatic fix because {reason}." if reason else "."


class MaskPythonControlFlow(BodyRule):
    code = "ESP008"
    name = "mask-python-control-flow"
    fix = "safe"  # for `and`/`or`; `not` and `x if c else y` are unsafe
    roles = _BOTH
    summary = "Python `if`/`and`/`or`/`not`/`.item()` on a mask or score tensor fails when torch runs the function."
    what_it_does = (
        "Finds Python control flow on values computed from the parameters of a mask_mod or score_mod: "
        "`if`/`while`/`assert` tests, `x if c else y`, `and`/`or`/`not`, chained comparisons "
        "(`a < b < c`), `.item()`, the builtins `int()`, `float()`, `bool()`, `for` over `range()` of such a "
        "value or over a 0-d one (`for i in q_idx:`), and `min()`/`max()` where the call that receives the "
        "function runs it under plain vmap (an uncompiled `create_block_mask`/`create_mask`, no `_compile`, "
        "not inside a compiled function; dynamo turns them into `torch.minimum`/`torch.maximum`). "
        "Values computed only from constants or captured Python numbers (`if WINDOW > 0:`) are fine, and so "
        "is a loop over a captured tensor's rows (`for start, length in segments[b]:`). Functions no call "
        "passes are checked too when their parameters are FlexAttention's (`(b, h, q_idx, kv_idx)`, "
        "`(score, b, h, q_idx, kv_idx)`) in a module that imports FlexAttention."
    )
    why_bad = (
        "FlexAttention never calls the function with Python numbers: `create_block_mask` and `create_mask` "
        "run it under `vmap`, and `flex_attention` traces a score_mod with dynamo. A Python branch needs "
        "one concrete value, so the call fails, and only when the code runs. Measured on "
        f"{TORCH}: `create_block_mask` raises `RuntimeError: vmap: It looks like you're attempting to use "
        "a Tensor in some data-dependent control flow` (`.item()`: `vmap: It looks like you're calling "
        ".item() on a Tensor`), and `flex_attention` with such a score_mod raises "
        "`torch._dynamo.exc.Unsupported: Data-dependent branching`, eager and compiled."
    )
    example = (
        IMPORTS
        + """
def sliding_window(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx and q_idx - kv_idx < 256

block_mask = create_block_mask(sliding_window, None, None, 4096, 4096)
"""
    )
    use_instead = (
        IMPORTS
        + """
def sliding_window(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx) & (q_idx - kv_idx < 256)

block_mask = create_block_mask(sliding_window, None, None, 4096, 4096)
"""
    )
    fix_safety = (
        "Safe only for `and`/`or` whose operands are all comparisons (`==`, `!=`, `<`, `<=`, `>`, `>=`) of the "
        "function's parameters (never rebound in its body), integer literals, and `+`, `-`, `*` of them (`//`, "
        "`%` by a non-zero literal), each comparison reading the same parameters: `&`/`|` then evaluate the same "
        "things, which cannot raise, bind or do anything else, and give the same value and type for Python "
        'numbers, 0-d tensors and any mix of them (docs/fix.md, "What safe means"). Otherwise the '
        "message says why there is no fix: an operand that may raise or has an effect where `and` skipped it "
        "(`q % kv`), a walrus, a method or a name the analysis cannot type, comparisons of different "
        "parameters. Unsafe (`--unsafe-fixes`): `not (a < b)` -> `a >= b` (a Python bool becomes a tensor, and "
        "offered only where the inversion is exact for integers), and `a if c else b` -> `torch.where(c, a, "
        "b)` where both branches are plain and `torch` is certainly the torch module (a direct call with "
        "Python numbers then raises `TypeError`, and a number becomes a tensor). `~` is never written: on a "
        "Python bool it is bitwise (`~True == -2`). An `if` statement, `.item()`, `min()`... are left to you: "
        "the message says which tensor operation to use."
    )
    VALID = (
        IMPORTS
        + """
WINDOW = 256

def sliding_window(b, h, q_idx, kv_idx):
    if WINDOW > 0:  # a module constant: decided once, when the function is traced
        return (q_idx >= kv_idx) & (q_idx - kv_idx < WINDOW)
    return q_idx >= kv_idx

create_block_mask(sliding_window, None, None, 4096, 4096)
""",
        IMPORTS
        + """
def build(n, causal: bool):
    def mask(b, h, q_idx, kv_idx):
        keep = q_idx >= 0
        return keep & (q_idx >= kv_idx) if causal else keep
    return create_block_mask(mask, None, None, n, n)
""",
        IMPORTS
        + """
def bias(score, b, h, q_idx, kv_idx):
    return torch.where(q_idx >= kv_idx, score + (q_idx - kv_idx), -float("inf"))

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=bias)
""",
        IMPORTS
        + """
def attend(q, k, v):  # dynamo traces a score_mod and turns builtin min into torch.minimum
    return flex_attention(q, k, v, score_mod=lambda s, b, h, q, kv: min(s, q - kv))
""",
        IMPORTS
        + """
def capped(b, h, q_idx, kv_idx):
    return max(q_idx - kv_idx, 0) < 128

torch.compile(create_block_mask)(capped, None, None, 1024, 1024)  # compiled: dynamo rewrites max
""",
    )
    INVALID = (
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    if q_idx >= kv_idx:
        return True
    return False

create_block_mask(causal, None, None, 128, 128)
""",
        IMPORTS
        + """
def build(lengths, n):
    def padding(b, h, q_idx, kv_idx):
        valid = lengths[b]
        return kv_idx < valid.item()
    return create_block_mask(padding, None, None, n, n)
""",
        IMPORTS
        + """
def soft_cap(score, b, h, q_idx, kv_idx):
    return score if q_idx >= kv_idx else -float("inf")

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=soft_cap)
""",
        IMPORTS
        + """
def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=lambda s, b, h, q, kv: s + int(q - kv))
""",
        IMPORTS
        + """
def capped(b, h, q_idx, kv_idx):
    return max(q_idx - kv_idx, 0) < 128  # plain vmap: Python's max compares tensors

create_block_mask(capped, None, None, 1024, 1024)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        for fn, node in body_functions(use):
            traced = functools.partial(maybe_traced_by_dynamo, use, fn)  # read from the source only when asked
            source = SourceText(fn.positions.start, fn.positions.end, fn.positions.text_between)
            for item in bodies.control_flow(
                node, use.role, fn.module_ast, traced, fn.outer_functions, fn.module_summary
            ):
                if isinstance(item.node, ast.Compare) and grouping_mistake(item.node, source, boolean_locals(node)):
                    continue  # `kv >= 30 & kv < 606`: a chain only by mistake, which ESP017 reports
                if item.fixable and contains_mistake(item.node, source, boolean_locals(node)):
                    item = item._replace(
                        safety=EditSafety(
                            NO_FIX, "it groups `&`/`|` with a comparison by mistake (ESP017): fix that first"
                        )
                    )  # a fix would keep the wrong grouping
                fix = _control_flow_fix(fn, item)
                reason = item.safety.reason
                if item.fixable and fix is None:
                    reason = "a comment inside the expression would be lost"
                message = (
                    f"{item.what} on a tensor computed from the parameters of {where(fn)}: "
                    f"{_fails(use.role, item.what)} "
                    f"Use {_advice(item.what)} instead" + fix_advice(fix, reason)
                )
                yield self.body_finding(path, fn, item.node, message, fix)


def maybe_traced_by_dynamo(use: MaskUse, fn: MaskFunction) -> bool:
    """Whether dynamo may trace the function (then builtin `min`/`max` work), decided by the call that
    receives it: a score_mod always is; a mask_mod is not when that call is an uncompiled
    `create_block_mask`/`create_mask` (`MaskUse.plain_vmap`), whatever else the module compiles."""
    return use.role == SCORE_MOD or not use.plain_vmap


def _advice(what: str) -> str:
    """The tensor operation that replaces one kind of Python control flow (`ControlFlow.what`)."""
    if what in ("`and`", "`or`", "`not`"):
        return "`&`, `|`, `~` with each comparison in parentheses"
    if what.startswith("a chained"):
        return "`(a < b) & (b < c)`"
    if what in ("`min()`", "`max()`"):
        return "`torch.minimum`/`torch.maximum`"
    if what in ("`.item()`", "`int()`", "`float()`", "`bool()`"):
        return "the tensor itself (compare or index with it directly)"
    if what in (loops.RANGE, loops.ZERO_D):
        return (
            "a loop over a fixed Python bound (a captured int or a captured tensor's rows), combining the steps "
            "with `&`/`torch.where`"
        )
    return "`torch.where(condition, a, b)` (both branches are computed)"


def _fails(role: str, what: str) -> str:
    if what in ("`.item()`", "`int()`", "`float()`", loops.RANGE):
        return "vmap raises `RuntimeError: ... calling .item() on a Tensor` when torch calls it."
    if what == loops.ZERO_D:
        return "torch passes 0-d tensors, and iterating one raises `TypeError: iteration over a 0-d tensor`."
    if role == SCORE_MOD:
        return "`flex_attention` raises `Unsupported: Data-dependent branching` when it traces the score_mod."
    return (
        "`create_block_mask`/`create_mask` raise a vmap `RuntimeError` (data-dependent control flow) when they call it."
    )


class ScoreModInPlace(BodyRule):
    code = "ESP011"
    name = "score-mod-in-place"
    fix = "unsafe"
    roles = frozenset({SCORE_MOD})
    summary = "A score_mod that updates `score` in place works eagerly and fails under `torch.compile`."
    what_it_does = (
        "Finds in-place updates of a score_mod's `score` parameter (its first): augmented assignment "
        "(`score += bias`), in-place methods (`score.add_(bias)`, `score.masked_fill_(...)`) and item "
        "assignment (`score[...] = ...`)."
    )
    why_bad = (
        "The eager path happens to accept the mutation, so unit tests pass; compiling `flex_attention` "
        "(the supported, fast path) fails. Measured on "
        f"{TORCH}: eager output is produced, `torch.compile(flex_attention)` raises "
        "`BackendCompilerFailed ... UnsupportedAliasMutationException: Mutations detected in score_mod`."
    )
    example = (
        IMPORTS
        + """
def relative_bias(score, b, h, q_idx, kv_idx):
    score += q_idx - kv_idx
    return score

def attend(q, k, v):
    return torch.compile(flex_attention)(q, k, v, score_mod=relative_bias)
"""
    )
    use_instead = (
        IMPORTS
        + """
def relative_bias(score, b, h, q_idx, kv_idx):
    return score + (q_idx - kv_idx)

def attend(q, k, v):
    return torch.compile(flex_attention)(q, k, v, score_mod=relative_bias)
"""
    )
    fix_safety = (
        "Unsafe (applied only with `--fix --unsafe-fixes`): `score += x` (also `-=`, `*=`, `/=`) becomes "
        "`score = score + (x)`. Under `flex_attention` that computes the same scores, but a tensor passed in "
        "directly is no longer updated in place (its caller, or a view of it, keeps the old values), and an "
        "integer tensor score gets a floating result where `/=` raised. Offered only when `x` reads just "
        "parameters the body never rebinds and numbers (a float64 tensor would widen the result), nothing "
        "reads `score` before the update (an alias would no longer see it), it is not in a loop, and every "
        "in-place update of `score` in the function can be rewritten. In-place methods and item assignment "
        "have no automatic fix."
    )
    VALID = (
        IMPORTS
        + """
def relative_bias(score, b, h, q_idx, kv_idx):
    score = score * 2  # a new tensor: updating it later does not touch the input
    score += q_idx - kv_idx
    return score

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=relative_bias)
""",
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):  # a mask_mod has no score to update
    b += 0
    return q_idx >= kv_idx

create_block_mask(causal, None, None, 128, 128)
""",
    )
    INVALID = (
        IMPORTS
        + """
def relative_bias(score, b, h, q_idx, kv_idx):
    score += q_idx - kv_idx
    return score

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=relative_bias)
""",
        IMPORTS
        + """
def attend(q, k, v, bias):
    def add_bias(score, b, h, q_idx, kv_idx):
        score.add_(bias[h])
        return score
    return flex_attention(q, k, v, score_mod=add_bias)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        for fn, node in body_functions(use):
            mutations = bodies.score_mutations(node)
            safety = bodies.score_update_safety(node, mutations)
            source = SourceText(fn.positions.start, fn.positions.end, fn.positions.text_between)
            # `score += q >= kv & 1`: rewriting it would keep a grouping ESP017 reports.
            safety = [
                EditSafety(NO_FIX, "it groups `&`/`|` with a comparison by mistake (ESP017): fix that first")
                if s.offered and isinstance(stmt, ast.AugAssign) and contains_mistake(stmt.value, source)
                else s
                for stmt, s in zip(mutations, safety, strict=True)
            ]
            fixes = [_augmented_assignment_fix(fn, stmt, s) for stmt, s in zip(mutations, safety, strict=True)]
            # One rewritten alone rebinds `score`, and the others would stop being in-place updates: all or none.
            if any(s.offered and f is None for s, f in zip(safety, fixes, strict=True)):
                fixes = [None] * len(fixes)
                safety = [EditSafety(NO_FIX, "another update of `score` here cannot be rewritten")] * len(safety)
            for stmt, item, fix in zip(mutations, safety, fixes, strict=True):
                what = _describe_mutation(stmt)
                message = (
                    f"score_mod {where(fn)} updates its `score` in place ({what}): eager runs, but compiled "
                    "`flex_attention` fails (`Mutations detected in score_mod`). Compute a new tensor: "
                    "`score = score + bias` / `return score + bias`" + fix_advice(fix, item.reason)
                )
                yield self.body_finding(path, fn, stmt, message, fix)


_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
}
_ATOMS = (ast.Name, ast.Constant, ast.Attribute, ast.Subscript, ast.Call)


def _augmented_assignment_fix(fn: MaskFunction, stmt: ast.AST, safety: EditSafety) -> Fix | None:
    """`score += x` -> `score = score + (x)`, when the analysis offers it (analysis/edit_safety.py: always
    unsafe) and the text allows it: target, operator and value on one line, no comment between."""
    if not safety.offered or not isinstance(stmt, ast.AugAssign) or not isinstance(stmt.target, ast.Name):
        return None
    positions = fn.positions
    (line, target_end), (value_line, value_start) = positions.end(stmt.target), positions.start(stmt.value)
    if line != value_line:
        return None
    operator = _OPERATORS[type(stmt.op)]
    between = positions.lines[line - 1][target_end:value_start]
    at = between.find(operator + "=")
    if at < 0 or "#" in between:
        return None
    column = target_end + at + 1
    name = stmt.target.id
    edits = [Edit(Span(line, column, line, column + len(operator) + 1), f"= {name} {operator}")]
    after = positions.lines[value.end_line - 1][value.end_column - 1 :] if (value := positions.span(stmt.value)) else ""
    already_parenthesised = between.rstrip().endswith("(") and after.lstrip().startswith(")")
    if not isinstance(stmt.value, _ATOMS) and not already_parenthesised:
        edits.insert(1, Edit(Span(value.line, value.column, value.line, value.column), "("))
        edits.append(Edit(Span(value.end_line, value.end_column, value.end_line, value.end_column), ")"))
    return Fix(tuple(edits), safety.applicability, f"`{name} = {name} {operator} ...`")


def _describe_mutation(stmt: ast.AST) -> str:
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        return f"`{stmt.target.id} {_OPERATORS.get(type(stmt.op), '?')}= ...`"
    if isinstance(stmt, ast.Call) and isinstance(stmt.func, ast.Attribute):
        return f"`.{stmt.func.attr}()`"
    return "item assignment"


class ScoreModReturnsMask(BodyRule):
    code = "ESP012"
    name = "score-mod-returns-mask"
    roles = frozenset({SCORE_MOD})
    summary = "A score_mod that returns a boolean (or ignores `score`) silently replaces the attention scores."
    what_it_does = (
        "Finds a function passed as `score_mod` that returns a comparison or another boolean expression "
        "(a mask_mod's result), or that never reads its `score` parameter."
    )
    why_bad = (
        "`flex_attention` uses whatever the score_mod returns as the attention score: a boolean becomes "
        "0/1 and the real q·k scores are thrown away. Nothing raises in eager mode. Measured on "
        f"{TORCH}: `score_mod=causal` runs eagerly and its output differs from "
        "`scaled_dot_product_attention` under the intended causal mask (max error about 2.9 at B=2, H=2, "
        "S=256, D=16); compiled, it fails in code generation."
    )
    example = (
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

def causal_score(score, b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=causal_score)
"""
    )
    use_instead = (
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

def attend(q, k, v):
    block_mask = create_block_mask(causal, None, None, q.shape[-2], k.shape[-2])
    return flex_attention(q, k, v, block_mask=block_mask)
"""
    )
    fix_safety = (
        "No automatic fix: use the function as a mask_mod (`block_mask=create_block_mask(...)`); "
        "`torch.where(c, score, -float('inf'))` also gives the right output, but computes every block (ESP026)."
    )
    VALID = (
        IMPORTS
        + """
def causal_score(score, b, h, q_idx, kv_idx):
    return torch.where(q_idx >= kv_idx, score, -float("inf"))

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=causal_score)
""",
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):  # a mask_mod returns a boolean: fine
    return q_idx >= kv_idx

create_block_mask(causal, None, None, 128, 128)
""",
    )
    INVALID = (
        IMPORTS
        + """
def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=lambda score, b, h, q, kv: q >= kv)
""",
        IMPORTS
        + """
def alibi(score, b, h, q_idx, kv_idx):
    return -(q_idx - kv_idx).abs() * 0.5

def attend(q, k, v):
    return flex_attention(q, k, v, None, score_mod=alibi)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        for fn, node in body_functions(use):
            for misuse in bodies.score_mod_misuse(node):
                if misuse.returns_boolean:
                    message = (
                        f"score_mod {where(fn)} returns a boolean: `flex_attention` uses it as the score (0/1), "
                        "silently wrong attention in eager, a failure when compiled. Use the function as a "
                        "mask_mod: `block_mask=create_block_mask(mask_mod, ...)`."
                    )
                else:
                    message = (
                        f"score_mod {where(fn)} never reads `score`: its result replaces the q·k scores, so "
                        "attention ignores the queries and keys. Add to the score (`return score + bias`)."
                    )
                yield self.body_finding(path, fn, misuse.node, message)


class MaskArgsSwapped(BodyRule):
    code = "ESP014"
    name = "mask-args-swapped"
    roles = _BOTH
    summary = "Mask parameters named kv before q: torch passes q first, so the mask comes out transposed."
    what_it_does = (
        "Finds a mask_mod or score_mod whose query/key index parameters are named in the wrong order: "
        "`(b, h, kv_idx, q_idx)`, `(score, b, h, k, q)`."
    )
    why_bad = (
        "FlexAttention passes its arguments by position: `mask_mod(b, h, q_idx, kv_idx)`. A function that "
        "names them the other way round reads the query index as the key index, so the mask is "
        f"transposed without any error: on {TORCH}, `kv_idx <= q_idx` written with swapped names gives "
        "the anti-causal mask (`create_mask` equals the transpose of the intended one)."
    )
    example = (
        IMPORTS
        + """
def causal(b, h, kv_idx, q_idx):
    return kv_idx <= q_idx

create_block_mask(causal, None, None, 128, 128)
"""
    )
    use_instead = (
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    return kv_idx <= q_idx

create_block_mask(causal, None, None, 128, 128)
"""
    )
    fix_safety = "No automatic fix: whether the names or the body are wrong needs a person."
    VALID = (
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

create_block_mask(causal, None, None, 128, 128)
""",
        IMPORTS
        + """
def mask(b, h, m, n):  # names that say nothing about the order
    return m >= n

create_block_mask(mask, None, None, 128, 128)
""",
    )
    INVALID = (
        IMPORTS
        + """
def causal(b, h, kv_idx, q_idx):
    return kv_idx <= q_idx

create_block_mask(causal, None, None, 128, 128)
""",
        IMPORTS
        + """
def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=lambda score, b, h, k_idx, q_idx: score + (q_idx - k_idx))
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        for fn, node in body_functions(use):
            swapped = bodies.swapped_index_names(node, use.role)
            if swapped is None:
                continue
            kv_name, q_name = swapped
            first = "score, b, h" if use.role == SCORE_MOD else "b, h"
            message = (
                f"{where(fn)} names its parameters `{kv_name}` before `{q_name}`, but torch passes "
                f"`{use.role}({first}, q_idx, kv_idx)` by position: `{kv_name}` receives the query index and "
                "the mask is silently transposed. Swap the parameter names (and check the body)."
            )
            yield self.finding_at(path, fn.span, message)


class CapturedScalarRecompiles(BodyRule):
    code = "ESP015"
    name = "captured-scalar-recompiles"
    default_enabled = False
    roles = _BOTH
    summary = "A mask/score closure reads a per-call Python number: each new value recompiles (dynamic=False)."
    what_it_does = (
        "In a module that compiles with `torch.compile(..., dynamic=False)`, finds a mask_mod or score_mod "
        "closure that reads a Python number computed per call by its enclosing function: a parameter "
        "annotated `int`/`float`, or a local assigned from `int(...)`, `float(...)`, `len(...)`, `round(...)` "
        "or `.item()`. Off by default: whether the value really varies, and whether that code path is the "
        "compiled one, is context a linter cannot see."
    )
    why_bad = (
        "Dynamo specialises on captured Python numbers: every new value is a guard failure and a new "
        "compile, and past `torch._dynamo.config.recompile_limit` (8) the function silently runs eagerly. "
        f"Measured on {TORCH}: 12 calls with 12 offsets gave 8 compiles and then eager execution; the same "
        "values as 0-d tensors compiled once."
    )
    example = (
        IMPORTS
        + """
@torch.compile(dynamic=False)
def attend(q, k, v, lengths):
    offset = int(lengths.max())

    def shifted(score, b, h, q_idx, kv_idx):
        return score + (q_idx - kv_idx + offset)

    return flex_attention(q, k, v, score_mod=shifted)
"""
    )
    use_instead = (
        IMPORTS
        + """
@torch.compile(dynamic=False)
def attend(q, k, v, lengths):
    offset = lengths.max()  # a 0-d tensor: an input of the graph, not a constant baked into it

    def shifted(score, b, h, q_idx, kv_idx):
        return score + (q_idx - kv_idx + offset)

    return flex_attention(q, k, v, score_mod=shifted)
"""
    )
    fix_safety = "No automatic fix: keep the value a tensor (`torch.tensor(x)`), or compile with dynamic shapes."
    VALID = (
        IMPORTS
        + """
@torch.compile(dynamic=False)
def attend(q, k, v):
    window = 256  # a constant: one compile

    def local(score, b, h, q_idx, kv_idx):
        return torch.where(q_idx - kv_idx < window, score, -float("inf"))

    return flex_attention(q, k, v, score_mod=local)
""",
        IMPORTS
        + """
def attend(q, k, v, offset: int):  # nothing here compiles with dynamic=False
    def shifted(score, b, h, q_idx, kv_idx):
        return score + offset

    return flex_attention(q, k, v, score_mod=shifted)
""",
    )
    INVALID = (
        example,
        IMPORTS
        + """
def build(n, offset: int):
    def mask(b, h, q_idx, kv_idx):
        return q_idx + offset >= kv_idx
    return create_block_mask(mask, None, None, n, n)

compiled = torch.compile(build, dynamic=False)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        for fn, node in body_functions(use):
            if not bodies.compiles_with_static_shapes(fn.module_ast):
                continue
            for read in bodies.captured_python_numbers(fn.module_ast, node, fn.outer_functions):
                message = (
                    f"{use.role} {where(fn)} captures the Python number `{read.id}`: under "
                    "`torch.compile(..., dynamic=False)` every new value compiles again, and after 8 it silently "
                    f"runs eagerly. Keep it a tensor (`torch.tensor({read.id})`) or compile with dynamic shapes."
                )
                yield self.body_finding(path, fn, read, message)
