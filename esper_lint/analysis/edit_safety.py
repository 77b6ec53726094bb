"""When does a text-edit fix inside a mask/score function keep what the function does? Pure functions over `ast`.

The definition every fix is held to (docs/fix.md, "What safe means"): for every input the function can
receive, the fixed function returns an equal value of the same type (and dtype), raises the same
exceptions and has the same side effects. The inputs: Python numbers (`int` of any size, `float`, `bool`)
and numeric 0-d tensors, in any mix, in a direct call (a unit test's reference loop; a Python int that
meets a tensor is taken to be an index, its values within int64); vmap-batched tensors under
`create_mask`/`create_block_mask`; dynamo's traced tensors under `flex_attention`. The one difference a fix
may make is the one it is for: where the original raises the error the finding reports (vmap's or
dynamo's refusal of data-dependent control flow), the fixed function runs.

What follows from it, for the rewrites the rules offer:
- `a and b` / `a or b` -> `(a) & (b)` / `(a) | (b)` is **safe** only when every operand is a comparison of
  *plain operands*, and all comparisons read the same parameters. A plain operand is a parameter the body
  never rebinds, an integer literal that fits int32, `+`, `-`, `*` of plain operands, or `//`, `%` by a
  non-zero such literal (a float literal only as a whole side of a comparison): it cannot raise, bind,
  print or return anything but a number or a tensor, for any numbers (a Python int too large for a float
  makes `/` and float arithmetic raise `OverflowError`) and for int32 tensors (a literal past int32 makes
  `//` raise). Then `and` and `&` evaluate
  the same things with no effect, and both give a Python bool on numbers and a bool tensor on tensors
  (with one parameter a number and another a tensor, comparisons reading different parameters would
  mix the two: `and` could return the bool where `&` gives a tensor).
- `not (a < b)` -> `a >= b` is **unsafe**: `not` returns a Python bool where the comparison returns a
  tensor on 0-d tensors, and NaN (a Python float argument) is neither `<` nor `>=`. It is offered (behind
  `--unsafe-fixes`) only where the inversion is exact for integers.
- `a if c else b` -> `torch.where(c, a, b)` is **unsafe**: with Python numbers `c` is a bool, and
  `torch.where` raises `TypeError`; it returns a tensor where the original returned a number.
- `score += x` -> `score = score + x` is **unsafe**: a tensor passed in is no longer updated in place (a
  caller holding it, or a view of it, sees the difference), and an integer tensor score gets a float
  result where `/=` raised.
Each answer errs towards "no fix": a fix declined or marked unsafe has the reason in its message.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Container, Sequence
from typing import NamedTuple

from ..core.fixes import SAFE, UNSAFE

NO_FIX = ""  # beside core.fixes' SAFE and UNSAFE: no rewrite is offered

INVERSE_COMPARISON: dict[type[ast.cmpop], str] = {
    ast.Eq: "!=",
    ast.NotEq: "==",
    ast.Lt: ">=",
    ast.LtE: ">",
    ast.Gt: "<=",
    ast.GtE: "<",
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


class EditSafety(NamedTuple):
    """What a text-edit fix may do: `applicability` SAFE, UNSAFE or NO_FIX, and `reason`, worded to follow
    "no automatic fix because" (NO_FIX) or "unsafe because" (UNSAFE); empty when SAFE."""

    applicability: str
    reason: str = ""

    @property
    def offered(self) -> bool:
        return self.applicability != NO_FIX


class Body(NamedTuple):
    """What the safety checks need to know about the function around an expression."""

    parameters: Sequence[str]  # the positional parameters torch passes (`b, h, q_idx, kv_idx`, or with `score`)
    indices: Container[str]  # those that are indices: integers (or integer tensors) when torch calls
    rebound: Container[str]  # names the body binds or deletes (a rebound parameter's type is unknown)


# --------------------------------------------------------------------------- plain operands
class _Operand(NamedTuple):
    parameters: frozenset[str]  # the parameters it reads
    integral: bool  # an integer for integer arguments: no float


def _operand(expr: ast.expr, body: Body, whole: bool = True, floats: bool = False) -> _Operand | str:
    """A plain operand (see the module docstring) and what it reads; else why it is not one. `whole`: it
    is a side of a comparison itself, not part of arithmetic (only there may a number be a float: a float
    in arithmetic raises `OverflowError` on a Python int too large for a float, and so does `/`).
    `floats`: allow float literals and `/` by a non-zero literal anywhere (a `torch.where` branch: that
    fix is unsafe for Python numbers anyway, and on tensors they cannot raise)."""
    if isinstance(expr, ast.Name):
        if expr.id not in body.parameters:
            return f"`{expr.id}` is not a parameter of the function (its type and value are unknown here)"
        if expr.id in body.rebound:
            return f"the parameter `{expr.id}` is rebound in the body (what it holds there is unknown)"
        return _Operand(frozenset({expr.id}), expr.id in body.indices)
    number = _number(expr)
    if number is not None:
        if isinstance(number, float):
            if whole or floats:
                return _Operand(frozenset(), False)
            return f"`{ast.unparse(expr)}` in arithmetic may raise (`OverflowError` for a large Python int)"
        if abs(number) >= _INT32_LIMIT:
            return f"`{ast.unparse(expr)}` may raise with an integer tensor (it does not fit its dtype)"
        return _Operand(frozenset(), True)
    if isinstance(expr, ast.Constant):
        return f"`{ast.unparse(expr)}` is not a number"
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
        return _operand(expr.operand, body, False, floats)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Sub, ast.Mult)):
        left, right = _operand(expr.left, body, False, floats), _operand(expr.right, body, False, floats)
        if isinstance(left, str):
            return left
        if isinstance(right, str):
            return right
        return _Operand(left.parameters | right.parameters, left.integral and right.integral)
    divides = isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.FloorDiv, ast.Mod))
    if isinstance(expr, ast.BinOp) and (divides or (floats and isinstance(expr.op, ast.Div))):
        divisor = _number(expr.right)
        fits = (isinstance(divisor, int) and abs(divisor) < _INT32_LIMIT) or (floats and isinstance(divisor, float))
        if not divisor or not fits:
            return f"`{ast.unparse(expr)}` may raise (division or modulo by a value that may be zero)"
        left = _operand(expr.left, body, False, floats)
        integral = not isinstance(expr.op, ast.Div) and isinstance(divisor, int)
        return left if isinstance(left, str) else _Operand(left.parameters, left.integral and integral)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Div):
        return f"`{ast.unparse(expr)}` may raise (`OverflowError` for a Python int too large for a float)"
    return f"`{ast.unparse(expr)}` may raise, bind a name or have another effect, or not be a number or tensor"


# An integer constant beyond int32 raises with an int32 tensor (`RuntimeError` for `//`, `%`; OverflowError
# past int64 for anything), and torch passes int32 indices.
_INT32_LIMIT = 2**31


def _number(expr: ast.expr) -> int | float | None:
    """A number literal, with its signs (`-1`, `+2.5`); bools count as the ints they are."""
    sign = 1
    while isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(expr.op, ast.USub) else sign
        expr = expr.operand
    value = expr.value if isinstance(expr, ast.Constant) else None
    return sign * value if isinstance(value, (int, float)) and not isinstance(value, complex) else None


class _Comparison(NamedTuple):
    parameters: frozenset[str]
    integral: bool
    ordering: bool  # `<`, `<=`, `>`, `>=` (inverting those is exact only without NaN)


def comparison(expr: ast.expr, body: Body) -> _Comparison | str:
    """One `==`/`!=`/`<`/`<=`/`>`/`>=` of plain operands that reads a parameter; else why it is not."""
    if not (isinstance(expr, ast.Compare) and len(expr.ops) == 1 and type(expr.ops[0]) in INVERSE_COMPARISON):
        return f"`{ast.unparse(expr)}` is not a single comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)"
    left, right = _operand(expr.left, body), _operand(expr.comparators[0], body)
    if isinstance(left, str):
        return left
    if isinstance(right, str):
        return right
    parameters = left.parameters | right.parameters
    if not parameters:
        return f"`{ast.unparse(expr)}` reads no parameter (a Python bool beside tensors)"
    return _Comparison(parameters, left.integral and right.integral, isinstance(expr.ops[0], _ORDERING))


# --------------------------------------------------------------------------- `and` / `or` / `not`
def _logic_parts(expr: ast.expr, body: Body, parts: list[_Comparison], negated: list[ast.UnaryOp]) -> str:
    """Collect the comparisons of `and`/`or`/`not` over comparisons; the reason it is not one ("" if it is)."""
    if isinstance(expr, ast.BoolOp):
        for value in expr.values:
            reason = _logic_parts(value, body, parts, negated)
            if reason:
                return reason
        return ""
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        negated.append(expr)
        if _is_not(expr.operand):  # `not not x` is the truth of x: rendered as x itself
            assert isinstance(expr.operand, ast.UnaryOp)
            return _logic_parts(expr.operand.operand, body, parts, negated)
        found = comparison(expr.operand, body)
        if isinstance(found, str):
            return found
        if found.ordering and not found.integral:
            return (
                f"`{ast.unparse(expr)}` is exactly the inverted comparison only for integers (NaN compares "
                "false both ways)"
            )
        parts.append(found)
        return ""
    found = comparison(expr, body)
    if isinstance(found, str):
        return found
    parts.append(found)
    return ""


_NOT_REASON = (
    "`not` returns a Python bool where the inverted comparison returns a tensor (a direct call with 0-d "
    "tensors), and a NaN argument compares false both ways"
)


def logic_fix(expr: ast.expr, body: Body) -> EditSafety:
    """Rewriting `and`/`or`/`not` over comparisons (`expr`) with `&`, `|` and inverted comparisons."""
    parts: list[_Comparison] = []
    negated: list[ast.UnaryOp] = []
    reason = _logic_parts(expr, body, parts, negated)
    if reason:
        if isinstance(expr, ast.BoolOp):
            reason = f"`&`/`|` evaluate every operand where `and`/`or` may skip some, and {reason}"
        return EditSafety(NO_FIX, reason)
    if len({p.parameters for p in parts}) > 1:
        return EditSafety(
            NO_FIX,
            "its comparisons read different parameters: with a Python number for one and a tensor for "
            "another, `and`/`or` can return a Python bool where `&`/`|` return a tensor",
        )
    if negated:
        return EditSafety(UNSAFE, _NOT_REASON)
    return EditSafety(SAFE)


# --------------------------------------------------------------------------- `a if c else b`
_WHERE_REASON = (
    "`torch.where` needs tensors: called directly with Python numbers the condition is a bool and "
    "`torch.where` raises `TypeError`, and it returns a tensor where the conditional expression returned "
    "a number"
)


def where_fix(
    expr: ast.IfExp, body: Body, builtins_here: Container[str], torch_is_module: Callable[[], bool]
) -> EditSafety:
    """Rewriting `a if c else b` as `torch.where(c, a, b)`: never safe (see the module docstring); offered
    behind `--unsafe-fixes` when `c` is tensor logic, both branches are plain (evaluating both can neither
    raise nor have an effect) and `torch` is certainly the torch module there."""
    parts: list[_Comparison] = []
    reason = _logic_parts(expr.test, body, parts, [])
    if reason:
        return EditSafety(NO_FIX, f"its condition is not comparisons of the parameters: {reason}")
    for branch in (expr.body, expr.orelse):
        found = _branch(branch, body, builtins_here)
        if found:
            return EditSafety(NO_FIX, f"`torch.where` computes both branches, and {found}")
    if not torch_is_module():
        return EditSafety(
            NO_FIX,
            "the name `torch` is not certainly the torch module here (imported once, by `import torch`, before "
            "this function, and never rebound: no `global torch`, star import or `del`)",
        )
    return EditSafety(UNSAFE, _WHERE_REASON)


def _branch(expr: ast.expr, body: Body, builtins_here: Container[str]) -> str:
    """ "" when the branch is a plain operand, a comparison of them, `&`/`|` of such comparisons, or
    `float("inf")` (signed); else why not."""
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
        return _branch(expr.operand, body, builtins_here)
    if isinstance(expr, ast.BoolOp) or _is_not(expr):  # rendered with `&`, `|` and inverted comparisons too
        return _logic_parts(expr, body, [], [])
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.BitAnd, ast.BitOr)):  # of comparisons: bools
        sides = (expr.left, expr.right)
        if not all(isinstance(e, ast.Compare) or _is_bitwise(e) for e in sides):
            return f"`{ast.unparse(expr)}` may raise (`&`/`|` of values that may not be bools)"
        return _branch(expr.left, body, builtins_here) or _branch(expr.right, body, builtins_here)
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Name)
        and expr.func.id == "float"
        and "float" in builtins_here
        and len(expr.args) == 1
        and not expr.keywords
        and isinstance(expr.args[0], ast.Constant)
        and isinstance(expr.args[0].value, str)
        and expr.args[0].value.strip().lower().lstrip("+-") in ("inf", "infinity")
    ):
        return ""
    found = comparison(expr, body) if isinstance(expr, ast.Compare) else _operand(expr, body, floats=True)
    return found if isinstance(found, str) else ""


def _is_not(expr: ast.expr) -> bool:
    return isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not)


def _is_bitwise(expr: ast.expr) -> bool:
    return isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.BitAnd, ast.BitOr))


# --------------------------------------------------------------------------- `score += x`
_SCORE_REASON = (
    "`score = score + ...` makes a new tensor: a tensor passed in directly is no longer updated in place "
    "(its caller, or a view of it, keeps the old values), and an integer tensor score gets a floating "
    "result where `/=` raised"
)
_OUT_OF_PLACE = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def score_update_fix(function: ast.AST, statement: ast.AugAssign, score: str, body: Body) -> EditSafety:
    """Rewriting `score += x` (`-=`, `*=`, `/=`) as `score = score + (x)`: never safe (see the module
    docstring); offered behind `--unsafe-fixes` when `x` reads only parameters the body never rebinds and
    numbers (a wider tensor would widen the result), nothing reads `score` before it (an alias would no
    longer see the update) and it runs once (not in a loop). The caller also requires every other in-place
    update of `score` in the function to be rewritten with it (mask_bodies.score_update_safety)."""
    if not isinstance(statement.op, _OUT_OF_PLACE):
        return EditSafety(NO_FIX, "only `+=`, `-=`, `*=` and `/=` have an out-of-place form of the same dtype")
    names = [n for n in ast.walk(statement.value) if isinstance(n, ast.Name)]
    for name in names:
        if name.id not in body.parameters or name.id in body.rebound:
            return EditSafety(
                NO_FIX,
                f"`{name.id}` is not a parameter the body leaves alone: a tensor of another dtype would make "
                "the out-of-place result wider than the in-place one",
            )
    if any(isinstance(n, (ast.NamedExpr, ast.Lambda, *_COMPREHENSIONS)) for n in ast.walk(statement.value)):
        return EditSafety(NO_FIX, "its value binds names or defines a function")
    reads = _reads_before(function, statement, score)
    if reads:
        return EditSafety(
            NO_FIX,
            f"`{score}` is read on line {reads} before it: whatever holds the tensor from there would no "
            "longer see the update",
        )
    if _in_loop(function, statement):
        return EditSafety(NO_FIX, "it runs in a loop, where a read after it would hold an older tensor")
    return EditSafety(UNSAFE, _SCORE_REASON)


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def _reads_before(function: ast.AST, statement: ast.stmt, name: str) -> int:
    """The first line, before `statement` ends, where `name` is read other than by `statement` itself (0: none)."""
    start = (statement.lineno, statement.col_offset)
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Name)
            and node.id == name
            and isinstance(node.ctx, ast.Load)
            and (node.lineno, node.col_offset) < start
        ):
            return node.lineno
    return 0


def _in_loop(function: ast.AST, statement: ast.stmt) -> bool:
    loops = [n for n in ast.walk(function) if isinstance(n, _LOOPS) and n is not statement]
    return any(child is statement for loop in loops for child in ast.walk(loop))
