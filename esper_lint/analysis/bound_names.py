"""The names a scope binds: one answer, used by the body rules (`mask_bodies`), the hoist's safety checks
(`hoist_safety`) and the hoist's naming (`module_names`).

`bindings_of(node)` is the per-node answer: assignment and deletion targets (walrus included), `def` and
`class` names, imports, `except ... as`, and `match` captures (`case x`, `case [*rest]`, `case {**rest}`).
The walks that collect a whole scope differ by purpose and say so where they are; what one node binds is
decided only here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
# Nodes whose own scope the names bound inside them belong to, not the scope around them.
_NESTED_SCOPES = (*_FUNCTIONS, ast.ClassDef, *_COMPREHENSIONS)


def bindings_of(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(name, the node that binds it) for each name `node` binds where it stands (an import's binding node
    is its `alias`). Nothing for the names a nested scope binds inside itself."""
    if isinstance(node, ast.Name):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            yield node.id, node
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name, node
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            yield (alias.asname or alias.name).split(".")[0], alias
    elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
        if node.name:
            yield node.name, node
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield node.rest, node


def bound_names(node: ast.AST) -> Iterator[str]:
    """The names `node` binds where it stands (see `bindings_of`)."""
    for name, _ in bindings_of(node):
        yield name


def own_scope_nodes(body: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Every node of a scope's body that runs in that scope: nested functions, lambdas, classes and
    comprehensions are yielded (they bind their name, or evaluate their first iterable, here) but not
    entered, except for the walrus targets of a comprehension, which bind in this scope."""
    stack = list(body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _COMPREHENSIONS):
            yield from _walrus_targets(node)  # `[y := f(x) for x in xs]` binds `y` here (PEP 572)
        elif not isinstance(node, _NESTED_SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _walrus_targets(comprehension: ast.AST) -> Iterator[ast.expr]:
    stack = list(ast.iter_child_nodes(comprehension))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.NamedExpr):
            yield node.target
        if not isinstance(node, (*_FUNCTIONS, ast.ClassDef)):  # nested comprehensions too: still this scope
            stack.extend(ast.iter_child_nodes(node))


def parameter_names(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[str]:
    a = fn.args
    return [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if p is not None]


def scope_names(scope: ast.AST, body: list[ast.AST]) -> frozenset[str]:
    """The names a function (parameters included) or class body binds in its own scope."""
    names = {name for n in own_scope_nodes(body) for name in bound_names(n)}
    if isinstance(scope, _FUNCTIONS):
        names.update(parameter_names(scope))
    return frozenset(names)
