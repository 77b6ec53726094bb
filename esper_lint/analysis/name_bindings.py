"""Where a name that a mask/score function reads is bound, as Python resolves it (for ESP021, ESP022, ESP024).

A name the function does not bind itself is looked up in the functions around it, innermost first, then
at module level (class bodies are skipped, as Python skips them). The answer lists what each binding of
the name in that scope assigns, so a rule can ask "is it always a Python list?" or "is it the one
`torch.tensor([...])`?". Anything the analysis cannot follow (a `global`/`nonlocal` declaration, a star
import, a parameter, a loop target) gives an unknown value, and callers then say nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import NamedTuple

from .mask_bodies import (
    FuncNode,
    body_facts,
    functions_around,
    local_names,
    module_level_nodes,
    once_per_node,
    stored_names,
    walk_body,
)

Scope = FuncNode | ast.Module


class Binding(NamedTuple):
    """The bindings of one name in the scope that answers a read of it."""

    scope: Scope
    # What each binding assigns: the value of `name = value` (an `ast.Assign` or `ast.AnnAssign` with a plain
    # name target), None for any other binding (a parameter, an import, `for`, `with`, `+=`, a def, a walrus...).
    values: tuple[ast.expr | None, ...]
    statements: tuple[ast.stmt | None, ...]  # the `Assign`/`AnnAssign` of each value, None with it
    outer: tuple[FuncNode, ...]  # the functions around `scope` (empty at module level), outermost first

    @property
    def only_value(self) -> ast.expr | None:
        """The value of the name's one and only binding, when it is a plain assignment."""
        return self.values[0] if len(self.values) == 1 else None


def resolve_free_name(
    module: ast.Module | None, node: FuncNode, name: str, outer: Sequence[FuncNode] | None = None
) -> Binding | None:
    """The scope around `node` that binds `name` and its bindings there; None when `node` binds it itself,
    when nothing visible binds it (a builtin, a star import) or when a `global`/`nonlocal` declaration
    makes the binding something this module-local analysis cannot follow."""
    if module is None or name in local_names(node):
        return None
    around = functions_around(module, node, outer)
    if around is None:
        return None
    for depth in reversed(range(len(around))):
        function = around[depth]
        if name in local_names(function):
            return function_binding(function, name, tuple(around[:depth]))
    return _module_binding(module, name)


def function_binding(function: FuncNode, name: str, outer: tuple[FuncNode, ...] = ()) -> Binding | None:
    """The bindings of `name` in `function`'s own scope (`outer`: the functions around it); None when it has
    none, or declares the name `global`/`nonlocal`."""
    values: list[ast.expr | None] = []
    statements: list[ast.stmt | None] = []
    args = function.args
    parameters = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    if any(p is not None and p.arg == name for p in parameters):
        values.append(None)
        statements.append(None)
    for n in walk_body(function):
        if isinstance(n, (ast.Global, ast.Nonlocal)) and name in n.names:
            return None
        if (
            (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name)
            or (
                isinstance(n, (ast.Import, ast.ImportFrom))
                and any((a.asname or a.name).split(".")[0] == name for a in n.names)
            )
            or (isinstance(n, ast.ExceptHandler) and n.name == name)
        ):
            values.append(None)
            statements.append(None)
    # Assignments (`body_facts` keeps every binding construct of the body with its value).
    assignments = _plain_assignments(function)
    for target, value in body_facts(function).bindings:
        if name in set(stored_names(target)):
            statement = assignments.get(id(target))
            values.append(value if statement is not None and isinstance(value, ast.expr) else None)
            statements.append(statement if statement is not None and isinstance(value, ast.expr) else None)
    if not values:
        return None
    return Binding(function, tuple(values), tuple(statements), outer)


def _binds_otherwise(n: ast.AST, name: str) -> bool:
    """`n` binds `name` other than by assignment: a def, a class, an import, an `except ... as`."""
    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler)):
        return n.name == name
    if isinstance(n, (ast.Import, ast.ImportFrom)):
        return any((a.asname or a.name).split(".")[0] == name for a in n.names)
    return False


@once_per_node
def _plain_assignments(function: FuncNode) -> dict[int, ast.stmt]:
    """id(target) -> its `name = value` statement (`Assign` with one plain-name target, or `AnnAssign`)."""
    found: dict[int, ast.stmt] = {}
    for n in walk_body(function):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            found[id(n.targets[0])] = n
        elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.value is not None:
            found[id(n.target)] = n
    return found


class _ModuleNames(NamedTuple):
    assignments: dict[str, list[tuple[ast.expr | None, ast.stmt | None]]]  # every module-level binding
    declared_global: frozenset[str]  # names a function declares `global`: rebound from anywhere
    imports: dict[str, str | None]  # name -> qualified module/object name when its one binding is an import


@once_per_node
def _module_names(module: ast.Module) -> _ModuleNames:
    assignments: dict[str, list[tuple[ast.expr | None, ast.stmt | None]]] = {}
    imports: dict[str, str | None] = {}

    def add(name: str, value: ast.expr | None, statement: ast.stmt | None) -> None:
        assignments.setdefault(name, []).append((value, statement))

    plain_targets: set[int] = set()
    for n in module_level_nodes(module):
        if isinstance(n, (ast.Assign, ast.AnnAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name) and n.value is not None:
                plain_targets.add(id(targets[0]))
                add(targets[0].id, n.value, n)
    for n in module_level_nodes(module):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)) and id(n) not in plain_targets:
            add(n.id, None, None)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler)):
            if n.name:
                add(n.name, None, None)
        elif isinstance(n, ast.Import):
            for alias in n.names:
                bound = (alias.asname or alias.name).split(".")[0]
                add(bound, None, None)
                imports[bound] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(n, ast.ImportFrom):
            for alias in n.names:
                bound = alias.asname or alias.name
                add(bound, None, None)
                known = n.level == 0 and n.module is not None and alias.name != "*"
                imports[bound] = f"{n.module}.{alias.name}" if known else None
    declared = {name for n in ast.walk(module) if isinstance(n, ast.Global) for name in n.names}
    return _ModuleNames(assignments, frozenset(declared), imports)


def _module_binding(module: ast.Module, name: str) -> Binding | None:
    names = _module_names(module)
    found = names.assignments.get(name)
    if not found or name in names.declared_global or _star_imported(module):
        return None
    return Binding(module, tuple(v for v, _ in found), tuple(s for _, s in found), ())


@once_per_node
def _star_imported(module: ast.Module) -> bool:
    return any(
        isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in module_level_nodes(module)
    )


def imported_name(
    module: ast.Module | None, node: FuncNode, expr: ast.expr, outer: Sequence[FuncNode] | None = None
) -> str | None:
    """The qualified name `expr` (a name or dotted attribute read inside `node`) refers to when its root is
    bound only by one module-level import: `np.abs` -> `numpy.abs`, `log` after `from math import log` ->
    `math.log`; None otherwise."""
    attributes: list[str] = []
    while isinstance(expr, ast.Attribute):
        attributes.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name) or module is None:
        return None
    binding = resolve_free_name(module, node, expr.id, outer)
    if binding is None or not isinstance(binding.scope, ast.Module) or len(binding.values) != 1:
        return None
    root = _module_names(module).imports.get(expr.id)
    if root is None:
        return None
    return ".".join([root, *reversed(attributes)])
