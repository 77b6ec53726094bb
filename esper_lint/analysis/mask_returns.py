"""Facts for ESP025 (a mask_mod returning numbers) and ESP026 (a score_mod that masks with -inf).

ESP025: `create_block_mask` requires a boolean mask (`AssertionError: mask.dtype must be torch.bool`, torch
2.13 CPU, eager and compiled) but `create_mask` accepts any dtype, and a float additive mask from
`create_mask` is a legitimate input to `scaled_dot_product_attention`. So the rule reads the returns of
functions that reach a BlockMask: a cast of the result (`.int()`, `.float()`, `.to(torch.float32)`...) or
`torch.where(c, A, B)` with two numbers (`0.0, -inf`: an additive mask; `1, 0`: a multiplicative one).
Where the mask the numbers stand for is exactly a boolean the function already has (`c` kept where the
value is 0/1, or the receiver of the cast when it is a comparison), that boolean is `condition`.

ESP026: a score_mod returning `torch.where(c, <score>, -inf)`, `<score>.masked_fill(c, -inf)` or
`<score> if c else -inf` where `c` does not read the score: that is a mask, and written as a score_mod
`flex_attention` computes every block (a BlockMask would skip the masked ones).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import NamedTuple

from .mask_bodies import (
    Derivation,
    FuncNode,
    body_facts,
    names_torch_module,
    positional_parameters,
    returned_values,
    stored_names,
)
from .model import SCORE_MOD
from .name_bindings import imported_name
from .operator_precedence import boolean_locals, is_boolean

_CAST_METHODS = frozenset({"int", "float", "long", "double", "half", "bfloat16", "short", "byte", "char"})
_BOOL_DTYPES = frozenset({"bool"})


class _Context(NamedTuple):
    """Where the expressions are: the module and the function (with the functions around it), to resolve
    `torch`, `math`, `numpy` as Python does."""

    module: ast.Module | None
    node: FuncNode
    outer: Sequence[FuncNode] | None


class NonBoolReturn(NamedTuple):
    node: ast.expr  # the returned expression
    what: str  # "`.float()`", "`torch.where(c, 0.0, -inf)` (an additive mask)"
    condition: ast.expr | None  # the boolean to return instead, when that is exactly the mask meant


def non_bool_returns(
    node: FuncNode, module: ast.Module | None = None, outer: Sequence[FuncNode] | None = None
) -> list[NonBoolReturn]:
    """The returned expressions of a mask_mod that are certainly not boolean tensors (see the docstring)."""
    booleans = boolean_locals(node)
    where = _Context(module, node, outer)
    found: list[NonBoolReturn] = []
    for value in returned_values(node):
        item = _cast(value, where, booleans) or _numeric_where(value, where, booleans)
        if item is not None:
            found.append(item)
    return found


def _cast(value: ast.expr, where: _Context, booleans: frozenset[str]) -> NonBoolReturn | None:
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Attribute) or value.keywords:
        return None
    method, receiver = value.func.attr, value.func.value
    if method in _CAST_METHODS and not value.args:
        what = f"`.{method}()`"
    elif method in ("to", "type") and len(value.args) == 1 and _non_bool_dtype(value.args[0], where):
        what = f"`.{method}({ast.unparse(value.args[0])})`"
    else:
        return None
    return NonBoolReturn(value, what, receiver if is_boolean(receiver, booleans) else None)


def _non_bool_dtype(expr: ast.expr, where: _Context) -> bool:
    """`torch.float32`, `torch.int`... (any torch dtype but `torch.bool`), `torch` being the torch module."""
    return (
        isinstance(expr, ast.Attribute)
        and isinstance(expr.value, ast.Name)
        and expr.value.id == "torch"
        and expr.attr not in _BOOL_DTYPES
        and expr.attr in _TORCH_DTYPES
        and names_torch_module(*where)
    )


_TORCH_DTYPES = frozenset(
    {
        "float",
        "float16",
        "float32",
        "float64",
        "bfloat16",
        "half",
        "double",
        "int",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "long",
        "short",
    }
)


def _numeric_where(value: ast.expr, where: _Context, booleans: frozenset[str]) -> NonBoolReturn | None:
    if not _is_torch_call(value, "where", where):
        return None
    assert isinstance(value, ast.Call)
    if len(value.args) != 3 or value.keywords:
        return None
    condition, kept, masked = value.args
    a, b = _number(kept, where), _number(masked, where)
    if a is None or b is None:
        return None
    what = f"`torch.where(..., {ast.unparse(kept)}, {ast.unparse(masked)})`"
    if a == 0 and b < 0:
        what += " (an additive mask)"
    elif a == 1 and b == 0:
        what += " (a multiplicative mask)"
    exact = is_boolean(condition, booleans) and ((a == 0 and b == float("-inf")) or (a == 1 and b == 0))
    return NonBoolReturn(value, what, condition if exact else None)


def _is_torch_call(value: ast.expr, name: str, where: _Context) -> bool:
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == name
        and isinstance(value.func.value, ast.Name)
        and value.func.value.id == "torch"
        and names_torch_module(*where)
    )


def _number(expr: ast.expr, where: _Context) -> float | None:
    """The value of a number literal (not a bool), `-x`, `float("inf")`/`float("-inf")`, `math.inf`,
    `torch.inf`, `numpy.inf`; None for anything else."""
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
        inner = _number(expr.operand, where)
        return None if inner is None else (-inner if isinstance(expr.op, ast.USub) else inner)
    if isinstance(expr, ast.Constant) and isinstance(expr.value, (int, float)) and not isinstance(expr.value, bool):
        return float(expr.value)
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Name)
        and expr.func.id == "float"
        and len(expr.args) == 1
        and isinstance(expr.args[0], ast.Constant)
        and isinstance(expr.args[0].value, str)
        and expr.args[0].value in ("inf", "-inf", "+inf")
    ):
        return float(str(expr.args[0].value))
    if isinstance(expr, ast.Attribute) and expr.attr == "inf":
        qualified = imported_name(where.module, where.node, expr, where.outer)
        if qualified in ("math.inf", "numpy.inf") or (
            isinstance(expr.value, ast.Name) and expr.value.id == "torch" and names_torch_module(*where)
        ):
            return float("inf")
    return None


# --------------------------------------------------------------------------- ESP026
class ScoreMasking(NamedTuple):
    node: ast.expr  # the returned expression
    condition: ast.expr  # where the score is kept (`masked_fill`'s argument is where it is dropped)
    kept_where_true: bool  # False for `masked_fill(c, -inf)` and `torch.where(c, -inf, score)`
    form: str  # "`torch.where`", "`.masked_fill`", "`x if c else -inf`"


def score_masking(
    node: FuncNode, module: ast.Module | None = None, outer: Sequence[FuncNode] | None = None
) -> list[ScoreMasking]:
    """The returns of a score_mod that keep the score under a condition on the indices and give -inf (or a
    large negative number) elsewhere; the condition never reads the score."""
    params = _score_parameters(node)
    if params is None:
        return []
    from_score = _derived_from(node, params[0])
    where = _Context(module, node, outer)
    found: list[ScoreMasking] = []
    for value in returned_values(node):
        item = _masking(value, where, from_score)
        if item is not None:
            found.append(item)
    return found


def _score_parameters(node: FuncNode) -> list[str] | None:
    return positional_parameters(node, SCORE_MOD)


def _masking(value: ast.expr, where: _Context, from_score: Derivation) -> ScoreMasking | None:
    def masked(expr: ast.expr) -> bool:
        number = _number(expr, where)
        return number is not None and (number == float("-inf") or number <= -1e4)

    if _is_torch_call(value, "where", where):
        assert isinstance(value, ast.Call)
        if len(value.args) != 3 or value.keywords:
            return None
        condition, a, b = value.args
        if masked(b) and from_score(a) and not from_score(condition):
            return ScoreMasking(value, condition, True, "`torch.where`")
        if masked(a) and from_score(b) and not from_score(condition):
            return ScoreMasking(value, condition, False, "`torch.where`")
        return None
    if isinstance(value, ast.IfExp):
        if masked(value.orelse) and from_score(value.body) and not from_score(value.test):
            return ScoreMasking(value, value.test, True, "`x if c else -inf`")
        return None
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "masked_fill"
        and len(value.args) == 2
        and not value.keywords
        and from_score(value.func.value)
        and masked(value.args[1])
        and not from_score(value.args[0])
    ):
        return ScoreMasking(value, value.args[0], False, "`.masked_fill`")
    return None


def _derived_from(node: FuncNode, name: str) -> Derivation:
    """Whether an expression may hold a value computed from the parameter `name` (the score)."""
    derived = {name}
    bindings = body_facts(node).bindings
    is_derived = Derivation(derived, ())
    changed = True
    while changed:
        changed = False
        for target, value in bindings:
            if is_derived(value):
                for stored in stored_names(target):
                    if stored not in derived:
                        derived.add(stored)
                        changed = True
    return is_derived
