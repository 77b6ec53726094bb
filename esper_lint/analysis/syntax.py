"""Facts of the syntax tree alone, with no scopes: each written once and used by every part of the analysis.

A statement's first line (counting its decorators), a call's arguments in source order, a node's
children, a function's defaults and what its `def` statement evaluates, names read under some roots.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence

FuncNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
STATEMENT_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)  # what a statement's blocks hold
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
LOOPS = (ast.For, ast.AsyncFor, ast.While, *COMPREHENSIONS)
# Nodes under which a statement may not run every time its function does.
CONDITIONAL = (
    ast.If,
    ast.Try,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.Match,
    ast.IfExp,
    ast.BoolOp,
    ast.Lambda,
    *FUNCTIONS,
    *COMPREHENSIONS,
    *((ast.TryStar,) if hasattr(ast, "TryStar") else ()),
)
SKIPPABLE = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class Argument:
    """A call argument in source order: `node` as written (the expression, the `*x` Starred, or the
    `name=value` / `**kw` keyword), the `value` passed, its `keyword` (None: positional or `**`), and
    `star` ("*", "**" or "")."""

    __slots__ = ("keyword", "node", "star", "value")

    def __init__(self, node: ast.expr | ast.keyword, value: ast.expr, keyword: str | None, star: str) -> None:
        self.node = node
        self.value = value
        self.keyword = keyword
        self.star = star


def call_arguments(call: ast.Call) -> list[Argument]:
    """The call's arguments in source order (`f(*a, x=1, *b)` interleaves positionals and keywords)."""
    items: list[Argument] = []
    for a in call.args:
        if isinstance(a, ast.Starred):
            items.append(Argument(a, a.value, None, "*"))
        else:
            items.append(Argument(a, a, None, ""))
    for k in call.keywords:
        items.append(Argument(k, k.value, k.arg, "" if k.arg else "**"))
    items.sort(key=lambda a: (a.node.lineno, a.node.col_offset))
    return items


def own_returns(func: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.Return]:
    """The function's own `return` statements (not those of functions or classes nested in it)."""
    stack: list[ast.AST] = list(func.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def returns_its_argument(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """`def register(fn): REGISTRY.append(fn); return fn`: a decorator that leaves the function in place.
    Every `return` of its own returns its first parameter, which it never rebinds, and it is no generator."""
    positional = [*func.args.posonlyargs, *func.args.args]
    if isinstance(func, ast.AsyncFunctionDef) or not positional:
        return False
    name = positional[0].arg
    stack: list[ast.AST] = list(func.body)
    returns = 0
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal)):
            return False
        if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load):
            return False
        if isinstance(node, ast.Return):
            if not (isinstance(node.value, ast.Name) and node.value.id == name):
                return False
            returns += 1
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))
    last = func.body[-1]
    return returns > 0 and isinstance(last, ast.Return)


# Fields that only hold leaf markers (`Load`, `Add`, `Not`, `Lt`, ...): no question here is about them, and
# they are a third of a body's nodes.
_MARKER_FIELDS = frozenset({"ctx", "op", "ops"})
_walked_fields: dict[type[ast.AST], tuple[str, ...]] = {}


def child_nodes(node: ast.AST) -> list[ast.AST]:
    """`ast.iter_child_nodes(node)` as a list, in the same order, less the leaf markers of `_MARKER_FIELDS`
    and without its two generators (the walks of the analysis visit every node of every mask function)."""
    kind = type(node)
    fields = _walked_fields.get(kind)
    if fields is None:
        fields = _walked_fields[kind] = tuple(f for f in kind._fields if f not in _MARKER_FIELDS)
    children: list[ast.AST] = []
    for name in fields:
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            children.append(value)
        elif isinstance(value, list):
            children.extend(item for item in value if isinstance(item, ast.AST))
    return children


def defaults(fn: FuncNode) -> list[ast.expr]:
    """The default values of a function's parameters (evaluated when its `def` or `lambda` runs)."""
    a = fn.args
    return [*a.defaults, *(d for d in a.kw_defaults if d is not None)]


def definition_time_roots(node: FuncNode, future_annotations: bool) -> list[ast.AST]:
    """What running the `def`/`lambda` itself evaluates: defaults, decorators, and annotations unless
    `from __future__ import annotations` defers them."""
    roots: list[ast.AST] = list(defaults(node))
    if not isinstance(node, ast.Lambda):
        roots.extend(node.decorator_list)
        if not future_annotations:
            a = node.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
            params.extend(p for p in (a.vararg, a.kwarg) if p is not None)
            roots.extend(p.annotation for p in params if p.annotation is not None)
            if node.returns is not None:
                roots.append(node.returns)
    return roots


def names_in(roots: Sequence[ast.AST]) -> list[ast.Name]:
    return [n for root in roots for n in ast.walk(root) if isinstance(n, ast.Name)]


def reads_class_cell(node: ast.AST) -> bool:
    """`__class__` or a bare `super()`: code that needs the enclosing class's cell."""
    if isinstance(node, ast.Name) and node.id == "__class__":
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "super"
        and not node.args
        and not node.keywords
    )


# The last component of every wrapper that returns its first argument's callable (core.apis.TRANSPARENT_
# WRAPPERS and `functools.partial`), as spelled.
_WRAPPER_WORDS = frozenset({"compile", "disable", "optimize", "lru_cache", "cache", "partial"})


def may_return_callable(value: ast.expr) -> bool:
    """`torch.compile(flex_attention, ...)`, `partial(create_block_mask, ...)`, `create_block_mask`: a name,
    or wrappers spelled by their own names around one. What a helper must return for a call of it to be an
    API call (callees.helper_result), and what the relevance filter reads in a helper's final `return`."""
    while isinstance(value, ast.Call) and value.args:
        func = value.func
        word = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if word not in _WRAPPER_WORDS:
            return False
        value = value.args[0]
    return isinstance(value, (ast.Name, ast.Attribute))


def module_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run in the module's scope: the body and the blocks of if/try/with/for/while."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, SKIPPABLE):
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from module_level_statements(getattr(stmt, name, None) or [])
        for handler in getattr(stmt, "handlers", None) or []:
            yield from module_level_statements(handler.body)


def has_future_annotations(tree: ast.Module) -> bool:
    """`from __future__ import annotations`: annotations are not evaluated when a def runs."""
    return any(
        isinstance(s, ast.ImportFrom)
        and s.module == "__future__"
        and s.level == 0
        and any(a.name == "annotations" for a in s.names)
        for s in tree.body
    )


def assigned_targets(statement: ast.AST) -> list[ast.expr]:
    """The targets a statement assigns a value to: `a = b = v`, `a: T = v`; none for `a: T` alone (it binds
    nothing) or any other statement."""
    if isinstance(statement, ast.Assign):
        return statement.targets
    if isinstance(statement, ast.AnnAssign) and statement.value is not None:
        return [statement.target]
    return []


def class_body_attributes(cls: ast.ClassDef) -> set[str]:
    """The names a class body assigns by plain or annotated assignment (`compiled = None`): its class
    attributes that a method may later set (`cls.compiled = ...`)."""
    return {t.id for stmt in cls.body for t in assigned_targets(stmt) if isinstance(t, ast.Name)}
