"""Facts about the *body* of a mask_mod / score_mod: what it does with the tensors torch passes in.

FlexAttention calls a mask_mod as `mask_mod(b, h, q_idx, kv_idx)` and a score_mod as
`score_mod(score, b, h, q_idx, kv_idx)`, positionally, with 0-d tensors (batched by vmap, or traced by
torch.compile). These pure functions read a stdlib `ast` function (`def` or `lambda`) and say:
- which names hold values derived from those parameters (`derived_names`),
- where the body uses such a value in Python control flow (`control_flow`), which vmap and dynamo
  refuse, and which of those have a mechanical rewrite,
- where a score_mod updates its `score` in place (`score_mutations`), or returns a boolean / ignores
  `score` (`score_mod_misuse`),
- whether the parameter names put kv before q (`swapped_index_names`),
- which Python numbers a closure captures from its enclosing function (`captured_python_numbers`).

Whether it reads `b`/`h` at all (ESP007/ESP009) is `call_sites.parameter_read`.

Precision first: each answer errs towards "fine". A value counts as derived only when it is computed
from a parameter by expressions that keep it a tensor; names of the body are resolved syntactically
(a name bound in the body is local, any other name is free), and a function whose parameters are not
plain positional ones is not analysed.
"""

from __future__ import annotations

import ast
import functools
import weakref
from collections.abc import Callable, Container, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from ..core.records import NamedTuple
from ..core.span import first_line
from . import edit_safety, name_stability
from .bound_names import bindings_of, bound_names
from .edit_safety import NO_FIX, EditSafety
from .loop_iterables import parameter_loop, scalar_names
from .model import MASK_MOD, SCORE_MOD
from .syntax import child_nodes

if TYPE_CHECKING:
    from .hoist_safety import ModuleSummary

_Node = TypeVar("_Node", bound=ast.AST)
_T = TypeVar("_T")


def once_per_node(compute: Callable[[_Node], _T]) -> Callable[[_Node], _T]:
    """Compute a fact of a tree or function once per node (rules ask again for each mask function): kept
    while the node lives. The result is shared, so it must not be changed (sets are frozen)."""
    results: weakref.WeakKeyDictionary[_Node, _T] = weakref.WeakKeyDictionary()

    def cached(node: _Node) -> _T:
        if node not in results:
            results[node] = compute(node)
        return results[node]

    return cached


FuncNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
# How many positional parameters torch passes to each role.
ARITY = {MASK_MOD: 4, SCORE_MOD: 5}

# Attributes and calls whose result is plain Python metadata, not a tensor of the values.
_METADATA_ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "layout"})
_METADATA_METHODS = frozenset(
    {"size", "dim", "numel", "item", "tolist", "element_size", "is_floating_point", "is_complex", "is_tensor"}
)
_METADATA_BUILTINS = frozenset({"len", "isinstance", "type", "id", "callable", "hasattr", "repr", "str"})
# Builtins that turn a tensor into a Python value (a data-dependent read) when given a derived value.
_CONVERTING_BUILTINS = frozenset({"int", "float", "bool", "min", "max"})
SCOPE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def positional_parameters(node: FuncNode, role: str) -> list[str] | None:
    """The names torch's positional arguments bind, in order; None when they cannot be told.

    Extra parameters with defaults are allowed (`def mask(b, h, q, kv, window=128)`); `*args` within
    the first positions or fewer positional parameters than torch passes make the answer unknown.
    """
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    arity = ARITY[role]
    if len(positional) < arity:
        return None
    return [a.arg for a in positional[:arity]]


def _body(node: FuncNode) -> list[ast.AST]:
    return [node.body] if isinstance(node, ast.Lambda) else list(node.body)


# Nodes `control_flow` looks at: kept while walking, so it need not test every node for every kind.
_CONTROL_FLOW_CANDIDATES = (
    ast.If,
    ast.While,
    ast.Assert,
    ast.IfExp,
    ast.BoolOp,
    ast.UnaryOp,
    ast.Compare,
    ast.Call,
    ast.For,
    ast.AsyncFor,
)
_LOCAL_BINDERS = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Import,
    ast.ImportFrom,
    ast.ExceptHandler,
    ast.Global,
    ast.Nonlocal,
    ast.MatchAs,
    ast.MatchStar,
    ast.MatchMapping,
)  # and `ast.Name` stores, handled first
_BINDING_CONSTRUCTS = (
    ast.Assign,
    ast.AnnAssign,
    ast.AugAssign,
    ast.NamedExpr,
    ast.For,
    ast.AsyncFor,
    ast.comprehension,
    ast.withitem,
)
# What the walk does with a node of each type, decided once per type: (binds local names, binds targets,
# a control-flow candidate, a new scope).
_roles: dict[type[ast.AST], tuple[bool, bool, bool, bool]] = {}


def _roles_of(kind: type[ast.AST]) -> tuple[bool, bool, bool, bool]:
    roles = _roles.get(kind)
    if roles is None:
        roles = _roles[kind] = (
            issubclass(kind, _LOCAL_BINDERS),
            issubclass(kind, _BINDING_CONSTRUCTS),
            issubclass(kind, _CONTROL_FLOW_CANDIDATES),
            issubclass(kind, SCOPE_NODES),
        )
    return roles


class _Body(NamedTuple):
    """What the checks read from a function's own body, collected in one walk (see `body_facts`)."""

    nodes: tuple[ast.AST, ...]  # what `walk_body` yields
    local_names: frozenset[str]  # names bound in the function's scope, parameters included
    rebound: frozenset[str]  # names the body itself binds or deletes (parameters rebound there included)
    bindings: tuple[tuple[ast.expr, ast.AST | None], ...]  # `_targets` of every node, in order
    control_flow_candidates: tuple[ast.AST, ...]  # the nodes `control_flow` examines, in order


@once_per_node
def body_facts(node: FuncNode) -> _Body:
    """One walk of the body (iterative: deeply nested generated code cannot exhaust the stack), shared by
    every question about it: each rule asks again for each use of the function."""
    args = node.args
    parameters = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    parameters.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
    found: set[str] = set()
    nodes: list[ast.AST] = []
    bindings: list[tuple[ast.expr, ast.AST | None]] = []
    candidates: list[ast.AST] = []
    stack = list(reversed(_body(node)))
    while stack:
        current = stack.pop()
        nodes.append(current)
        if isinstance(current, ast.Name):  # the commonest node: only its context matters
            if isinstance(current.ctx, (ast.Store, ast.Del)):
                found.add(current.id)
            continue
        binds_names, binds_targets, candidate, new_scope = _roles_of(type(current))
        if binds_names:
            _add_local_names(current, found)
        if binds_targets:
            bindings.extend(_targets(current))
        if candidate:
            candidates.append(current)
        if new_scope:
            continue
        children = child_nodes(current)
        children.reverse()
        stack.extend(children)
    return _Body(tuple(nodes), frozenset(found | parameters), frozenset(found), tuple(bindings), tuple(candidates))


def _add_local_names(n: ast.AST, found: set[str]) -> None:
    # Names declared global or nonlocal are not the builtins either (the question `local_names` answers).
    found.update(n.names if isinstance(n, (ast.Global, ast.Nonlocal)) else bound_names(n))


def walk_body(node: FuncNode) -> tuple[ast.AST, ...]:
    """Every node of the function's own body, not entering nested functions, lambdas or classes, each before
    its children; leaf markers (`Load`, `Add`, `Lt`, ...) left out."""
    return body_facts(node).nodes


def local_names(node: FuncNode) -> frozenset[str]:
    """Names bound in the function's own scope (parameters included)."""
    return body_facts(node).local_names


def module_level_nodes(module: ast.Module) -> Iterator[ast.AST]:
    """The module's own statements and expressions (in `if`/`try`/loops too), not function or class bodies."""
    stack: list[ast.AST] = list(module.body)
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        stack.extend(child_nodes(current))


@once_per_node
def _module_bindings(module: ast.Module) -> dict[str, list[ast.AST]]:
    found: dict[str, list[ast.AST]] = {}
    for n in module_level_nodes(module):
        for name, binder in bindings_of(n):
            found.setdefault(name, []).append(binder)
    return found


def enclosing_functions(module: ast.Module, node: FuncNode) -> list[FuncNode] | None:
    """The functions around `node`, outermost first; None when `node` is not in `module`.

    Looks only inside nodes whose lines hold `node`'s first line (a decorated definition starts at its first
    decorator); should positions ever not nest, it searches the whole tree. Iterative, with the path kept
    on the stack, so deeply nested generated code cannot exhaust the stack."""
    line = node.lineno
    for prune in (True, False):
        stack: list[tuple[ast.AST, tuple[FuncNode, ...]]] = [(module, ())]
        while stack:
            current, outer = stack.pop()
            if current is node:
                return list(outer)
            if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                outer = (*outer, current)
            for child in ast.iter_child_nodes(current):
                if not prune or _may_hold_line(child, line):
                    stack.append((child, outer))
    return None


def _may_hold_line(node: ast.AST, line: int) -> bool:
    first = getattr(node, "lineno", None)
    last = getattr(node, "end_lineno", None)
    if first is None or last is None:
        return True  # no position (arguments, comprehension, operators, ...): look inside
    first = first_line(node)
    return bool(first <= line <= last)


def functions_around(module: ast.Module, node: FuncNode, outer: Sequence[FuncNode] | None) -> Sequence[FuncNode] | None:
    """The functions around `node`, outermost first: `outer` when the caller knows them (the analysis gives
    them as `MaskFunction.outer_functions`), else searched for in `module`; None when `node` is not there."""
    return enclosing_functions(module, node) if outer is None else outer


def torch_imported(module: ast.Module) -> bool:
    """`torch` is bound once at module level, by a plain top-level `import torch`."""
    bindings = _module_bindings(module).get("torch", [])
    return (
        len(bindings) == 1
        and isinstance(bindings[0], ast.alias)
        and bindings[0].name == "torch"
        and bindings[0].asname in (None, "torch")
        and any(isinstance(stmt, ast.Import) and bindings[0] in stmt.names for stmt in module.body)
    )


def names_torch_module(
    module: ast.Module | None,
    node: FuncNode,
    outer: Sequence[FuncNode] | None = None,
    summary: ModuleSummary | None = None,
) -> bool:
    """Inside `node`, the name `torch` is certainly the torch module: bound once at module level, by a plain
    `import torch` before the top-level statement holding `node`, and stable there (name_stability.py: no
    `global torch`, star import, `del`, attribute assignment or dynamic namespace access anywhere), and no
    binding of `torch` in `node` or the functions around it (`outer`, when known: see `functions_around`).
    `summary`: the analysis' module summary (`MaskFunction.module_summary`); without it the dynamic-access
    check walks the whole module."""
    if module is None:
        return False
    around = functions_around(module, node, outer)
    if around is None or any("torch" in local_names(fn) for fn in (*around, node)):
        return False
    top = name_stability.top_index(module, node)
    return torch_imported(module) and name_stability.stable_import(module, "torch", "torch", top, summary)


class Derivation:
    """Whether an expression may hold a tensor computed from the parameters."""

    def __init__(self, derived: set[str], free_builtins: Container[str]) -> None:
        self.derived = derived
        self.free_builtins = free_builtins  # builtin names the body does not rebind

    def __call__(self, expr: ast.AST | None) -> bool:
        stack = [expr] if expr is not None else []
        while stack:  # iterative: long generated expressions cannot exhaust the stack
            current = stack.pop()
            if isinstance(current, ast.Name):
                if current.id in self.derived:
                    return True
                continue
            if not self._may_hold_values(current):
                continue
            stack.extend(child_nodes(current))
        return False

    def _may_hold_values(self, expr: ast.AST) -> bool:
        """False for what only gives Python metadata (`.shape`, `len()`, `is`) or defines a new scope."""
        if isinstance(expr, (ast.Constant, *SCOPE_NODES)):
            return False
        if isinstance(expr, ast.Attribute):
            return expr.attr not in _METADATA_ATTRIBUTES
        if isinstance(expr, ast.Call):
            func = expr.func
            if isinstance(func, ast.Attribute) and func.attr in _METADATA_METHODS:
                return False
            if isinstance(func, ast.Name) and func.id in _METADATA_BUILTINS and func.id in self.free_builtins:
                return False
        # Identity (`x is None`) is a Python bool, whatever the operands.
        return not (isinstance(expr, ast.Compare) and all(isinstance(op, (ast.Is, ast.IsNot)) for op in expr.ops))


def _targets(stmt: ast.AST) -> list[tuple[ast.expr, ast.AST | None]]:
    """(target, value) pairs of one binding construct in the body."""
    if isinstance(stmt, ast.Assign):
        return [(t, stmt.value) for t in stmt.targets]
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        return [(stmt.target, stmt.value)]
    if isinstance(stmt, ast.NamedExpr):
        return [(stmt.target, stmt.value)]
    if isinstance(stmt, (ast.For, ast.AsyncFor, ast.comprehension)):
        return [(stmt.target, stmt.iter)]
    if isinstance(stmt, ast.withitem) and stmt.optional_vars is not None:
        return [(stmt.optional_vars, stmt.context_expr)]
    return []


def stored_names(target: ast.expr) -> Iterator[str]:
    for n in ast.walk(target):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            yield n.id


class FreeBuiltins:
    """Builtin names that are still the builtins inside a function (`name in it`): not bound there, nor,
    given the module, in the module or the functions around it; none when the function cannot be placed
    in the module. The checks ask about a handful of names, and most bodies call none of them, so each
    answer is looked up when asked: the module and the functions around are read only then."""

    def __init__(self, node: FuncNode, module: ast.Module | None, outer: Sequence[FuncNode] | None) -> None:
        self._node = node
        self._module = module
        self._outer = outer  # the functions around `node` when known (see `functions_around`)
        self._placed = outer is not None or module is None

    def __contains__(self, name: object) -> bool:
        if name not in _builtin_names() or name in local_names(self._node):
            return False
        if self._module is None:
            return True
        if not self._placed:
            self._outer, self._placed = enclosing_functions(self._module, self._node), True
        if self._outer is None:
            return False
        return name not in _module_bindings(self._module) and not any(name in local_names(fn) for fn in self._outer)


def free_builtins(
    node: FuncNode, module: ast.Module | None = None, outer: Sequence[FuncNode] | None = None
) -> FreeBuiltins:
    """Builtin names that are still the builtins inside `node` (see `FreeBuiltins`); `module` is the tree
    around it, and `outer` the functions around it, outermost first, when the caller knows them (the
    analysis gives them as `MaskFunction.outer_functions`)."""
    return FreeBuiltins(node, module, outer)


@functools.cache
def _builtin_names() -> frozenset[str]:
    import builtins

    return frozenset(name for name in dir(builtins) if not name.startswith("_"))


def derived_names(node: FuncNode, role: str) -> set[str] | None:
    """Names that may hold values computed from the parameters torch passes; None when unknown."""
    params = positional_parameters(node, role)
    if params is None:
        return None
    derived = set(params)
    is_derived = Derivation(derived, free_builtins(node))
    bindings = body_facts(node).bindings
    changed = True
    while changed:  # a fixpoint: `d = q - kv; e = d * 2` makes both derived, in any order
        changed = False
        for target, value in bindings:
            if is_derived(value) or (isinstance(target, ast.Subscript) and is_derived(target.slice)):
                for name in stored_names(target):
                    if name not in derived:
                        derived.add(name)
                        changed = True
    return derived


class ControlFlow(NamedTuple):
    """Python control flow on a derived value: `node` is where to report; `what` says what it is."""

    node: ast.AST
    what: str  # "`if` test", "`x if c else y`", "`and`", "`or`", "`not`", "`.item()`", "`int()`", ...
    # Whether the rules' mechanical rewrite is safe, unsafe or not offered, and why (analysis/edit_safety.py).
    safety: EditSafety = EditSafety(NO_FIX)

    @property
    def fixable(self) -> bool:
        """A rewrite is offered (safe, or unsafe behind `--unsafe-fixes`)."""
        return self.safety.offered


def control_flow(
    node: FuncNode,
    role: str,
    module: ast.Module | None = None,
    traced_by_dynamo: bool | Callable[[], bool] = True,
    outer: Sequence[FuncNode] | None = None,
    summary: ModuleSummary | None = None,
) -> list[ControlFlow]:
    """Where the body turns a derived tensor into a Python bool or number; empty when unknown.

    `module` (the tree around `node`) lets builtins shadowed at module level or in the functions around
    `node` (`outer`, when the caller knows them: see `functions_around`) be told apart. Builtin
    `min`/`max` count only when the function is certainly *not* traced by dynamo (`traced_by_dynamo`
    False): dynamo rewrites them to `torch.minimum`/`torch.maximum` (a score_mod, a compiled
    `create_block_mask`), while plain `vmap` (an uncompiled `create_block_mask`/`create_mask`) fails.
    `traced_by_dynamo` may be a function that tells: it is asked only when such a call is found."""
    derived = derived_names(node, role)
    if derived is None:
        return []
    builtins_here = free_builtins(node, module, outer)
    is_derived = Derivation(derived, builtins_here)
    params = positional_parameters(node, role) or []
    indices = params[1:] if role == SCORE_MOD else params
    body = edit_safety.Body(params, indices, body_facts(node).rebound)
    scalars: set[str] | None = None  # names holding 0-d values, found when a loop asks
    found: list[ControlFlow] = []
    for n in body_facts(node).control_flow_candidates:
        if isinstance(n, (ast.If, ast.While)) and is_derived(n.test):
            word = "if" if isinstance(n, ast.If) else "while"
            found.append(ControlFlow(n.test, f"`{word}` test"))
        elif isinstance(n, ast.Assert) and is_derived(n.test):
            found.append(ControlFlow(n.test, "`assert`"))
        elif isinstance(n, ast.IfExp) and is_derived(n.test):
            torch_ok = functools.partial(names_torch_module, module, node, outer, summary)  # asked last
            found.append(ControlFlow(n, "`x if c else y`", edit_safety.where_fix(n, body, builtins_here, torch_ok)))
        elif isinstance(n, ast.BoolOp) and any(is_derived(v) for v in n.values[:-1]):
            # Python calls bool() on every operand but the last: only those must be tensors to fail.
            word = "and" if isinstance(n.op, ast.And) else "or"
            found.append(ControlFlow(n, f"`{word}`", edit_safety.logic_fix(n, body)))
        elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not) and is_derived(n.operand):
            found.append(ControlFlow(n, "`not`", edit_safety.logic_fix(n, body)))
        elif isinstance(n, ast.Compare) and len(n.ops) > 1 and is_derived(n):
            found.append(ControlFlow(n, "a chained comparison (`a < b < c` is `a < b and b < c`)"))
        elif isinstance(n, ast.Call):
            func = n.func
            if isinstance(func, ast.Attribute) and func.attr == "item" and not n.args and is_derived(func.value):
                found.append(ControlFlow(n, "`.item()`"))
            elif (
                isinstance(func, ast.Name)
                and func.id in _CONVERTING_BUILTINS
                and func.id in builtins_here
                and not n.keywords
                and any(is_derived(a) for a in n.args)
                and not (func.id in ("min", "max") and _told(traced_by_dynamo))
            ):
                found.append(ControlFlow(n, f"`{func.id}()`"))
        elif isinstance(n, (ast.For, ast.AsyncFor)) and is_derived(n.iter):
            if scalars is None:
                scalars = scalar_names(params, walk_body(node))
            what = parameter_loop(n.iter, scalars, is_derived, builtins_here)
            if what is not None:
                found.append(ControlFlow(n.iter, what))
    return _outermost_fixable(found)


def _told(answer: bool | Callable[[], bool]) -> bool:
    return answer() if callable(answer) else answer


def _outermost_fixable(found: list[ControlFlow]) -> list[ControlFlow]:
    """A fix rewrites a whole expression: the items inside a fixable one are rewritten with it, so they
    are not reported on their own. (Nothing inside can block it: edit_safety offers a rewrite only when
    every part of the expression is one it renders, the `and`/`or`/`not` items inside included.)"""
    if not found:
        return found
    # What is below each fixable item (only those are asked about), walked once per item, not once per pair.
    below = {id(item.node): _nodes_below(item.node) for item in found if item.fixable}
    return [item for item in found if not any(o.fixable and id(item.node) in below[id(o.node)] for o in found)]


def _nodes_below(node: ast.AST) -> set[int]:
    """Identities of the nodes strictly inside `node` (only compared while the tree is in hand)."""
    inside = {id(n) for n in ast.walk(node)}
    inside.discard(id(node))
    return inside


def score_name(node: FuncNode) -> str | None:
    params = positional_parameters(node, SCORE_MOD)
    return None if params is None else params[0]


_IN_PLACE_EXCEPTIONS = frozenset({"requires_grad_"})


def score_mutations(node: FuncNode) -> list[ast.AST]:
    """In-place updates of the score tensor: `score += x`, `score.add_(x)`, `score[...] = x`.

    Only while `score` still names the tensor torch passed: once the body rebinds it (`score = score * 2`)
    later updates touch a new tensor, so a body with any plain rebinding of `score` is not analysed.
    """
    name = score_name(node)
    if name is None:
        return []
    body = list(walk_body(node))
    for n in body:
        for target, _ in _targets(n):
            if not isinstance(n, ast.AugAssign) and name in set(stored_names(target)):
                return []
    found: list[ast.AST] = []
    for n in body:
        if isinstance(n, ast.AugAssign) and _is_name(n.target, name):
            found.append(n)
        elif isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if any(isinstance(t, ast.Subscript) and _is_name(t.value, name) for t in targets):
                found.append(n)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
            method = n.func.attr
            if (
                _is_name(n.func.value, name)
                and method.endswith("_")
                and not method.startswith("_")
                and method not in _IN_PLACE_EXCEPTIONS
            ):
                found.append(n)
    return found


def score_update_safety(node: FuncNode, mutations: list[ast.AST]) -> list[EditSafety]:
    """For each of `score_mutations(node)`, whether `score += x` may become `score = score + (x)`
    (edit_safety.score_update_fix). All or none: one rewritten alone rebinds `score`, and the other
    updates would then change a new tensor."""
    name = score_name(node)
    params = positional_parameters(node, SCORE_MOD) or []
    body = edit_safety.Body(params, params[1:], body_facts(node).rebound)
    found = [
        edit_safety.score_update_fix(node, m, name, body)
        if isinstance(m, ast.AugAssign) and name is not None
        else EditSafety(NO_FIX)
        for m in mutations
    ]
    if all(s.offered for s in found):
        return found
    blocked = EditSafety(NO_FIX, "the function also updates `score` in place in a way that has no automatic fix")
    return [s if not s.offered else blocked for s in found]


def _is_name(expr: ast.AST, name: str) -> bool:
    return isinstance(expr, ast.Name) and expr.id == name


class ScoreMisuse(NamedTuple):
    node: ast.AST  # the returned expression (or the function, when it never reads `score`)
    returns_boolean: bool  # else: never reads `score`


def _is_boolean(expr: ast.expr) -> bool:
    if isinstance(expr, ast.Compare):
        return True
    if isinstance(expr, ast.Constant):
        return isinstance(expr.value, bool)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.Not, ast.Invert)):
        return _is_boolean(expr.operand)
    if isinstance(expr, ast.BoolOp):
        return all(_is_boolean(v) for v in expr.values)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
        return _is_boolean(expr.left) and _is_boolean(expr.right)
    return False


def returned_values(node: FuncNode) -> list[ast.expr]:
    if isinstance(node, ast.Lambda):
        return [node.body]
    return [n.value for n in walk_body(node) if isinstance(n, ast.Return) and n.value is not None]


def score_mod_misuse(node: FuncNode) -> list[ScoreMisuse]:
    """A score_mod that returns a boolean (a mask_mod's result), or that never reads `score`."""
    name = score_name(node)
    if name is None:
        return []
    values = returned_values(node)
    booleans = [v for v in values if _is_boolean(v)]
    if booleans:
        return [ScoreMisuse(v, True) for v in booleans]
    if name.startswith("_") or not values:
        return []  # `_score`: deliberately unused; no return value: nothing to say about it
    if any(_is_name(n, name) for n in walk_body(node)):
        return []
    if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) for n in walk_body(node)):
        return []  # a nested function may read it
    if isinstance(node, ast.Lambda):
        return [ScoreMisuse(node.body, False)]
    return [ScoreMisuse(v, False) for v in values]


# Parameter names, lower-cased with underscores removed, that plainly name one side.
_INDEX_SUFFIXES = ("", "idx", "index", "indices", "pos", "position", "positions", "id", "ids", "i")
_KV_STEMS = ("kv", "k", "key", "keys", "kvidx")
_Q_STEMS = ("q", "query", "queries")


_SIDES = tuple(
    (frozenset(stem + suffix for stem in stems for suffix in _INDEX_SUFFIXES), side)
    for stems, side in ((_KV_STEMS, "kv"), (_Q_STEMS, "q"))
)


def _side(name: str) -> str | None:
    word = name.lower().replace("_", "")
    return next((side for words, side in _SIDES if word in words), None)


def swapped_index_names(node: FuncNode, role: str) -> tuple[str, str] | None:
    """(kv name, q name) when the q position holds a kv-named parameter and the kv position a q-named one."""
    params = positional_parameters(node, role)
    if params is None:
        return None
    q_param, kv_param = params[-2], params[-1]
    if _side(q_param) == "kv" and _side(kv_param) == "q":
        return q_param, kv_param
    return None


# --------------------------------------------------------------------------- ESP015: captured Python numbers
_NUMBER_BUILTINS = frozenset({"int", "float", "len", "round"})
_NUMBER_ANNOTATIONS = frozenset({"int", "float"})


def _computes_number(expr: ast.expr, builtins_here: Container[str]) -> bool:
    """A Python number computed at run time: `int(...)`, `float(...)`, `len(...)`, `round(...)`, `x.item()`,
    or arithmetic on one of those and constants (a constant alone does not vary between calls)."""
    if isinstance(expr, ast.Call):
        func = expr.func
        if isinstance(func, ast.Name):
            return func.id in _NUMBER_BUILTINS and func.id in builtins_here
        return isinstance(func, ast.Attribute) and func.attr == "item" and not expr.args
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Div)):
        sides = (expr.left, expr.right)
        return all(_computes_number(s, builtins_here) or _is_number_constant(s) for s in sides) and any(
            _computes_number(s, builtins_here) for s in sides
        )
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        return _computes_number(expr.operand, builtins_here)
    return False


def _is_number_constant(expr: ast.expr) -> bool:
    return isinstance(expr, ast.Constant) and type(expr.value) in (int, float)


def _binds_python_number(fn: FuncNode, name: str, module: ast.Module, outer: Sequence[FuncNode]) -> bool:
    """Every binding of `name` in `fn` (inside `outer`) is a parameter annotated `int`/`float` or a computed
    Python number."""
    args = fn.args
    annotated = False
    for param in (*args.posonlyargs, *args.args, *args.kwonlyargs):
        if param.arg == name:
            annotation = param.annotation
            if not (isinstance(annotation, ast.Name) and annotation.id in _NUMBER_ANNOTATIONS):
                return False
            annotated = True
    builtins_here = free_builtins(fn, module, outer)
    values: list[ast.expr] = []
    for n in walk_body(fn):
        for target, value in _targets(n):
            if name in set(stored_names(target)):
                if not isinstance(target, ast.Name) or not isinstance(n, (ast.Assign, ast.AnnAssign)):
                    return False
                if not isinstance(value, ast.expr):
                    return False
                values.append(value)
    return (annotated or bool(values)) and all(_computes_number(v, builtins_here) for v in values)


def captured_python_numbers(
    module: ast.Module | None, node: FuncNode, outer: Sequence[FuncNode] | None = None
) -> list[ast.Name]:
    """The first read, in the body, of each name captured from an enclosing function (`outer`, when known:
    see `functions_around`) that binds it to a Python number computed per call (see `_binds_python_number`). Empty
    when anything is unclear."""
    if module is None:
        return []
    around = functions_around(module, node, outer)
    if not around:
        return []
    own = local_names(node)
    found: dict[str, ast.Name] = {}
    for n in walk_body(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in own and n.id not in found:
            # The innermost function binding the name; the functions before it are the ones around it.
            depth = next((i for i in reversed(range(len(around))) if n.id in local_names(around[i])), None)
            if depth is not None and _binds_python_number(around[depth], n.id, module, around[:depth]):
                found[n.id] = n
    return list(found.values())


def compiles_with_static_shapes(module: ast.Module | None) -> bool:
    """The module calls `torch.compile(..., dynamic=False)` (a call or a decorator), `torch` being the module."""
    return module is not None and torch_imported(module) and _calls_compile_with_static_shapes(module)


@once_per_node
def _calls_compile_with_static_shapes(module: ast.Module) -> bool:
    for n in ast.walk(module):
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == "compile"
            and isinstance(n.func.value, ast.Name)
            and n.func.value.id == "torch"
        ):
            for keyword in n.keywords:
                value = keyword.value
                if keyword.arg == "dynamic" and isinstance(value, ast.Constant) and value.value is False:
                    return True
    return False
