"""Facts for ESP017: `&`, `|`, `^` written next to a comparison without parentheses.

In Python the bitwise operators bind tighter than comparisons (unlike `and`/`or`), so
`(q_idx >= kv_idx) & kv_idx < L` is `((q_idx >= kv_idx) & kv_idx) < L` and `kv >= 30 & kv < 606` is the
chained comparison `kv >= (30 & kv) < 606`. Such a comparison is a mistake when one of its operands is an
unparenthesised bitwise expression that

- combines a boolean (a comparison, `~` of one, `True`/`False`, a local bound only to those) with
  something else: the `&` was meant between two conditions; or
- sits in a chained comparison: `a OP x & y OP b` was meant as `(a OP x) & (y OP b)`.

`(q_idx & 7) == (kv_idx & 7)` and `q_idx & 7 == kv_idx & 7` (integers masked, then compared) are not
mistakes, and neither is `(a) & (b) | (c)`, which contains no comparison at that level.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import NamedTuple

from .mask_bodies import Derivation, FuncNode, body_facts, derived_names, free_builtins, stored_names, walk_body

BIT_OPERATORS = (ast.BitAnd, ast.BitOr, ast.BitXor)
# (start, end) of two ast nodes -> the source text between them (the analysis' `Positions.text_between`).
TextBetween = Callable[[tuple[int, int], tuple[int, int]], str]
Position = Callable[[ast.AST], tuple[int, int]]


class PrecedenceMistake(NamedTuple):
    compare: ast.Compare  # the comparison Python built
    grouped: tuple[ast.BinOp, ...]  # its unparenthesised bitwise operands: Python compares their results
    chained: bool  # a chain (`a < b < c`), which Python evaluates with `and`


class SourceText(NamedTuple):
    """What telling parentheses apart needs: the analysis' positions (`MaskFunction.positions`)."""

    start: Position
    end: Position
    between: TextBetween


def precedence_mistakes(node: FuncNode, role: str, source: SourceText) -> list[PrecedenceMistake]:
    """The comparisons in the body, on values computed from the parameters, whose grouping is a mistake."""
    derived = derived_names(node, role)
    if derived is None:
        return []
    is_derived = Derivation(derived, free_builtins(node))
    booleans = boolean_locals(node)
    found = []
    for compare in walk_body(node):
        if not isinstance(compare, ast.Compare):
            continue
        mistake = grouping_mistake(compare, source, booleans)
        if mistake is not None and is_derived(compare):
            found.append(mistake)
    return found


def grouping_mistake(
    compare: ast.Compare, source: SourceText, booleans: frozenset[str] = frozenset()
) -> PrecedenceMistake | None:
    """The mistake `compare` is, if any (see the module's docstring); `booleans` are names known to hold
    booleans."""
    operands = [compare.left, *compare.comparators]
    grouped = tuple(
        o
        for i, o in enumerate(operands)
        if isinstance(o, ast.BinOp) and isinstance(o.op, BIT_OPERATORS) and not parenthesised(operands, i, source)
    )
    if not grouped:
        return None
    chained = len(compare.ops) > 1
    if chained or any(_mixes_boolean(o, booleans) for o in grouped):
        return PrecedenceMistake(compare, grouped, chained)
    return None


def contains_mistake(expr: ast.AST, source: SourceText, booleans: frozenset[str] = frozenset()) -> bool:
    """Whether `expr` holds a comparison grouped by mistake (a fix rewriting `expr` must then decline)."""
    return any(isinstance(n, ast.Compare) and grouping_mistake(n, source, booleans) for n in ast.walk(expr))


def parenthesised(operands: list[ast.expr], i: int, source: SourceText) -> bool:
    """Whether operand `i` of a comparison is written in parentheses: only the comparison operator, comments,
    whitespace and the parentheses of the operands lie between two operands, and a parenthesis opened right
    before an operand (or closed right after it) can only enclose that operand."""
    if i > 0 and "(" in _code(source.between(source.end(operands[i - 1]), source.start(operands[i]))):
        return True
    return i + 1 < len(operands) and ")" in _code(
        source.between(source.end(operands[i]), source.start(operands[i + 1]))
    )


def _code(text: str) -> str:
    """`text` without its comments (a comment may hold parentheses)."""
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _mixes_boolean(expr: ast.BinOp, booleans: frozenset[str]) -> bool:
    """A bitwise expression whose unparenthesised bitwise tree joins a boolean and something that is not
    one: `(a < b) & kv` (then compared) is a mistake; `(a < b) & (c < d)` and `q & 7` are not."""
    leaves: list[ast.expr] = []
    stack: list[ast.expr] = [expr]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.BinOp) and isinstance(current.op, BIT_OPERATORS):
            stack.extend((current.left, current.right))
        else:
            leaves.append(current)
    kinds = [is_boolean(leaf, booleans) for leaf in leaves]
    return any(kinds) and not all(kinds)


def is_boolean(expr: ast.expr, booleans: frozenset[str] = frozenset()) -> bool:
    """An expression that is certainly a boolean (tensor): a comparison, `True`/`False`, `~`/`not` of a
    boolean, `&`/`|`/`^` of booleans, `and`/`or` of booleans, a name in `booleans`."""
    if isinstance(expr, ast.Compare):
        return True
    if isinstance(expr, ast.Constant):
        return isinstance(expr.value, bool)
    if isinstance(expr, ast.Name):
        return expr.id in booleans
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.Invert, ast.Not)):
        return is_boolean(expr.operand, booleans)
    if isinstance(expr, ast.BoolOp):
        return all(is_boolean(v, booleans) for v in expr.values)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, BIT_OPERATORS):
        return is_boolean(expr.left, booleans) and is_boolean(expr.right, booleans)
    return False


def boolean_locals(node: FuncNode) -> frozenset[str]:
    """Names the body binds only by assignments of boolean expressions (`causal = q >= kv`)."""
    values: dict[str, list[ast.AST | None]] = {}
    for target, value in body_facts(node).bindings:
        for name in stored_names(target):
            values.setdefault(name, []).append(value if isinstance(target, ast.Name) else None)
    args = node.args
    parameters = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    found: set[str] = set()
    changed = True
    while changed:  # `a = q >= kv; b = a & (kv < 4)`: both, in any order
        changed = False
        for name, assigned in values.items():
            if name in found or name in parameters:
                continue
            if all(isinstance(v, ast.expr) and is_boolean(v, frozenset(found)) for v in assigned):
                found.add(name)
                changed = True
    return frozenset(found)
