"""Is a module-level name bound once, to one known value, wherever a fix reads it? Pure functions over `ast`.

A text-edit fix that writes a new read of a module-level name (`torch.compile(...)`, `torch.where(...)`),
or that relies on what a called name is (`flex_attention` being torch's), is safe only when the name holds
that one value whenever the code runs. Python looks a module-level name up when the code runs, so every
binding anywhere in the module counts, not only those above the read. A name is *stable* when:

- module level binds it exactly once (an import, `def`, `class`, assignment, `for`/`with`/`except` target,
  walrus, `match` capture and `del` all count), by a statement directly in the module body (not under an
  `if` or `try`, so it has certainly run), before the top-level statement that holds the read (a name the
  fix keeps reading where the code read it, a call's callee, needs only the "exactly once": unbound, it
  fails the same way before and after);
- no function or class declares it `global` (which could rebind it at run time), and the module has no
  star import (which could bind any name);
- the module assigns or deletes none of its attributes (`torch.compile = ...`, `setattr(torch, ...)`: a fix
  writes `torch.compile` and `torch.where`; deeper ones, `torch._dynamo.config.x = ...`, leave those alone);
- the module does not reach its own namespace dynamically (`globals()`, `exec`, `eval`, frames,
  `sys.modules[__name__]`, `__builtins__`, a function's `__globals__`: the reasons hoist_safety finds).

Whether a local binding hides the module's name where it is read is the caller's part (the analysis
resolves the read's scope). Conservative: a doubt makes a name unstable, which only withholds a fix.
"""

from __future__ import annotations

import ast
import weakref

from .bound_names import bindings_of
from .hoist_safety import ModuleSummary
from .syntax import STATEMENT_BLOCKS

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


class _ModuleScope:
    """What module level binds, from the top-level statements' own nodes (no function or class body)."""

    __slots__ = ("binders", "imports")

    def __init__(self, tree: ast.Module) -> None:
        binders: dict[str, list[tuple[int, ast.AST]]] = {}  # name -> (top-level index, binding node), in order
        imports: dict[int, ast.Import | ast.ImportFrom] = {}  # id(alias) -> the statement that imports it
        for index, stmt in enumerate(tree.body):
            for node in _module_scope(stmt):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    imports.update((id(alias), node) for alias in node.names)
                for name, binder in bindings_of(node):
                    if name != "*":
                        binders.setdefault(name, []).append((index, binder))
        self.binders = binders
        self.imports = imports


def _star_import_statements(tree: ast.Module) -> tuple[int, ...]:
    """The top-level statements holding a `from ... import *`. Python allows one only at module level (in any
    block there, never in a def or class), so only the statements of those blocks are looked at."""
    found: list[int] = []
    for index, top in enumerate(tree.body):
        stack: list[ast.AST] = [top]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
                found.append(index)
                break
            if not isinstance(node, _SCOPES):
                stack.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, STATEMENT_BLOCKS))
    return tuple(found)


class _Rebinding:
    """Which module-level names the module changes attributes of, from anywhere in it: a walk of the whole
    tree, so made only for a name that module level binds exactly once (see `stable_binding`)."""

    __slots__ = ("attributes_set", "chains_set")

    def __init__(self, tree: ast.Module) -> None:
        attributes: set[str] = set()  # names whose own attributes the module assigns or deletes
        chains: set[str] = set()  # names under which the module assigns or deletes an attribute at any depth
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
                if isinstance(node.value, ast.Name):  # `torch.compile = ...`; not `torch._dynamo.config.x = ...`
                    attributes.add(node.value.id)
                base: ast.expr = node
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name):
                    chains.add(base.id)
            elif isinstance(node, ast.Call) and _sets_attribute(node):
                assert isinstance(node.args[0], ast.Name)
                attributes.add(node.args[0].id)
        self.attributes_set = frozenset(attributes)
        self.chains_set = frozenset(chains | attributes)


def _global_declarations(tree: ast.Module) -> frozenset[str]:
    """The names a `global` statement anywhere in the module declares. A statement sits only in another's
    blocks (no expression holds one, a lambda's body is an expression), so only statements are walked."""
    declared: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Global):
            declared.update(node.names)
        else:
            stack.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, STATEMENT_BLOCKS))
    return frozenset(declared)


# Each computed once per tree, on first use: most questions are settled by the cheaper ones.
_declared: weakref.WeakKeyDictionary[ast.Module, frozenset[str]] = weakref.WeakKeyDictionary()
_scopes: weakref.WeakKeyDictionary[ast.Module, _ModuleScope] = weakref.WeakKeyDictionary()
_rebindings: weakref.WeakKeyDictionary[ast.Module, _Rebinding] = weakref.WeakKeyDictionary()
_star_imports: weakref.WeakKeyDictionary[ast.Module, tuple[int, ...]] = weakref.WeakKeyDictionary()


def _star_import_facts(tree: ast.Module) -> tuple[int, ...]:
    found = _star_imports.get(tree)
    if found is None:
        found = _star_imports[tree] = _star_import_statements(tree)
    return found


def declared_global(tree: ast.Module) -> frozenset[str]:
    """The names some function (or module level) declares `global`: they may be rebound from anywhere."""
    found = _declared.get(tree)
    if found is None:
        found = _declared[tree] = _global_declarations(tree)
    return found


def _module_scope_facts(tree: ast.Module) -> _ModuleScope:
    found = _scopes.get(tree)
    if found is None:
        found = _scopes[tree] = _ModuleScope(tree)
    return found


def _rebinding_facts(tree: ast.Module) -> _Rebinding:
    found = _rebindings.get(tree)
    if found is None:
        found = _rebindings[tree] = _Rebinding(tree)
    return found


def _sets_attribute(call: ast.Call) -> bool:
    """`setattr(name, ...)` / `delattr(name, ...)` (by spelling: conservative)."""
    func = call.func
    named = isinstance(func, ast.Name) and func.id in ("setattr", "delattr")
    return named and bool(call.args) and isinstance(call.args[0], ast.Name)


def _module_scope(stmt: ast.stmt) -> list[ast.AST]:
    """The nodes of a top-level statement that run in the module's scope: not the bodies of functions,
    lambdas or classes. Comprehensions are entered (a walrus in one binds at module level); their own
    targets then count as module bindings too, which only errs towards "unstable"."""
    found: list[ast.AST] = []
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        found.append(node)
        if isinstance(node, _SCOPES):
            if not isinstance(node, ast.Lambda):
                stack.extend(node.decorator_list)
            if isinstance(node, ast.ClassDef):
                stack.extend([*node.bases, *(k.value for k in node.keywords)])
            else:
                stack.extend(d for d in (*node.args.defaults, *node.args.kw_defaults) if d is not None)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def stable_binding(
    tree: ast.Module, name: str, read_top: int, summary: ModuleSummary | None = None, ran: bool = True
) -> ast.AST | None:
    """The one node binding module-level `name` (an `ast.alias` for an import), when `name` is stable for a
    read in top-level statement `read_top` (see the module docstring); None otherwise. `summary`: the
    analysis' ModuleSummary of `tree`, when it has one (else one is made: it walks the module).

    `ran` False relaxes one condition: the binding need not certainly have run before the read (it may be
    under `if`/`try`, or later). For a name the original code reads too, at the same point (the callee a fix
    keeps), an unbound name raises the same NameError before and after the fix; a name the fix adds (`torch`
    in `torch.compile(...)`) must have been bound."""
    scope = _module_scope_facts(tree)
    binders = scope.binders.get(name, [])
    if len(binders) != 1:
        return None
    index, binder = binders[0]
    if ran and (index >= read_top or not _directly_in_body(tree.body[index], binder)):
        return None
    if _star_import_facts(tree):
        return None
    if name in declared_global(tree) or name in _rebinding_facts(tree).attributes_set:
        return None
    if (summary or ModuleSummary(tree, None)).reasons:
        return None  # globals(), exec, eval, frames, sys.modules[__name__]: the namespace is reached unseen
    return binder


def _directly_in_body(stmt: ast.stmt, binder: ast.AST) -> bool:
    """The binding is made by the top-level statement itself, not under an `if`/`try`/loop in it."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return any(alias is binder for alias in stmt.names)
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return stmt is binder
    if isinstance(stmt, ast.Assign):
        return any(t is binder for t in stmt.targets)
    if isinstance(stmt, ast.AnnAssign):
        return stmt.target is binder and stmt.value is not None
    return False


def stable_import(
    tree: ast.Module,
    name: str,
    qualified: str,
    read_top: int,
    summary: ModuleSummary | None = None,
    ran: bool = True,
) -> bool:
    """`name`, read in top-level statement `read_top`, is stable and bound by an import of `qualified`
    (`import torch` for "torch"; `from torch.nn.attention.flex_attention import create_block_mask [as x]`
    for its qualified name). `ran`: see `stable_binding`."""
    binder = stable_binding(tree, name, read_top, summary, ran)
    if not isinstance(binder, ast.alias):
        return False
    stmt = _module_scope_facts(tree).imports[id(binder)]
    if isinstance(stmt, ast.Import):
        return binder.name == qualified and (binder.asname or binder.name) == name
    return stmt.level == 0 and f"{stmt.module}.{binder.name}" == qualified


def stable_attribute(
    tree: ast.Module,
    chain: list[str],
    qualified: str,
    read_top: int,
    summary: ModuleSummary | None = None,
    ran: bool = True,
) -> bool:
    """`a.b.c` (`chain`), read in top-level statement `read_top`, is certainly `qualified`: `a` is stable and
    bound by an import of a module whose `.b.c` is `qualified`, and no attribute under `a` is ever assigned
    (`fa.create_block_mask = shim`). `ran`: see `stable_binding`."""
    base = chain[0]
    binder = stable_binding(tree, base, read_top, summary, ran)
    if not isinstance(binder, ast.alias) or base in _rebinding_facts(tree).chains_set:
        return False
    stmt = _module_scope_facts(tree).imports[id(binder)]
    if isinstance(stmt, ast.Import):
        module = binder.name if binder.asname else binder.name.split(".")[0]
    elif stmt.level:
        return False
    else:
        module = f"{stmt.module}.{binder.name}"
    return ".".join([module, *chain[1:]]) == qualified


def star_import_after(tree: ast.Module, top: int) -> bool:
    """A `from ... import *` at module level, in a top-level statement after `top`: it may bind any name,
    one a hoist puts before `top` included."""
    return any(index > top for index in _star_import_facts(tree))


def top_index(tree: ast.Module, node: ast.AST) -> int:
    """The index of the top-level statement that holds `node` (by position), or len(body) when unknown."""
    line = getattr(node, "lineno", None)
    if line is None:
        return len(tree.body)
    for index, stmt in enumerate(tree.body):
        first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", ()))])
        if first <= line <= (stmt.end_lineno or stmt.lineno):
            return index
    return len(tree.body)
