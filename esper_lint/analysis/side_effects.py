"""Facts for ESP022: a mask/score function that changes state outside itself, or prints and logs.

Torch does not call a mask/score function once per element: `create_block_mask`/`create_mask` call it
once under `vmap`, and `flex_attention` traces a score_mod with dynamo. So a side effect happens once per
trace (a counter counts 1 for 16,384 elements), leaks a batched tensor (`SEEN.append(q_idx)`), or is
refused: eager `flex_attention` raises `Unsupported` (side effect, `print`, `logging`), a compiled
`create_block_mask`/`flex_attention` fails to compile a mutated list or dict (measured on torch 2.13 CPU).

Found, in the function's own body (nested functions aside):
- assignments to names declared `global`/`nonlocal` there;
- item, slice or attribute assignment (`=`, `+=`, `del`) into an object the function does not own: the
  root name is not bound in the function (a capture, a module name, `self`) and is not a module import;
- calls of mutating container methods on such an object (`.append`, `.extend`, `.insert`, `.remove`,
  `.clear`, `.setdefault`, `.popitem`, ...; `.add`/`.update`/`.pop`/`.put` as statements only, since a
  tensor has `.add`), and of in-place tensor methods (`.zero_()`, `.add_()`, ...);
- `print(...)` and `breakpoint()` (the builtins), `pdb.set_trace()`, and `logging` calls: the module's own
  functions, or a logger bound once (here, around, or at module level) to `logging.getLogger(...)`.
A list the function builds itself (`parts = []; parts.append(q >= kv)`) is its own: not reported.
"""

from __future__ import annotations

import ast
from collections.abc import Container, Sequence

from ..core.records import NamedTuple
from .mask_bodies import FuncNode, free_builtins, local_names, once_per_node, walk_body
from .name_bindings import imported_name, resolve_free_name

# Methods that only a container has (a tensor has none of them): a call anywhere mutates.
_CONTAINER_MUTATORS = frozenset(
    {"append", "extend", "insert", "remove", "clear", "setdefault", "popitem", "appendleft", "extendleft", "discard"}
)
# Mutating methods whose names tensors or other objects also use for pure operations: as a statement only.
_STATEMENT_MUTATORS = frozenset({"add", "update", "pop", "popleft", "put", "put_nowait"})
_NOT_IN_PLACE = frozenset({"requires_grad_"})
_LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})
_DEBUGGERS = frozenset({"pdb.set_trace", "ipdb.set_trace", "pdb.post_mortem"})


class SideEffect(NamedTuple):
    node: ast.AST  # the statement or call to report
    what: str  # "assigns the global `CALLS`", "appends to `SEEN`", "calls `print`"
    debugging: bool = False  # print, breakpoint, a debugger or logging: no state changes


_DEBUG_FLAG = "_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG"


def debugs_flex_attention(module: ast.Module | None, text: str) -> bool:
    """The module turns on FlexAttention's debug mode (`fa._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = True`),
    in which eager `flex_attention` runs a score_mod in Python, `print()` and breakpoints included (measured
    on torch 2.13: without it, `Unsupported`). Matched by the flag's name, wherever it is set: a notebook
    cell often receives the module as a parameter, so the object cannot be resolved, and the answer only
    ever withholds a finding."""
    if module is None or _DEBUG_FLAG not in text:  # the text test first: nearly every module fails it
        return False
    return any(
        isinstance(n, ast.Assign)
        and isinstance(n.value, ast.Constant)
        and n.value.value is True
        and any(isinstance(t, ast.Attribute) and t.attr == _DEBUG_FLAG for t in n.targets)
        for n in ast.walk(module)
    )


def side_effects(
    node: FuncNode, module: ast.Module | None = None, outer: Sequence[FuncNode] | None = None
) -> list[SideEffect]:
    """The side effects of the function's own body (see the module docstring), in body order."""
    own = local_names(node)
    declared = {name for n in walk_body(node) if isinstance(n, (ast.Global, ast.Nonlocal)) for name in n.names}
    builtins_here = free_builtins(node, module, outer)
    foreign = _Foreign(node, module, outer, own - declared)
    found: list[SideEffect] = []
    for n in walk_body(node):
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets: list[ast.expr] = list(n.targets) if isinstance(n, (ast.Assign, ast.Delete)) else [n.target]
            if isinstance(n, ast.AnnAssign) and n.value is None:
                continue  # `x: int` binds nothing
            what = _assignment(targets, declared, foreign, isinstance(n, ast.Delete))
            if what is not None:
                found.append(SideEffect(n, what))
        elif isinstance(n, ast.NamedExpr) and n.target.id in declared:
            found.append(SideEffect(n, f"assigns `{n.target.id}`, declared `global`/`nonlocal`"))
        elif isinstance(n, ast.Expr) and isinstance(n.value, ast.Call):
            what = _call(n.value, foreign, builtins_here, statement=True)
            if what is not None:
                found.append(SideEffect(n, what, _debugging(what)))
    reported = {id(e.node.value) for e in found if isinstance(e.node, ast.Expr)}
    for n in walk_body(node):  # calls inside expressions: `x = SEEN.append(q) or q`
        if isinstance(n, ast.Call) and id(n) not in reported:
            what = _call(n, foreign, builtins_here, statement=False)
            if what is not None:
                found.append(SideEffect(n, what, _debugging(what)))
    return sorted(found, key=lambda e: (getattr(e.node, "lineno", 0), getattr(e.node, "col_offset", 0)))


def _debugging(what: str) -> bool:
    """A `_call` answer about printing, breaking into a debugger or logging (not about mutating state)."""
    return what.startswith("logs with") or (what.startswith("calls `") and "on an object" not in what)


def _assignment(targets: list[ast.expr], declared: set[str], foreign: _Foreign, deleting: bool) -> str | None:
    for target in targets:
        for leaf in _leaves(target):
            if isinstance(leaf, ast.Name) and leaf.id in declared:
                verb = "deletes" if deleting else "assigns"
                return f"{verb} `{leaf.id}`, declared `global`/`nonlocal`"
            if isinstance(leaf, (ast.Subscript, ast.Attribute)) and foreign.root(leaf) is not None:
                verb = "deletes" if deleting else "assigns"
                if isinstance(leaf, ast.Subscript):
                    return f"{verb} an item of `{ast.unparse(leaf.value)}`, which it does not own"
                return f"{verb} `{ast.unparse(leaf)}`, which it does not own"
    return None


def _leaves(target: ast.expr) -> list[ast.expr]:
    """The targets inside `a, (b[0], c.x) = ...` (starred included)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return [leaf for element in target.elts for leaf in _leaves(element)]
    if isinstance(target, ast.Starred):
        return _leaves(target.value)
    return [target]


def _call(call: ast.Call, foreign: _Foreign, builtins_here: Container[str], statement: bool) -> str | None:
    func = call.func
    if isinstance(func, ast.Name) and func.id in ("print", "breakpoint") and func.id in builtins_here:
        return f"calls `{func.id}()`"
    qualified = foreign.imported(func)
    if qualified is not None:
        if qualified in _DEBUGGERS:
            return f"calls `{qualified}()`"
        parts = qualified.split(".")
        if parts[0] == "logging" and len(parts) == 2 and parts[1] in _LOG_METHODS:
            return f"calls `{qualified}()`"
        return None
    if not isinstance(func, ast.Attribute):
        return None
    method = func.attr
    if method in _LOG_METHODS and isinstance(func.value, ast.Name) and foreign.is_logger(func.value.id):
        return f"logs with `{func.value.id}.{method}()`"
    mutates = (
        method in _CONTAINER_MUTATORS
        or (statement and method in _STATEMENT_MUTATORS)
        or (method.endswith("_") and not method.startswith("_") and method not in _NOT_IN_PLACE)
    )
    if not mutates or foreign.root(func.value) is None:
        return None
    return f"calls `{ast.unparse(func)}()` on an object it does not own"


class _Foreign:
    """Objects the function does not own: reached from a name it does not bind, other than an import."""

    def __init__(
        self, node: FuncNode, module: ast.Module | None, outer: Sequence[FuncNode] | None, own: Container[str]
    ) -> None:
        self.node, self.module, self.outer, self.own = node, module, outer, own

    def root(self, expr: ast.expr) -> str | None:
        """The root name of `a.b[c].d` when it names something the function does not own."""
        while isinstance(expr, (ast.Attribute, ast.Subscript)):
            expr = expr.value
        if not isinstance(expr, ast.Name) or expr.id in self.own:
            return None
        if expr.id in _imported_anywhere(self.module):
            return None  # a module (`torch.nn.init.zeros_(w)`...), not captured state
        return expr.id

    def imported(self, expr: ast.expr) -> str | None:
        return imported_name(self.module, self.node, expr, self.outer)

    def is_logger(self, name: str) -> bool:
        """`name` is bound once, around the function or at module level, to `logging.getLogger(...)`."""
        if name in self.own:
            return False
        binding = resolve_free_name(self.module, self.node, name, self.outer)
        value = binding.only_value if binding is not None else None
        if not isinstance(value, ast.Call) or binding is None:
            return False
        scope = binding.scope
        where = self.node if isinstance(scope, ast.Module) else scope
        outer = self.outer if isinstance(scope, ast.Module) else binding.outer
        return imported_name(self.module, where, value.func, outer) == "logging.getLogger"


def _imported_anywhere(module: ast.Module | None) -> frozenset[str]:
    """Names some import of the module binds, at any level (such a root is taken for a module)."""
    return frozenset() if module is None else _import_names(module)


@once_per_node
def _import_names(module: ast.Module) -> frozenset[str]:
    return frozenset(
        (alias.asname or alias.name).split(".")[0]
        for statement in ast.walk(module)
        if isinstance(statement, (ast.Import, ast.ImportFrom))
        for alias in statement.names
    )
