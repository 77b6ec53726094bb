"""Which `for` loops in a mask/score body iterate a value computed from torch's arguments (ESP008).

A loop is not control flow on the parameters just because its iterable mentions one: iterating a captured
tensor's row, `for start, length in segments[b]:`, has as many steps as that row has elements, whatever `b`
is, and runs under vmap and dynamo alike (measured on torch 2.13: `create_block_mask` eager and compiled).
Two loops need a value torch passes, and fail:
- `range(x)` (also in `enumerate`/`zip`/`reversed`) of any tensor computed from the parameters: the count
  must be a Python int (vmap: "calling .item() on a Tensor", eager and compiled);
- iterating the 0-d value of a parameter or arithmetic on parameters, `for i in q_idx:` (eager
  `TypeError: iteration over a 0-d tensor`, compiled `Can't unpack scalar tensors`).
Indexing a captured tensor gives a value of unknown rank: never reported.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Container, Iterable, Sequence

RANGE = "`for` over `range()` of a tensor"
ZERO_D = "`for` over a 0-d tensor"
_ITERATING = frozenset({"enumerate", "zip", "reversed", "iter", "list", "tuple", "sorted"})
_ARITHMETIC = (ast.BinOp, ast.UnaryOp)


def scalar_names(params: Sequence[str], body: Iterable[ast.AST]) -> set[str]:
    """Names that hold 0-d values: the parameters, and locals every binding of which assigns arithmetic on
    such values (`d = q_idx - kv_idx`). `body`: the nodes of the function's own body."""
    nodes = list(body)
    assigned: dict[str, list[ast.expr]] = {}
    plain_targets: set[int] = set()
    for node in nodes:
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
                    plain_targets.add(id(target))
    # Bound some other way too (a loop, `with`, a tuple target, `+=`, `del`): may hold anything.
    other = {
        n.id
        for n in nodes
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)) and id(n) not in plain_targets
    }
    scalars = set(params) - other - set(assigned)
    changed = True
    while changed:
        changed = False
        for name, values in assigned.items():
            if name not in scalars and name not in other and all(_scalar(v, scalars) for v in values):
                scalars.add(name)
                changed = True
    return scalars


def _scalar(expr: ast.expr, scalars: Container[str]) -> bool:
    if isinstance(expr, ast.Name):
        return expr.id in scalars
    if isinstance(expr, ast.BinOp):
        return (
            _operand(expr.left, scalars)
            and _operand(expr.right, scalars)
            and not (isinstance(expr.left, ast.Constant) and isinstance(expr.right, ast.Constant))
        )
    if isinstance(expr, ast.UnaryOp):
        return _scalar(expr.operand, scalars)
    return False


def _operand(expr: ast.expr, scalars: Container[str]) -> bool:
    return (isinstance(expr, ast.Constant) and type(expr.value) in (int, float)) or _scalar(expr, scalars)


def parameter_loop(
    iterable: ast.expr, scalars: Container[str], derived: Callable[[ast.AST], bool], builtins_here: Container[str]
) -> str | None:
    """RANGE or ZERO_D when the loop's iterable needs a value torch passes; None otherwise."""
    current = iterable
    while (
        isinstance(current, ast.Call)
        and isinstance(current.func, ast.Name)
        and current.func.id in _ITERATING
        and current.func.id in builtins_here
        and current.args
    ):
        if current.func.id == "zip":
            return next(
                (found for a in current.args if (found := parameter_loop(a, scalars, derived, builtins_here))), None
            )
        current = current.args[0]
    if isinstance(current, ast.Call) and isinstance(current.func, ast.Name) and current.func.id == "range":
        if "range" in builtins_here and any(derived(a) for a in current.args):
            return RANGE
        return None
    return ZERO_D if _scalar(current, scalars) else None
