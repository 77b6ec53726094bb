"""The analysis: one walk over the stdlib `ast`, producing every fact rules and the fixer use.

Checking, `--fix`/`--diff`, the flake8 plugin and the language server all run this (through
`engine.analyze_bytes`); there is no other implementation (docs/architecture.md says why).
`ast.parse` runs in C, and names are resolved in the same single walk. Spans are 1-based lines,
1-based *character* columns, end exclusive, parentheses excluded (as ruff and SARIF).

Name resolution for the rules' facts (which binding a name reads, captures, qualified names) uses the
model LibCST's ScopeProvider had, which the findings were built and checked against:
- an access sees the bindings of its own scope made by statements that ended before it (a `for`
  target is visible after the target is bound); if there are none it falls back to the parent scope;
  bindings in enclosing scopes are all visible;
- class scopes are invisible from the functions and comprehensions nested in them;
- `import a.b.c` binds `a.b.c`, `a.b` and `a`; an attribute chain is resolved through the longest
  dotted prefix that is bound;
- `global` / `nonlocal` redirect both bindings and lookups.
What a fix touches (`HoistSite`: which uses to rename, which names would shadow the new one, why a
move is unsafe) follows CPython's compiler exactly instead: see `_owner` and `module_level_names`.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import functools
import io
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..apis import (
    BLOCK_MASK_CONSTRUCTORS,
    FLEX_ATTENTION,
    FLEX_ATTENTION_PARAMETERS,
    MASK_COMBINATORS,
    PARTIAL,
    TRANSPARENT_WRAPPERS,
    ApiTable,
    MaskApi,
)
from . import call_sites, name_stability
from .hoist_safety import ModuleSummary, defaults, hoist_reasons, identifier_texts, module_summary, scope_names
from .mask_bodies import child_nodes
from .model import (
    CLASS_CELL_REASON,
    AttentionCall,
    CallArgument,
    Capture,
    CaptureKind,
    FunctionKind,
    HoistForm,
    HoistSite,
    MaskFunction,
    MaskUse,
    ModuleFacts,
    Span,
    class_attribute_reason,
)

if TYPE_CHECKING:
    from ..noqa import SourceLines

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_LOOPS = (ast.For, ast.AsyncFor, ast.While, *_COMPREHENSIONS)
_CONDITIONAL = (
    ast.If,
    ast.Try,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.Match,
    ast.IfExp,
    ast.BoolOp,
    ast.Lambda,
    *_FUNCTIONS,
    *_COMPREHENSIONS,
    *((ast.TryStar,) if hasattr(ast, "TryStar") else ()),
)
_SKIPPABLE = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_KIND_PRIORITY = {CaptureKind.LOOP: 0, CaptureKind.SELF: 1, CaptureKind.LOCAL: 2}

FuncNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


# --------------------------------------------------------------------------- scopes and bindings
class _Scope:
    __slots__ = ("bindings", "count", "deleted", "kind", "name", "node", "overwrites", "parent", "prefix")

    def __init__(self, kind: str, name: str | None, parent: _Scope | None, node: ast.AST | None) -> None:
        self.kind = kind  # "builtins", "module", "class", "function", "comprehension"
        self.name = name
        self.parent = parent
        self.node = node
        self.bindings: dict[str, list[_Binding]] = {}
        self.count = 0  # LibCST's assignment counter: orders bindings against accesses
        self.overwrites: dict[str, _Scope] = {}  # global / nonlocal declarations
        self.deleted: set[str] = set()  # `del name`: makes `name` a variable of this scope, as a binding does
        if parent is None or kind == "module":
            self.prefix = ""
        elif kind == "function":
            self.prefix = ".".join(p for p in (parent.prefix, name, "<locals>") if p)
        elif kind == "class":
            self.prefix = ".".join(p for p in (parent.prefix, name) if p)
        else:
            self.prefix = ".".join(p for p in (parent.prefix, "<comprehension>") if p)

    @property
    def is_local(self) -> bool:
        return self.kind in ("function", "comprehension")

    def visible_parent(self, first: _Scope | None = None) -> _Scope:
        parent = first if first is not None else self.parent
        assert parent is not None
        while parent.kind == "class":  # class bodies are not visible from nested scopes
            assert parent.parent is not None
            parent = parent.parent
        return parent

    def target(self, name: str) -> _Scope:
        """Where a binding of `name` made in this scope lands (`global` / `nonlocal` move it)."""
        if name in self.overwrites:
            return self.visible_parent(self.overwrites[name]).target(name)
        return self

    def contains(self, name: str) -> bool:
        if self.kind == "builtins":
            return hasattr(builtins, name)
        if name in self.overwrites:
            return self.overwrites[name].contains(name)
        if self.bindings.get(name):
            return True
        return self.visible_parent().contains(name)

    def resolve(self, name: str) -> list[_Binding]:
        """All bindings `name` may refer to from this scope (LibCST's `_resolve_scope_for_access`)."""
        if self.kind == "builtins":
            found = self.bindings.get(name)
            if found is None and hasattr(builtins, name):
                found = self.bindings[name] = [_Binding(name, self, "builtin", None, 0)]
            return found or []
        if name in self.overwrites:
            return self.visible_parent(self.overwrites[name]).resolve(name)
        if name in self.bindings:
            return self.bindings[name]
        return self.visible_parent().resolve(name)


class _Binding:
    __slots__ = ("alias", "index", "kind", "name", "node", "position", "scope", "value")

    def __init__(self, name: str, scope: _Scope, kind: str, node: ast.AST | None, index: int) -> None:
        self.name = name
        self.scope = scope
        # "import", "def", "class", "param", "store" (a Name target), "other"
        self.kind = kind
        self.node = node
        self.index = index
        self.value: ast.expr | None = None  # right-hand side of `name = value` / `name: T = value` / `name := value`
        self.alias: ast.alias | None = None
        self.position: tuple[int, int] = (0, 0)

    def qualified_names(self, full_name: str) -> set[str]:
        if self.kind == "builtin":
            return {f"builtins.{self.name}"}
        if self.kind != "import":
            return {f"{self.scope.prefix}.{full_name}" if self.scope.prefix else full_name}
        stmt = self.node
        module = ""
        if isinstance(stmt, ast.ImportFrom):
            module = "." * stmt.level + (stmt.module or "")
        assert isinstance(stmt, (ast.Import, ast.ImportFrom))
        results = set()
        for alias in stmt.names:
            parts = alias.name.split(".")
            for i in range(len(parts), 0, -1):
                real = ".".join(parts[:i])
                as_name = real
                if module and module.endswith("."):
                    real = f"{module}{real}"
                elif module:
                    real = f"{module}.{real}"
                if alias.asname:
                    as_name = alias.asname
                if full_name.startswith(as_name):
                    remaining = full_name.split(as_name, 1)[1]
                    if remaining and not remaining.startswith("."):
                        continue
                    remaining = remaining.lstrip(".")
                    results.add(f"{real}.{remaining}" if remaining else real)
                    break
        return results


class _Access:
    __slots__ = ("_referents", "index", "scope", "top_attribute")

    def __init__(self, scope: _Scope, index: int, top_attribute: ast.Attribute | None) -> None:
        self.scope = scope
        self.index = index
        self.top_attribute = top_attribute
        self._referents: dict[str, list[_Binding]] = {}

    def referents(self, name: str) -> list[_Binding]:
        """LibCST's `Access.record_assignments`: bindings made later in the same scope are not seen."""
        found = self._referents.get(name)
        if found is None:
            candidates = self.scope.resolve(name)
            found = [b for b in candidates if b.scope is not self.scope or b.index < self.index]
            if not found and candidates and self.scope.parent is not None:
                found = list(self.scope.parent.resolve(name))
            self._referents[name] = found
        return found


def _full_name(node: ast.AST) -> str | None:
    """LibCST's `get_full_name_for_node` for expressions."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _full_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    if isinstance(node, ast.Call):
        return _full_name(node.func)
    if isinstance(node, ast.Subscript):
        return _full_name(node.value)
    return None


def _dotted_names(node: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    """LibCST's `_gen_dotted_names`: `a.b.c`, `a.b`, `a` with the node each spans."""
    if isinstance(node, ast.Name):
        yield node.id, node
        return
    if not isinstance(node, ast.Attribute):
        return
    value = node.value
    if isinstance(value, ast.Call):
        value = value.func
    if isinstance(value, (ast.Attribute, ast.Name)):
        inner = _dotted_names(value)
        first = next(inner, None)
        if first is None:
            return
        yield f"{first[0]}.{node.attr}", node
        yield first
        yield from inner


# --------------------------------------------------------------------------- the walk
class _ScopeBuilder:
    """One pass over the tree, in LibCST's visiting order: scopes, bindings, accesses and parents."""

    def __init__(self) -> None:
        self.builtins = _Scope("builtins", None, None, None)
        self.module = _Scope("module", None, self.builtins, None)
        self.made: list[_Scope] = [self.builtins, self.module]  # every scope, for `release`
        self.accesses: dict[int, _Access] = {}  # id(Name) -> access
        self.scope_of: dict[int, _Scope] = {}  # id(node) -> scope its expression is evaluated in
        self.function_scope: dict[int, _Scope] = {}  # id(def / lambda / comprehension) -> its scope
        self.calls: list[ast.Call] = []
        # Each node's parent, by id: kept here rather than on the nodes, so that a tree has no reference
        # cycles and is freed as soon as it is dropped (cycles made the garbage collector a third of a run).
        self.parents: dict[int, ast.AST | None] = {}
        self.names: dict[str, list[ast.Name]] = {}  # every Name visited, by identifier: the renamer's index
        self.string_annotations: list[ast.Constant] = []  # `x: "T"`: text a rename would not reach
        self.nonlocal_or_global: list[ast.stmt] = []
        self.skipped_in: dict[int, _Scope] = {}  # id(def skipped by `relevant`) -> the scope it is bound in
        # Decides whether a top-level def/class needs a full visit; None visits everything.
        self.relevant: Callable[[ast.stmt], bool] | None = None

    def new_scope(self, kind: str, name: str | None, parent: _Scope, node: ast.AST) -> _Scope:
        scope = _Scope(kind, name, parent, node)
        self.made.append(scope)
        return scope

    def release(self) -> None:
        """Break the scope <-> binding cycles once the facts are out: the tree and everything the analysis
        made are then freed by reference counting, not left for the cyclic collector to find (it would
        walk the whole tree to do so, once per file)."""
        for scope in self.made:
            scope.bindings.clear()
            scope.overwrites.clear()
        self.accesses.clear()

    # bindings ---------------------------------------------------------------
    def bind(self, scope: _Scope, name: str, kind: str, node: ast.AST | None) -> _Binding:
        target = scope.target(name)
        binding = _Binding(name, target, kind, node, target.count)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.decorator_list:
            first = node.decorator_list[0]  # LibCST's definition starts at its first decorator
            binding.position = (first.lineno, first.col_offset - 1)
        elif isinstance(node, (ast.stmt, ast.expr, ast.arg, ast.excepthandler, ast.pattern)):
            binding.position = (node.lineno, node.col_offset)
        target.bindings.setdefault(name, []).append(binding)
        return binding

    def bind_target(self, scope: _Scope, target: ast.expr, value: ast.expr | None, parent: ast.AST) -> None:
        """Visit an assignment target: Names are bindings, everything else is visited for its reads."""
        self.parents[id(target)] = parent
        if isinstance(target, ast.Name):
            binding = self.bind(scope, target.id, "store", target)
            binding.value = value
            self.scope_of[id(target)] = scope
            self.names.setdefault(target.id, []).append(target)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self.bind_target(scope, elt, None, target)
        elif isinstance(target, ast.Starred):
            self.bind_target(scope, target.value, None, target)
        else:
            self.visit(target, scope, parent, None)

    def annotation(self, node: ast.expr) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            self.string_annotations.append(node)
        elif isinstance(node, (ast.Subscript, ast.BinOp, ast.Tuple, ast.Attribute)):  # `list["T"]`, `"A" | None`
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.annotation(child)

    # generic ---------------------------------------------------------------
    def visit_many(self, nodes: Sequence[ast.AST | None], scope: _Scope, parent: ast.AST) -> None:
        for n in nodes:
            if n is not None:
                self.visit(n, scope, parent, None)

    def visit(self, node: ast.AST, scope: _Scope, parent: ast.AST | None, top_attr: ast.Attribute | None) -> None:
        self.parents[id(node)] = parent
        t = type(node)
        if t is ast.Name:
            assert isinstance(node, ast.Name)
            self.scope_of[id(node)] = scope
            self.names.setdefault(node.id, []).append(node)
            if isinstance(node.ctx, ast.Store):
                self.bind(scope, node.id, "store", node)
            else:
                if isinstance(node.ctx, ast.Del):
                    scope.target(node.id).deleted.add(node.id)
                self.accesses[id(node)] = _Access(scope, scope.count, top_attr)
            return
        if t is ast.Attribute:
            assert isinstance(node, ast.Attribute)
            self.scope_of[id(node)] = scope
            self.visit(node.value, scope, node, top_attr if top_attr is not None else node)
            return
        if t is ast.Call:
            assert isinstance(node, ast.Call)
            self.scope_of[id(node)] = scope
            self.calls.append(node)
            self.visit(node.func, scope, node, None)
            for a in node.args:
                self.visit(a, scope, node, None)
            for k in node.keywords:
                self.parents[id(k)] = node
                self.visit(k.value, scope, k, None)
            return
        method = _DISPATCH.get(t)
        if method is not None:
            method(self, node, scope)
            return
        if isinstance(node, ast.expr):
            self.scope_of[id(node)] = scope
            if t is ast.Constant:
                return
        # Like LibCST, only a call starts a new attribute chain: `a.b[i].c` is one chain for `a`.
        for child in child_nodes(node):
            self.visit(child, scope, node, top_attr)

    # statements --------------------------------------------------------------
    def v_module(self, node: ast.Module, scope: _Scope) -> None:
        relevant = self.relevant
        for stmt in node.body:
            if relevant is not None and isinstance(stmt, _SKIPPABLE) and not relevant(stmt):
                self.shallow_definition(stmt, scope, node)
            else:
                self.visit(stmt, scope, node, None)

    def shallow_definition(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, scope: _Scope, parent: ast.AST
    ) -> None:
        """A top-level def/class, or a method of a top-level class, that cannot contain a mask-API call:
        only the name it binds matters (it may still be passed as a mask function elsewhere), exactly as a
        full visit would bind it. `skipped_in` keeps the scope to visit its body in should that be needed."""
        self.parents[id(node)] = parent
        self.bind(scope, node.name, "class" if isinstance(node, ast.ClassDef) else "def", node)
        self.skipped_in[id(node)] = scope
        scope.count += 1

    def skipped_body(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        """Visit, after all, the body of a def the relevance filter skipped (a mask function or factory)."""
        self.function_body(node, self.skipped_in.get(id(node), self.module))

    def v_function(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        self.bind(scope, node.name, "def", node)
        self.function_body(node, scope)
        self.visit_many(node.decorator_list, scope, node)
        if node.returns is not None:
            self.annotation(node.returns)
            self.visit(node.returns, scope, node, None)
        scope.count += 1

    def function_body(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: _Scope) -> None:
        """The def's own scope: parameters and body (also used to visit a skipped top-level def later)."""
        inner = self.new_scope("function", node.name, scope, node)
        self.function_scope[id(node)] = inner
        self.visit_arguments(node.args, inner, scope, node)
        self.visit_many(node.body, inner, node)

    def v_lambda(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, ast.Lambda)
        self.scope_of[id(node)] = scope
        inner = self.new_scope("function", None, scope, node)
        self.function_scope[id(node)] = inner
        self.visit_arguments(node.args, inner, scope, node)
        self.visit(node.body, inner, node, None)

    def visit_arguments(self, args: ast.arguments, inner: _Scope, outer: _Scope, owner: ast.AST) -> None:
        self.parents[id(args)] = owner
        positional = [*args.posonlyargs, *args.args]
        defaults: dict[int, ast.expr] = {}
        for i, d in enumerate(args.defaults):
            defaults[id(positional[len(positional) - len(args.defaults) + i])] = d
        for i, kw in enumerate(args.kwonlyargs):
            kd = args.kw_defaults[i]
            if kd is not None:
                defaults[id(kw)] = kd
        ordered = [*positional]
        if args.vararg is not None:
            ordered.append(args.vararg)
        ordered.extend(args.kwonlyargs)
        if args.kwarg is not None:
            ordered.append(args.kwarg)
        for a in ordered:
            self.parents[id(a)] = args
            self.bind(inner, a.arg, "param", a)
            default = defaults.get(id(a))
            if default is not None:
                self.visit(default, outer, a, None)
            if a.annotation is not None:
                self.annotation(a.annotation)
                self.visit(a.annotation, outer, a, None)
        inner.count += 1

    def v_class(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, ast.ClassDef)
        self.bind(scope, node.name, "class", node)
        self.visit_many(node.decorator_list, scope, node)
        self.visit_many(node.bases, scope, node)
        for k in node.keywords:
            self.parents[id(k)] = node
            self.visit(k.value, scope, k, None)
        inner = self.new_scope("class", node.name, scope, node)
        # The methods of a top-level class go through the same filter as top-level defs: a method's body
        # sees no class-level name, so one that spells nothing relevant cannot reach a mask API either.
        relevant = self.relevant if isinstance(self.parents.get(id(node)), ast.Module) else None
        for stmt in node.body:
            if relevant is not None and isinstance(stmt, _FUNCTIONS) and not relevant(stmt):
                self.shallow_definition(stmt, inner, node)
            else:
                self.visit(stmt, inner, node, None)
        scope.count += 1

    def v_import(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names:
            if alias.name == "*":
                continue
            if alias.asname:
                names = [alias.asname]
            else:
                parts = alias.name.split(".")
                names = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
            for name in names:
                binding = self.bind(scope, name, "import", node)
                binding.alias = alias
            if alias.asname:
                scope.count += 1
        scope.count += 1

    def v_assign(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, ast.Assign)
        for target in node.targets:
            self.bind_target(scope, target, node.value, node)
        self.visit(node.value, scope, node, None)
        scope.count += 1

    def v_annassign(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, ast.AnnAssign)
        self.bind_target(scope, node.target, node.value, node)
        self.annotation(node.annotation)
        self.visit(node.annotation, scope, node, None)
        if node.value is not None:
            self.visit(node.value, scope, node, None)
        scope.count += 1

    def v_augassign(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, ast.AugAssign)
        if isinstance(node.target, ast.Name):
            self.parents[id(node.target)] = node
            self.scope_of[id(node.target)] = scope
            self.names.setdefault(node.target.id, []).append(node.target)
            self.bind(scope, node.target.id, "other", node.target)
        else:
            self.visit(node.target, scope, node, None)
        self.visit(node.value, scope, node, None)
        scope.count += 1

    def v_namedexpr(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, ast.NamedExpr)
        self.scope_of[id(node)] = scope
        self.bind_target(scope, node.target, node.value, node)
        self.visit(node.value, scope, node, None)
        scope.count += 1

    def v_for(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, (ast.For, ast.AsyncFor))
        self.bind_target(scope, node.target, None, node)
        scope.count += 1
        self.visit(node.iter, scope, node, None)
        self.visit_many(node.body, scope, node)
        self.visit_many(node.orelse, scope, node)

    def v_with(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, (ast.With, ast.AsyncWith))
        for item in node.items:
            self.parents[id(item)] = node
            self.visit(item.context_expr, scope, item, None)
            if item.optional_vars is not None:
                self.bind_target(scope, item.optional_vars, None, item)
                scope.count += 1
            scope.count += 1
        self.visit_many(node.body, scope, node)

    def v_handler(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, ast.ExceptHandler)
        if node.type is not None:
            self.visit(node.type, scope, node, None)
        if node.name:
            self.bind(scope, node.name, "other", node)
            scope.count += 1
        self.visit_many(node.body, scope, node)

    def v_global(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, (ast.Global, ast.Nonlocal))
        self.nonlocal_or_global.append(node)
        for name in node.names:
            if isinstance(node, ast.Global):
                if scope.kind != "module":
                    scope.overwrites[name] = self.module
            elif scope.parent is not None and scope.kind != "module":
                scope.overwrites[name] = scope.parent
        scope.count += 1

    def v_comprehension(self, node: ast.AST, scope: _Scope) -> None:
        assert isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
        self.scope_of[id(node)] = scope
        generators = node.generators
        first = generators[0]
        self.parents[id(first)] = node
        self.visit(first.iter, scope, first, None)
        inner = self.new_scope("comprehension", None, scope, node)
        self.function_scope[id(node)] = inner
        self.bind_target(inner, first.target, None, first)
        inner.count += 1
        self.visit_many(first.ifs, inner, first)
        self._inner_generators(generators, 1, inner, node)
        if isinstance(node, ast.DictComp):
            self.visit(node.key, inner, node, None)
            self.visit(node.value, inner, node, None)
        else:
            self.visit(node.elt, inner, node, None)

    def _inner_generators(self, generators: list[ast.comprehension], i: int, scope: _Scope, owner: ast.AST) -> None:
        if i >= len(generators):
            return
        gen = generators[i]
        self.parents[id(gen)] = owner
        self.bind_target(scope, gen.target, None, gen)
        self.visit(gen.iter, scope, gen, None)
        self.visit_many(gen.ifs, scope, gen)
        self._inner_generators(generators, i + 1, scope, owner)
        scope.count += 1  # LibCST's CompFor counts when it is left, after the inner ones

    def v_match_binding(self, node: ast.AST, scope: _Scope) -> None:
        name = getattr(node, "name", None) or getattr(node, "rest", None)
        for child in ast.iter_child_nodes(node):
            self.visit(child, scope, node, None)
        if isinstance(name, str):
            self.bind(scope, name, "other", node)


_DISPATCH: dict[type[ast.AST], Any] = {
    ast.Module: _ScopeBuilder.v_module,
    ast.FunctionDef: _ScopeBuilder.v_function,
    ast.AsyncFunctionDef: _ScopeBuilder.v_function,
    ast.Lambda: _ScopeBuilder.v_lambda,
    ast.ClassDef: _ScopeBuilder.v_class,
    ast.Import: _ScopeBuilder.v_import,
    ast.ImportFrom: _ScopeBuilder.v_import,
    ast.Assign: _ScopeBuilder.v_assign,
    ast.AnnAssign: _ScopeBuilder.v_annassign,
    ast.AugAssign: _ScopeBuilder.v_augassign,
    ast.NamedExpr: _ScopeBuilder.v_namedexpr,
    ast.For: _ScopeBuilder.v_for,
    ast.AsyncFor: _ScopeBuilder.v_for,
    ast.With: _ScopeBuilder.v_with,
    ast.AsyncWith: _ScopeBuilder.v_with,
    ast.ExceptHandler: _ScopeBuilder.v_handler,
    ast.Global: _ScopeBuilder.v_global,
    ast.Nonlocal: _ScopeBuilder.v_global,
    ast.ListComp: _ScopeBuilder.v_comprehension,
    ast.SetComp: _ScopeBuilder.v_comprehension,
    ast.DictComp: _ScopeBuilder.v_comprehension,
    ast.GeneratorExp: _ScopeBuilder.v_comprehension,
    ast.MatchAs: _ScopeBuilder.v_match_binding,
    ast.MatchStar: _ScopeBuilder.v_match_binding,
    ast.MatchMapping: _ScopeBuilder.v_match_binding,
}


# --------------------------------------------------------------------------- positions
class _Positions:
    """Turns ast positions (UTF-8 byte columns) into LibCST's spans (character columns)."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Only \n, \r\n and \r end lines for Python (str.splitlines also splits on form feeds).
        self.lines = io.StringIO(text, newline="").readlines()

    def char_col(self, line: int, byte_col: int) -> int:
        if line - 1 >= len(self.lines):
            return byte_col
        src = self.lines[line - 1]
        if src.isascii():
            return byte_col
        return len(src.encode("utf-8")[:byte_col].decode("utf-8", errors="replace"))

    def start(self, node: ast.AST) -> tuple[int, int]:
        return node.lineno, self.char_col(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> tuple[int, int]:
        line = node.end_lineno  # type: ignore[attr-defined]
        return line, self.char_col(line, node.end_col_offset)  # type: ignore[attr-defined]

    def text_between(self, start: tuple[int, int], end: tuple[int, int]) -> str:
        """The source text from `start` to `end` (1-based lines, 0-based character columns)."""
        (l1, c1), (l2, c2) = start, end
        if l1 == l2:
            return self.lines[l1 - 1][c1:c2]
        return self.lines[l1 - 1][c1:] + "".join(self.lines[l1 : l2 - 1]) + self.lines[l2 - 1][:c2]

    def segment(self, node: ast.AST) -> str:
        """The node's source text (without its enclosing parentheses, as `ast` positions go)."""
        return self.text_between(self.start(node), self.end(node))

    def span(self, node: ast.AST) -> Span:
        """Like LibCST's PositionProvider, and like `ast`, a span excludes the expression's parentheses."""
        (l1, c1), (l2, c2) = self.start(node), self.end(node)
        return Span(l1, c1 + 1, l2, c2 + 1)

    def name_span(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Span:
        line, col = self.start(node)
        i, text = line - 1, self.lines
        pos = col
        for keyword in ("async", "def") if isinstance(node, ast.AsyncFunctionDef) else ("def",):
            i, pos = self._skip_space(i, pos)
            pos += len(keyword)
        i, pos = self._skip_space(i, pos)
        return (
            Span(i + 1, pos + 1, i + 1, pos + 1 + len(node.name))
            if i < len(text)
            else Span(line, col + 1, line, col + 1)
        )

    def _skip_space(self, i: int, pos: int) -> tuple[int, int]:
        while i < len(self.lines):
            src = self.lines[i]
            while pos < len(src) and src[pos] in " \t\f":
                pos += 1
            if src.startswith("\\", pos):  # explicit line continuation
                i, pos = i + 1, 0
                continue
            return i, pos
        return i, pos


# --------------------------------------------------------------------------- the analysis
class _ResolvedApi:
    __slots__ = ("api", "direct", "helper", "mask_bound", "offset")

    def __init__(
        self,
        api: MaskApi,
        offset: int = 0,
        mask_bound: bool = False,
        helper: _PassThrough | None = None,
        direct: bool = False,
    ) -> None:
        self.api = api
        self.offset = offset
        self.mask_bound = mask_bound
        self.helper = helper
        self.direct = direct  # the callee itself names the API (no wrapper, alias variable or partial)


def _resolution_key(resolved: _ResolvedApi) -> tuple[str, int, bool, str]:
    helper = resolved.helper.name if resolved.helper is not None else ""
    return resolved.api.qualified_name, resolved.offset, resolved.mask_bound, helper


class _PassThrough:
    """A module-level function that passes one of its parameters on as an API's mask function:
    `def make(mask_mod, n): return create_block_mask(mask_mod, None, None, n, n)`. Calls of it are
    checked as calls of the API, with the arguments of the call inside it."""

    __slots__ = ("api", "inner", "name")

    def __init__(self, name: str, api: MaskApi, inner: MaskUse) -> None:
        self.name = name
        self.api = api
        self.inner = inner


class _Arg:
    """A call argument in source order, like LibCST's `cst.Arg`."""

    __slots__ = ("keyword", "star", "value")

    def __init__(self, value: ast.expr, keyword: str | None, star: str) -> None:
        self.value = value
        self.keyword = keyword
        self.star = star


def _call_args(call: ast.Call) -> list[_Arg]:
    items: list[tuple[tuple[int, int], _Arg]] = []
    for a in call.args:
        if isinstance(a, ast.Starred):
            items.append(((a.lineno, a.col_offset), _Arg(a.value, None, "*")))
        else:
            items.append(((a.lineno, a.col_offset), _Arg(a, None, "")))
    for k in call.keywords:
        items.append(((k.lineno, k.col_offset), _Arg(k.value, k.arg, "" if k.arg else "**")))
    items.sort(key=lambda item: item[0])
    return [a for _, a in items]


class FastAnalyzer:
    def __init__(
        self, tree: ast.Module, text: str, apis: ApiTable, helpers: dict[str, _PassThrough] | None = None
    ) -> None:
        self.tree = tree
        self.text = text
        self.apis = apis
        self.positions = _Positions(text)
        self.scopes = _ScopeBuilder()
        self.helpers = helpers or {}
        self.spellings = apis.spellings() | frozenset(self.helpers)
        self.scopes.relevant = _RelevanceFilter(tree, self.positions.lines, self.spellings)
        self.scopes.visit(tree, self.scopes.module, None, None)
        self.future_annotations = has_future_annotations(tree)
        self._functions: dict[int, MaskFunction] = {}
        self._body_walks: dict[int, list[ast.AST]] = {}  # id(def / lambda) -> _body_nodes, the tree lives as long
        self._top_indices: dict[int, int] | None = None
        self._module_summary: ModuleSummary | None = None  # hoist_safety's module-wide facts, once

    def analyze(self) -> ModuleFacts:
        facts = ModuleFacts()
        spellings = self.spellings
        for call in list(self.scopes.calls):  # resolving a factory may visit more code, adding calls
            func = call.func
            # An attribute callee's qualified name ends with its attribute: only an API's own name
            # (or `partial`, for partial(create_block_mask, mask)) can resolve to something we check.
            if isinstance(func, ast.Attribute) and func.attr not in spellings and func.attr != "partial":
                continue
            resolved_apis = self._resolve_callable(func, set())
            attention = next((r for r in resolved_apis if r.api.qualified_name == FLEX_ATTENTION), None)
            if attention is not None and attention.offset == 0 and attention.helper is None:
                facts.attention_calls.append(self._attention_call(call))
            args = _call_args(call)
            for resolved in resolved_apis:
                use = self._mask_use(call, args, resolved)
                if use is not None:
                    facts.uses.append(use)
                    break
            else:
                use = self._partial_binding_use(call)
                if use is not None:
                    facts.uses.append(use)
        facts.uses.sort(key=lambda u: (u.arg_span, u.api))
        return facts

    def pass_through_helpers(self, facts: ModuleFacts) -> dict[str, _PassThrough]:
        """Module-level functions whose parameter goes, unchanged, to an API as its mask function."""
        helpers: dict[str, _PassThrough] = {}
        for use in facts.uses:
            call = use.call_node
            arg = use.arg_node
            caller = self.enclosing_function(call) if call is not None else None
            if not isinstance(arg, ast.Name) or not isinstance(caller, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if self.parent(caller) is not self.tree or use.via_helper is not None or caller.name in helpers:
                continue
            bindings = self.bindings(arg)
            if len(bindings) != 1 or bindings[0].kind != "param" or bindings[0].scope.node is not caller:
                continue
            params = caller.args
            positional = [*params.posonlyargs, *params.args]
            param = bindings[0].node
            index = next((i for i, p in enumerate(positional) if p is param), None)
            if index is None:
                continue
            keyword = "" if any(p is param for p in params.posonlyargs) else positional[index].arg
            base = self.apis.get(use.api)
            if base is None:
                continue
            api = MaskApi(use.api, index, keyword, base.builds_block_mask, base.role)
            helpers[caller.name] = _PassThrough(caller.name, api, use)
        return helpers

    # ----------------------------------------------------------------- tree helpers
    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.scopes.parents.get(id(node))

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        parents = self.scopes.parents
        current = parents.get(id(node))
        while current is not None:
            yield current
            current = parents.get(id(current))

    def is_descendant(self, node: ast.AST, ancestor: ast.AST) -> bool:
        return node is ancestor or any(a is ancestor for a in self.ancestors(node))

    def enclosing_function(self, node: ast.AST) -> FuncNode | None:
        for anc in self.ancestors(node):
            if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return anc
        return None

    def _outer_functions(self, node: ast.AST) -> tuple[FuncNode, ...] | None:
        """The functions around `node`, outermost first; None when its parents do not reach the module (code
        in a def the relevance filter skipped)."""
        chain = list(self.ancestors(node))
        if not chain or chain[-1] is not self.tree:
            return None
        return tuple(a for a in reversed(chain) if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    def qualname(self, node: ast.AST | None) -> str | None:
        if node is None:
            return None
        parts: list[str] = []
        for n in (node, *self.ancestors(node)):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                parts.append(n.name)
            elif isinstance(n, ast.Lambda):
                parts.append("<lambda>")
        return ".".join(reversed(parts)) or None

    # ----------------------------------------------------------------- names
    def _access(self, name: ast.Name) -> tuple[_Access, str] | None:
        """The access a Name load records, or None when LibCST attributes it to a dotted prefix."""
        access = self.scopes.accesses.get(id(name))
        if access is None:
            return None
        if access.top_attribute is not None:
            for dotted, node in _dotted_names(access.top_attribute):
                if access.scope.contains(dotted):
                    return (access, dotted) if node is name else None
        return access, name.id

    def _attribute_access(self, node: ast.Attribute) -> tuple[_Access, str] | None:
        base: ast.expr = node
        while isinstance(base, ast.Attribute):
            base = base.value.func if isinstance(base.value, ast.Call) else base.value
        if not isinstance(base, ast.Name):
            return None
        access = self.scopes.accesses.get(id(base))
        if access is None or access.top_attribute is None:
            return None
        for dotted, found in _dotted_names(access.top_attribute):
            if access.scope.contains(dotted):
                return (access, dotted) if found is node else None
        return None

    def bindings(self, name: ast.Name) -> list[_Binding]:
        found = self._access(name)
        if found is None:
            return []
        access, key = found
        return sorted(access.referents(key), key=lambda b: b.position)

    def qualified_names(self, node: ast.AST) -> set[str]:
        found: tuple[_Access, str] | None = None
        if isinstance(node, ast.Name):
            found = self._access(node)
        elif isinstance(node, ast.Attribute):
            found = self._attribute_access(node)
        if found is not None:
            access, key = found
            return {q for b in access.referents(key) for q in b.qualified_names(b.name)}
        full = _full_name(node)
        scope = self.scopes.scope_of.get(id(node))
        if full is None or scope is None:
            return set()
        prefix: str | None = full
        assignments: list[_Binding] = []
        while prefix:
            if scope.contains(prefix):
                assignments = scope.resolve(prefix)
                break
            idx = prefix.rfind(".")
            prefix = None if idx == -1 else prefix[:idx]
        if isinstance(node, ast.Name):
            for b in assignments:
                if b.node is node:
                    return b.qualified_names(full)
        return {q for b in assignments for q in b.qualified_names(full)}

    # ----------------------------------------------------------------- callee resolution
    def _resolve_callable(self, expr: ast.expr, seen: set[int]) -> list[_ResolvedApi]:
        if id(expr) in seen:
            return []
        seen.add(id(expr))
        if isinstance(expr, ast.Name) and len(bindings := self.bindings(expr)) > 1:
            return self._resolve_bindings(bindings, seen)
        if isinstance(expr, (ast.Name, ast.Attribute)):
            qualified = sorted(self.qualified_names(expr))
            found = [_ResolvedApi(api, direct=True) for q in qualified if (api := self.apis.get(q))]
            found += [_ResolvedApi(h.api, helper=h) for q in qualified if (h := self.helpers.get(q))]
            if found:
                return found
            if isinstance(expr, ast.Name):
                for binding in self.bindings(expr):
                    value = binding.value if binding.kind == "store" else None
                    if isinstance(value, ast.Call):
                        found.extend(self._resolve_wrapper_call(value, seen))
                    elif isinstance(value, (ast.Name, ast.Attribute)):
                        found.extend(self._resolve_callable(value, seen))  # `cbm2 = cbm`
            return found
        if isinstance(expr, ast.Call):
            return self._resolve_wrapper_call(expr, seen)
        return []

    def _resolve_bindings(self, bindings: list[_Binding], seen: set[int]) -> list[_ResolvedApi]:
        """A name with several bindings is an API only when each binding that could be called is that same
        API (`flex_attention = torch.compile(flex_attention)`; a `= None` fallback cannot be called): one
        that may be another function (a shim `def flex_attention`, a wrapper) makes it unknown, as Python
        would call whichever ran last."""
        answers: list[list[_ResolvedApi]] = []
        for binding in bindings:
            value = binding.value if binding.kind == "store" else None
            if isinstance(value, ast.Constant) and value.value is None:
                continue
            qualified = sorted(binding.qualified_names(binding.name))
            found = [_ResolvedApi(api, direct=True) for q in qualified if (api := self.apis.get(q))]
            found += [_ResolvedApi(h.api, helper=h) for q in qualified if (h := self.helpers.get(q))]
            if not found and isinstance(value, ast.Call):
                found = self._resolve_wrapper_call(value, set(seen))  # each binding resolved on its own
            elif not found and isinstance(value, (ast.Name, ast.Attribute)):
                found = self._resolve_callable(value, set(seen))  # `cbm2 = cbm`
            answers.append(found)
        keys = {tuple(sorted(_resolution_key(r) for r in found)) for found in answers}
        return answers[0] if len(keys) == 1 and answers else []

    def _resolve_wrapper_call(self, call: ast.Call, seen: set[int]) -> list[_ResolvedApi]:
        names = self.qualified_names(call.func)
        args = _call_args(call)
        if not args or args[0].keyword is not None or args[0].star:
            return []
        inner = args[0].value
        if names & TRANSPARENT_WRAPPERS:
            return self._resolve_callable(inner, seen)
        if PARTIAL in names:
            bound = args[1:]
            if any(a.star for a in bound):
                return []
            n_positional = sum(1 for a in bound if a.keyword is None)
            keywords = {a.keyword for a in bound if a.keyword is not None}
            result = []
            for r in self._resolve_callable(inner, seen):
                offset = r.offset + n_positional
                mask_bound = (
                    r.mask_bound
                    or r.api.mask_keyword in keywords
                    or (r.api.mask_position is not None and r.api.mask_position < offset)
                )
                result.append(_ResolvedApi(r.api, offset, mask_bound))
            return result
        return []

    # ----------------------------------------------------------------- mask arguments
    @staticmethod
    def _mask_argument(args: Sequence[_Arg], resolved: _ResolvedApi) -> _Arg | None:
        if resolved.mask_bound:
            return None
        api = resolved.api
        for arg in args:
            if arg.keyword is not None and arg.keyword == api.mask_keyword:
                return arg
        if api.mask_position is None:
            return None
        index = api.mask_position - resolved.offset
        positionals: list[_Arg] = []
        for arg in args:
            if arg.keyword is not None or arg.star:
                break  # positions after `*args` are unknown; those before it are not
            positionals.append(arg)
        return positionals[index] if 0 <= index < len(positionals) else None

    def _partial_binding_use(self, call: ast.Call) -> MaskUse | None:
        if PARTIAL not in self.qualified_names(call.func):
            return None
        args = _call_args(call)
        if not args or args[0].keyword is not None or args[0].star:
            return None
        for resolved in self._resolve_callable(args[0].value, set()):
            arg = self._mask_argument(args[1:], resolved)
            if arg is not None:
                return self._build_use(call, arg, resolved.api, bind=False)
        return None

    def _mask_use(self, call: ast.Call, args: list[_Arg], resolved: _ResolvedApi) -> MaskUse | None:
        arg = self._mask_argument(args, resolved)
        if arg is None:
            return None
        use = self._build_use(call, arg, resolved.api, bind=resolved.offset == 0 and not resolved.mask_bound)
        if resolved.helper is not None:
            inner = resolved.helper.inner
            use.via_helper = resolved.helper.name
            use.arguments = dict(inner.arguments)
            use.torch_in_scope = False  # the arguments are inside the helper: no fix rewrites them from here
        use.callee_is_api = resolved.direct and resolved.helper is None
        return use

    def _build_use(self, call: ast.Call, arg: _Arg, api: MaskApi, bind: bool) -> MaskUse:
        functions, all_known = self._resolve_mask_expr(arg.value, set())
        caller = self.enclosing_function(call)
        # Functions returned by factory calls are new: ESP005 keeps judging what it judged before them.
        capture_free = (
            all_known
            and all(f.factory is None for f in functions)
            and all(not f.captures and not f.default_refs for f in functions)
        )
        per_forward = api.builds_block_mask and self._runs_every_forward(call, caller)
        # Only ESP010's fix reads whether `torch` and the callee are stable: asked only where it applies.
        compile_flag = any(k.arg == "_compile" for k in call.keywords)
        for f in functions:
            if f.site is not None and f.site.form is HoistForm.INLINE_LAMBDA:
                f.site.role = api.role  # names it: `..._score_mod` for a lambda passed as `score_mod`
        return MaskUse(
            api=api.qualified_name,
            arg_span=self.positions.span(arg.value),
            call_span=self.positions.span(call),
            functions=functions,
            caller=self.qualname(caller),
            per_forward=per_forward,
            mask_is_capture_free=capture_free,
            arg_node=arg.value,
            role=api.role,
            functions_known=all_known,
            arguments=self._bind_arguments(call, api) if bind else {},
            callee_span=self.positions.span(call.func),
            torch_in_scope=compile_flag and self._torch_in_scope(call),
            call_node=call,
            result_only_attended=api.builds_block_mask and self._only_attended(call),
            callee_stable=compile_flag and self._stable_callee(call, api.qualified_name),
        )

    # ----------------------------------------------------------------- call-site facts (ESP007-ESP016)
    def _is_block_mask_slot(self, value: ast.expr) -> bool:
        """`value` is passed as `block_mask` (keyword, or 5th positional) to a `flex_attention` call."""
        parent = self.parent(value)
        if isinstance(parent, ast.keyword):
            call = self.parent(parent)
            if parent.arg != "block_mask" or not isinstance(call, ast.Call):
                return False
        elif isinstance(parent, ast.Call):
            call = parent
            if any(isinstance(a, ast.Starred) for a in call.args) or value not in call.args:
                return False
            if call.args.index(value) != FLEX_ATTENTION_PARAMETERS.index("block_mask"):
                return False
        else:
            return False
        return any(r.api.qualified_name == FLEX_ATTENTION for r in self._resolve_callable(call.func, set()))

    def _only_attended(self, call: ast.Call) -> bool:
        if self._is_block_mask_slot(call):
            return True
        assign = self.parent(call)
        function = self.enclosing_function(call)
        if (
            not isinstance(assign, ast.Assign)
            or len(assign.targets) != 1
            or not isinstance(assign.targets[0], ast.Name)
            or not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        ):
            return False
        target = assign.targets[0]
        # Every Name the walk visited is indexed by identifier: only those inside `function` can read it.
        reads = [
            n
            for n in self.scopes.names.get(target.id, ())
            if isinstance(n.ctx, ast.Load)
            and any(b.node is target for b in self.bindings(n))
            and self.is_descendant(n, function)
        ]
        return all(self._is_block_mask_slot(n) for n in reads)

    def _bind_arguments(self, call: ast.Call, api: MaskApi) -> dict[str, CallArgument]:
        """The call's arguments by parameter name; positions after `*args` and anything with `**` unknown."""
        if not api.parameters:
            return {}
        items = call_sites.argument_items(call)
        if any(star == "**" for _, star in items):
            return {}
        bound: dict[str, CallArgument] = {}
        positional = 0
        star_seen = False
        for i, (node, star) in enumerate(items):
            if star == "*":
                star_seen = True
                continue
            if isinstance(node, ast.keyword):
                assert node.arg is not None
                removal = call_sites.removal_span(self.positions, items, i)
                bound[node.arg] = CallArgument(
                    node.arg, self.positions.span(node.value), self.positions.span(node), removal, node.value
                )
            elif not star_seen and positional < len(api.parameters):
                name = api.parameters[positional]
                bound[name] = CallArgument(name, self.positions.span(node), None, None, node)
                positional += 1
        return bound

    def _torch_in_scope(self, call: ast.Call) -> bool:
        """`torch` at this call is certainly the torch module: it reads module level, where `import torch`
        binds it once, before the call's top-level statement, and nothing rebinds it (name_stability.py)."""
        scope = self.scopes.scope_of.get(id(call))
        if scope is None:
            return False
        found = scope.resolve("torch")
        if len(found) != 1 or found[0].scope is not self.scopes.module:
            return False
        return name_stability.stable_import(self.tree, "torch", "torch", self._top_index(call), self._summary())

    def _stable_callee(self, call: ast.Call, qualified: str) -> bool:
        """The callee is a name that is certainly `qualified` where it is called: it reads module level, where
        one import binds it, before the call's top-level statement, and nothing rebinds it (name_stability.py).
        A fix that relies on what the call does (ESP010, ESP013) needs this; findings do not."""
        chain: list[str] = []
        base: ast.expr = call.func
        while isinstance(base, ast.Attribute):  # `fa.create_block_mask`
            chain.insert(0, base.attr)
            base = base.value
        if not isinstance(base, ast.Name):
            return False
        found = self.bindings(base)
        if len(found) != 1 or found[0].scope is not self.scopes.module:
            return False
        top, summary = self._top_index(call), self._summary()
        # The fix keeps the callee where it is read: unbound, it raises the same NameError before and after.
        if chain:
            return name_stability.stable_attribute(self.tree, [base.id, *chain], qualified, top, summary, ran=False)
        return name_stability.stable_import(self.tree, base.id, qualified, top, summary, ran=False)

    def _summary(self) -> ModuleSummary:
        if self._module_summary is None:
            self._module_summary = module_summary(self.tree, self.positions.text)
        return self._module_summary

    def _is_block_mask(self, expr: ast.expr, seen: set[int]) -> bool:
        """A value built by `create_block_mask` & co. in this module (a call, or a name bound only to one)."""
        if id(expr) in seen:
            return False
        seen.add(id(expr))
        if isinstance(expr, ast.Call):
            ambiguous = isinstance(expr.func, ast.Name) and len(self.bindings(expr.func)) > 1
            if not ambiguous and self.qualified_names(expr.func) & BLOCK_MASK_CONSTRUCTORS:
                return True
            resolved = self._resolve_callable(expr.func, set())  # several bindings: each must be one
            return any(r.api.qualified_name in BLOCK_MASK_CONSTRUCTORS for r in resolved)
        if isinstance(expr, ast.Name):
            bindings = self.bindings(expr)
            return bool(bindings) and all(
                b.kind == "store" and b.value is not None and self._is_block_mask(b.value, seen) for b in bindings
            )
        return False

    def _attention_call(self, call: ast.Call) -> AttentionCall:
        args = self._bind_arguments(call, self.apis.get(FLEX_ATTENTION) or _FLEX_FALLBACK)
        score_mod = args.get("score_mod")
        block_mask = args.get("block_mask")
        is_block_mask = score_mod is not None and self._is_block_mask(score_mod.node, set())
        items = call_sites.argument_items(call)
        positional = [n for n, star in items if not star and not isinstance(n, ast.keyword)]
        to_keyword = (
            is_block_mask
            and self._stable_callee(call, FLEX_ATTENTION)
            and score_mod is not None
            and score_mod.keyword_span is None
            and block_mask is None
            and not any(star for _, star in items)
            and positional[-1] is score_mod.node
        )
        functions: list[MaskFunction] = []
        if block_mask is not None:
            found, known = self._resolve_mask_expr(block_mask.node, set())
            functions = found if known else []
        return AttentionCall(
            call_span=self.positions.span(call),
            callee_span=self.positions.span(call.func),
            score_mod=score_mod,
            score_mod_is_block_mask=is_block_mask,
            score_mod_to_keyword=to_keyword,
            block_mask=block_mask,
            block_mask_functions=functions,
            compiled=self._may_be_compiled(call),
            call_node=call,
        )

    def _may_be_compiled(self, call: ast.Call) -> bool | None:
        """True: called through `torch.compile`; None: something in the module compiles; False: nothing does."""
        for wrapper in self._wrappers_of(call.func, set()):
            if wrapper == "torch.compile":
                return True
        return None if call_sites.mentions_compilation(self.text) else False

    def _wrappers_of(self, expr: ast.expr, seen: set[int]) -> Iterator[str]:
        if id(expr) in seen:
            return
        seen.add(id(expr))
        if isinstance(expr, ast.Call):
            yield from self.qualified_names(expr.func) & TRANSPARENT_WRAPPERS
            if expr.args:
                yield from self._wrappers_of(expr.args[0], seen)
        elif isinstance(expr, ast.Name):
            for binding in self.bindings(expr):
                if binding.kind == "store" and binding.value is not None:
                    yield from self._wrappers_of(binding.value, seen)

    def _resolve_mask_expr(self, expr: ast.expr, seen: set[int]) -> tuple[list[MaskFunction], bool]:
        if id(expr) in seen:
            return [], False
        seen.add(id(expr))
        if isinstance(expr, ast.Lambda):
            return [self._mask_function(expr, "<lambda>")], True
        if isinstance(expr, ast.NamedExpr):  # `create_mask(fn := lambda ..., ...)`
            return self._resolve_mask_expr(expr.value, seen)
        if isinstance(expr, ast.Call) and self.qualified_names(expr.func) & MASK_COMBINATORS:
            functions: list[MaskFunction] = []
            known = True
            for a in _call_args(expr):
                if a.star or a.keyword is not None:
                    known = False
                    continue
                fs, k = self._resolve_mask_expr(a.value, seen)
                functions.extend(fs)
                known = known and k
            return functions, known
        if isinstance(expr, ast.Call):
            return self._factory_results(expr, seen)
        if isinstance(expr, ast.IfExp):  # `m1 if flag else m2`: either may be passed
            body, body_known = self._resolve_mask_expr(expr.body, seen)
            orelse, orelse_known = self._resolve_mask_expr(expr.orelse, seen)
            return body + orelse, body_known and orelse_known
        if isinstance(expr, ast.Attribute):
            return [], bool(self._imported_names(expr))
        if not isinstance(expr, ast.Name):
            return [], False
        functions = []
        known = True
        bindings = [b for b in self.bindings(expr) if self._self_assignment(b) is None]
        if not bindings:
            return [], False
        for binding in bindings:
            node = binding.node
            if binding.kind == "def" and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append(self._mask_function(node, node.name, node))
                continue
            if binding.kind == "import":
                continue
            value = binding.value if binding.kind == "store" else None
            if isinstance(value, ast.Lambda):
                functions.append(self._mask_function(value, expr.id, binding.node))
            elif isinstance(value, (ast.Call, ast.Name, ast.IfExp, ast.Attribute)):
                fs, k = self._resolve_mask_expr(value, seen)
                functions.extend(fs)
                known = known and k
            else:
                known = False
        if len(bindings) > 1:
            for f in functions:
                reason = f"`{expr.id}` is bound more than once in its scope"
                if f.enclosing is not None and reason not in f.unfixable_reasons:
                    f.unfixable_reasons.append(reason)
        return functions, known

    def _factory_results(self, call: ast.Call, seen: set[int]) -> tuple[list[MaskFunction], bool]:
        """What a same-module factory returns: `def padding_factory(n): def padding(...): ...; return padding`."""
        if not isinstance(call.func, ast.Name):
            return [], False
        bindings = self.bindings(call.func)
        if len(bindings) != 1 or bindings[0].kind != "def":
            return [], False
        factory = bindings[0].node
        if not isinstance(factory, (ast.FunctionDef, ast.AsyncFunctionDef)) or factory.decorator_list:
            return [], False
        if id(factory) not in self.scopes.function_scope:  # a def the relevance filter skipped
            self.scopes.skipped_body(factory)
        returns = [r for r in call_sites.own_returns(factory) if r.value is not None]
        if not returns:
            return [], False
        functions: list[MaskFunction] = []
        known = True
        for ret in returns:
            assert ret.value is not None
            found, k = self._resolve_mask_expr(ret.value, seen)
            known = known and k
            for fn in found:
                if fn.enclosing is not None and fn.factory is None and self.qualname(factory) == fn.enclosing:
                    fn.factory = factory.name
                functions.append(fn)
        return functions, known and bool(functions)

    def _imported_names(self, expr: ast.Attribute) -> set[str]:
        base: ast.expr = expr
        while isinstance(base, ast.Attribute):
            base = base.value
        if not isinstance(base, ast.Name):
            return set()
        if not any(b.kind == "import" for b in self.bindings(base)):
            return set()
        return self.qualified_names(expr)

    # ----------------------------------------------------------------- the function itself
    def _mask_function(self, node: FuncNode, name: str, bound: ast.AST | None = None) -> MaskFunction:
        cached = self._functions.get(id(node))
        if cached is not None:
            return cached
        enclosing = self.enclosing_function(node)
        is_def = not isinstance(node, ast.Lambda)
        fn = MaskFunction(
            kind=FunctionKind.DEF if is_def else FunctionKind.LAMBDA,
            name=name,
            span=self.positions.name_span(node) if not isinstance(node, ast.Lambda) else self.positions.span(node),
            enclosing=self.qualname(enclosing),
            ast_node=node,
            module_ast=self.tree,
            positions=self.positions,
            outer_functions=self._outer_functions(node),
            binding_node=bound,
        )
        self._functions[id(node)] = fn
        if not isinstance(node, ast.Lambda) and node.decorator_list:
            fn.replaced_by_decorator = not all(self._leaves_in_place(d, node) for d in node.decorator_list)
        fn_scope = self.scopes.function_scope.get(id(node))
        if fn_scope is None and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # A def the relevance filter skipped: visit its body now, to resolve what it calls.
            self.scopes.skipped_body(node)
            fn.callees = self._local_callees(node)
            return fn  # no loop around it: nothing captured
        fn.callees = self._local_callees(node)
        if fn_scope is None:
            return fn
        if enclosing is None:
            # Module or class level: only a module-level loop around the definition is captured.
            fn.captures = [c for c in self._captures(node, fn_scope) if c.kind is CaptureKind.LOOP]
            return fn
        fn.captures = self._captures(node, fn_scope)
        fn.default_refs = self._enclosing_locals_read(defaults(node))
        fn.definition_time_refs = self._enclosing_locals_read(self._definition_time_roots(node))
        if fn.captures or fn.default_refs:
            return fn  # never hoisted, so why it could not be is never read (rules/mask_functions.py)
        body_nodes = self._body_nodes(node)
        if not isinstance(node, ast.Lambda):
            for stmt_type, word in ((ast.Nonlocal, "nonlocal"), (ast.Global, "global")):
                if any(isinstance(n, stmt_type) for n in body_nodes):
                    fn.unfixable_reasons.append(f"it declares `{word}` names")
        if any(_reads_class_cell(n) for n in body_nodes):
            fn.unfixable_reasons.append(CLASS_CELL_REASON)
        if not isinstance(node, ast.Lambda) and isinstance(self.parent(node), ast.ClassDef):
            fn.unfixable_reasons.append(class_attribute_reason(node.name))
        else:
            fn.site = self._hoist_site(node, fn)
        # The uses the hoist would rename, resolved by Python's scoping above (a class body that binds the
        # name reads another variable); without a hoist site the safety checks find the uses themselves.
        uses = fn.site.reference_nodes if fn.site is not None and fn.site.variable is not None else None
        safety = hoist_reasons(
            node,
            enclosing,
            self.parent,
            self._summary(),
            self._is_mask_argument,
            self.future_annotations,
            uses,
            self._source_lines(enclosing),
        )
        fn.unfixable_reasons.extend(r for r in safety if r not in fn.unfixable_reasons)
        return fn

    def _leaves_in_place(self, decorator: ast.expr, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """The decorator is a function of this module that returns its argument unchanged."""
        if not isinstance(decorator, ast.Name):
            return False
        found = self.bindings(decorator)
        skipped = self.scopes.skipped_in.get(id(node))  # a def the relevance filter skipped: never walked
        if not found and skipped is not None:
            found = skipped.resolve(decorator.id)
        target = found[0].node if len(found) == 1 and found[0].kind == "def" else None
        if not isinstance(target, ast.FunctionDef) or target.decorator_list:
            return False
        return call_sites.returns_its_argument(target)

    def _source_lines(self, node: FuncNode) -> str:
        """The whole lines `node` spans, from its first decorator: every identifier in it is spelled there."""
        decorators = [] if isinstance(node, ast.Lambda) else node.decorator_list
        first = min([node.lineno, *(d.lineno for d in decorators)])
        return "".join(self.positions.lines[first - 1 : node.end_lineno])

    def _is_mask_argument(self, expr: ast.expr) -> bool:
        """Is `expr` passed where a mask API (directly, or bound by `partial`) or a combinator takes a mask?"""
        call = self.parent(expr)
        call = self.parent(call) if isinstance(call, ast.keyword) else call
        if not isinstance(call, ast.Call):
            return False
        args = _call_args(call)
        if self.qualified_names(call.func) & MASK_COMBINATORS:
            return any(a.value is expr and not a.star and a.keyword is None for a in args)
        candidates = [(args, r) for r in self._resolve_callable(call.func, set())]
        if args and not args[0].star and args[0].keyword is None and PARTIAL in self.qualified_names(call.func):
            candidates += [(args[1:], r) for r in self._resolve_callable(args[0].value, set())]
        return any((arg := self._mask_argument(a, r)) is not None and arg.value is expr for a, r in candidates)

    def _local_callees(self, node: FuncNode) -> dict[int, list[MaskFunction]]:
        """The calls in the function's body whose callee name is bound only to defs / lambdas of this module."""
        callees: dict[int, list[MaskFunction]] = {}
        for call in self._body_nodes(node):
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            bindings = [b for b in self.bindings(call.func) if self._self_assignment(b) is None]
            functions: list[MaskFunction] = []
            for binding in bindings:
                target = binding.node if binding.kind == "def" else binding.value
                if binding.kind == "store" and isinstance(target, ast.Lambda):
                    functions.append(self._mask_function(target, call.func.id))
                elif binding.kind == "def" and isinstance(target, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions.append(self._mask_function(target, target.name))
                else:
                    functions = []
                    break
            if functions:
                callees[id(call)] = functions
        return callees

    def _body_nodes(self, node: FuncNode) -> list[ast.AST]:
        """Every node of the function's body (nested functions' too), walked once per analysis."""
        found = self._body_walks.get(id(node))
        if found is None:
            roots: list[ast.AST] = [node.body] if isinstance(node, ast.Lambda) else list(node.body)
            found = self._body_walks[id(node)] = [n for root in roots for n in ast.walk(root)]
        return found

    # ----------------------------------------------------------------- hoist sites (the fixer's facts)
    # Python's own scoping decides here, not LibCST's: a name bound anywhere in a function is local to
    # all of it, class bodies are skipped by the functions nested in them, and a class body that binds
    # a name reads it from the class or from module level, never from the enclosing function.
    def _hoist_site(self, node: FuncNode, fn: MaskFunction) -> HoistSite:
        top = self._top_index(node)
        variable = node.name if not isinstance(node, ast.Lambda) else self._assigned_lambda_variable(node)
        form = HoistForm.DEF if not isinstance(node, ast.Lambda) else HoistForm.INLINE_LAMBDA
        binder: ast.AST | None = node if not isinstance(node, ast.Lambda) else fn.binding_node
        if variable is not None and isinstance(node, ast.Lambda):
            form = HoistForm.ASSIGNED_LAMBDA
        elif isinstance(node, ast.Lambda) and (walrus := self._walrus_target(node)) is not None:
            form, variable, binder = HoistForm.WALRUS_LAMBDA, walrus.id, walrus
        site = HoistSite(top, form, variable)
        named = self.parent(node)
        if form is HoistForm.INLINE_LAMBDA and isinstance(named, ast.NamedExpr) and isinstance(named.target, ast.Name):
            site.walrus = named.target.id
        site.enclosing_def = next(
            (a for a in self.ancestors(node) if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef))), None
        )
        reasons = fn.unfixable_reasons
        readers: list[_Scope] = []
        if variable is None:
            readers.append(self.scopes.scope_of[id(node)])
        else:
            owner = self._binding_scope(node)
            if owner is None:  # a def under an `if` in a class body: still a class attribute
                _add_reason(reasons, class_attribute_reason(variable))
                return site
            readers.append(owner)
            # `mask = mask` rebinds the variable to the value it already has: the fix deletes it.
            bindings = []
            for b in owner.bindings.get(variable, []):
                assign = self._self_assignment(b)
                if assign is None:
                    bindings.append(b)
                else:
                    site.self_assignments.append(assign)
            skipped = {id(n) for a in site.self_assignments for n in (a.targets[0], a.value)}
            if not any(b.node is binder for b in bindings):
                reasons.append(f"`{variable}` is declared `global` or `nonlocal` in the enclosing function")
            elif len(bindings) > 1:
                _add_reason(reasons, f"`{variable}` is bound more than once in its scope")
            if variable in owner.deleted:
                reasons.append(f"`{variable}` is deleted with `del` in the enclosing function")
            if owner.node is not None and self._in_string_annotation(owner.node, variable):
                reasons.append(f"`{variable}` is referenced from a string annotation")
            for name in self.scopes.names.get(variable, ()):
                reader = self.scopes.scope_of.get(id(name))
                # Lexical scoping: whatever resolves to the owner's variable is inside the owner.
                if name is not binder and reader is not None and self._owner(reader, variable) is owner:
                    if id(name) not in skipped:  # deleted with its statement: nothing to rename
                        site.references.append(self.positions.span(name))
                    site.reference_nodes.append(name)  # the read in `mask = mask` is checked all the same
                    readers.append(reader)
        site.shadowing = self._shadowing(readers)
        if variable is not None:
            site.owner = id(readers[0])
        if self._form_feed_indented(top):
            reasons.append(
                "a line of its top-level statement is indented with a form feed, which LibCST (the engine "
                "that rewrites the code) cannot parse"
            )
        late = self._late_module_names(node, top)
        if late:
            listed = ", ".join(f"`{n}`" for n in late)
            reasons.append(
                f"its decorators, defaults or annotations read {listed}, which module level does not bind "
                "(once and for all) before the enclosing top-level statement"
            )
        from_class = self._class_scope_names(node)
        if from_class:
            listed = ", ".join(f"`{n}`" for n in from_class)
            reasons.append(
                f"its decorators, defaults or annotations read {listed}, which the class body around it binds; "
                "at module level they would read another variable"
            )
        if name_stability.star_import_after(self.tree, top):
            reasons.append(
                "a `from ... import *` after the enclosing top-level statement could bind the new module-level "
                "name, and later calls would read what it imports"
            )
        mangled = self._mangled_name(node, variable)
        if mangled:
            reasons.append(mangled)
        return site

    def _form_feed_indented(self, top: int) -> bool:
        """Python accepts a form feed in indentation (it resets the column); LibCST's tokenizer does not."""
        if top < 0 or "\f" not in self.text:
            return False
        stmt = self.tree.body[top]
        decorators = getattr(stmt, "decorator_list", None) or []
        first = min([stmt.lineno, *(d.lineno for d in decorators)])
        lines = self.positions.lines[first - 1 : stmt.end_lineno]
        return any("\f" in line[: len(line) - len(line.lstrip(" \t\f"))] for line in lines)

    def _self_assignment(self, binding: _Binding) -> ast.Assign | None:
        """`mask = mask` alone on its line, in the function whose variable it is: the statement, else None.
        Run after the variable is bound it changes nothing; run before, it fails (the dominance check)."""
        target, value = binding.node, binding.value
        if binding.kind != "store" or not isinstance(target, ast.Name) or not isinstance(value, ast.Name):
            return None
        assign = self.parent(target)
        if not (isinstance(assign, ast.Assign) and assign.targets == [target] and value.id == target.id):
            return None
        scope = self.scopes.scope_of.get(id(target))
        if scope is not binding.scope or scope.kind != "function" or self.scopes.scope_of.get(id(value)) is not scope:
            return None
        return None if self._shares_a_line(assign) else assign

    def _in_string_annotation(self, root: ast.AST, name: str) -> bool:
        """Does a string annotation inside `root` mention `name`? (Renaming would not reach inside it.)"""
        word = re.compile(rf"\b{re.escape(name)}\b")
        first, last = getattr(root, "lineno", 0), getattr(root, "end_lineno", 0)
        return any(
            first <= c.lineno <= last and isinstance(c.value, str) and word.search(c.value)
            for c in self.scopes.string_annotations
        )

    def _top_index(self, node: ast.AST) -> int:
        if self._top_indices is None:
            self._top_indices = {id(stmt): i for i, stmt in enumerate(self.tree.body)}
        current: ast.AST | None = node
        while current is not None and id(current) not in self._top_indices:
            current = self.parent(current)
        return self._top_indices[id(current)] if current is not None else -1

    def _assigned_lambda_variable(self, node: ast.Lambda) -> str | None:
        """`v` for `v = lambda ...` alone on its line(s) in a function body: the statement becomes `def v`."""
        assign = self.parent(node)
        if not (
            isinstance(assign, ast.Assign)
            and assign.value is node
            and len(assign.targets) == 1
            and isinstance(assign.targets[0], ast.Name)
        ):
            return None
        if self._owning_function(assign) is None or self._shares_a_line(assign):
            return None  # at class level it stays an attribute: the lambda is replaced in place
        return assign.targets[0].id

    def _walrus_target(self, node: ast.Lambda) -> ast.Name | None:
        """`fn` for `create_mask(fn := lambda ..., ...)` where the walrus runs whenever its statement does, in
        a function's own body: the fix replaces `fn := lambda ...` by the hoisted def's name (`fn`).
        Anything that may skip it (`a if c else (fn := ...)`, `x or (fn := ...)`, a comprehension, a
        lambda, an `assert`) keeps the inline form, which leaves the walrus in place."""
        named = self.parent(node)
        if not (isinstance(named, ast.NamedExpr) and named.value is node and isinstance(named.target, ast.Name)):
            return None
        child: ast.AST = named
        parent = self.parent(named)
        while isinstance(parent, (ast.expr, ast.keyword)):
            skippable = (
                isinstance(parent, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
                or (isinstance(parent, ast.IfExp) and child is not parent.test)
                or (isinstance(parent, ast.BoolOp) and child is not parent.values[0])
            )
            if skippable:
                return None
            child, parent = parent, self.parent(parent)
        if not isinstance(parent, ast.stmt) or isinstance(parent, (ast.Assert, ast.ClassDef, *_FUNCTIONS)):
            return None  # in a decorator, default or annotation; or an `assert` (skipped under -O)
        owner = self._owning_function(parent)
        scope = self.scopes.function_scope.get(id(owner)) if isinstance(owner, _FUNCTIONS) else None
        if scope is None or self.scopes.scope_of.get(id(named.target)) is not scope:
            return None
        return named.target

    def _owning_function(self, node: ast.AST) -> FuncNode | None:
        """The function whose body `node` is in; None at module level or directly in a class body."""
        for anc in self.ancestors(node):
            if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return anc
            if isinstance(anc, ast.ClassDef):
                return None
        return None

    def _shares_a_line(self, stmt: ast.stmt) -> bool:
        """`a = 1; v = lambda ...`: another statement on the same physical lines (one LibCST line)."""
        parent = self.parent(stmt)
        for field_name in ("body", "orelse", "finalbody"):
            block = getattr(parent, field_name, None)
            if isinstance(block, list) and any(s is stmt for s in block):
                for other in block:
                    if (
                        other is not stmt
                        and other.lineno <= (stmt.end_lineno or stmt.lineno)
                        and ((other.end_lineno or other.lineno) >= stmt.lineno)
                    ):
                        return True
        return False

    def _binding_scope(self, node: FuncNode) -> _Scope | None:
        """The scope a def (or the `v = lambda` statement) binds its variable in: the enclosing function's."""
        owner = self._owning_function(node if not isinstance(node, ast.Lambda) else self.parent(node) or node)
        return self.scopes.function_scope[id(owner)] if owner is not None else None

    def _owner(self, scope: _Scope, name: str) -> _Scope | None:
        """The scope whose variable `name` is when used in `scope`, as CPython's compiler decides;
        None for module level (a global or builtin)."""
        current: _Scope | None = scope
        first = True
        while current is not None and current.kind not in ("module", "builtins"):
            if first or current.kind != "class":  # enclosing class bodies are not on the lookup path
                declared = current.overwrites.get(name)
                if declared is not None and declared.kind == "module":
                    return None  # `global name`
                if declared is None and (name in current.bindings or name in current.deleted):
                    return current
            first = False
            current = current.parent
        return None

    def _shadowing(self, readers: list[_Scope]) -> dict[str, frozenset[int]]:
        """Names the scopes on the readers' lookup paths bind, each with those scopes' identities."""
        found: dict[str, set[int]] = {}
        for reader in readers:
            current: _Scope | None = reader
            first = True
            while current is not None and current.kind not in ("module", "builtins"):
                if first or current.kind != "class":
                    for name in (*current.bindings, *current.deleted):
                        found.setdefault(name, set()).add(id(current))
                first = False
                current = current.parent
        return {name: frozenset(scopes) for name, scopes in found.items()}

    def _class_scope_names(self, node: FuncNode) -> list[str]:
        """Names its decorators, defaults or annotations read from the class body they run in (`w=W` in a
        lambda evaluated in `class Config: W = 100`): hoisted, they would read module level instead."""
        found: list[str] = []
        for name in _names_in(self._definition_time_roots(node)):
            scope = self.scopes.scope_of.get(id(name))
            owner = self._owner(scope, name.id) if scope is not None else None
            if owner is not None and owner.kind == "class" and name.id not in found:
                found.append(name.id)
        return found

    def _late_module_names(self, node: FuncNode, top: int) -> list[str]:
        """Module names read when the def/lambda runs that module level does not bind, finally, before `top`."""
        late: list[str] = []
        for name in _names_in(self._definition_time_roots(node)):
            scope = self.scopes.scope_of.get(id(name))
            if scope is None or self._owner(scope, name.id) is not None or name.id in late:
                continue  # a local of an enclosing function or class: definition_time_refs / _class_scope_names
            bindings = self.scopes.module.bindings.get(name.id)
            if bindings:
                if all(b.node is not None and self._top_index(b.node) < top for b in bindings):
                    continue
            elif hasattr(builtins, name.id):
                continue
            late.append(name.id)  # bound later, or not at all (a star import, an injected name)
        return late

    def _mangled_name(self, node: FuncNode, variable: str | None) -> str | None:
        """Inside a class Python mangles `__x` to `_Class__x`: moved out of it, the name would change."""
        cls = next((a for a in self.ancestors(node) if isinstance(a, ast.ClassDef)), None)
        if cls is None or not cls.name.strip("_"):
            return None
        found = [variable] if variable is not None and _is_private(variable) else []
        found += [n for n in _identifiers(node) if _is_private(n)]
        if not found:
            return None
        mangled = f"_{cls.name.lstrip('_')}{found[0]}"
        return (
            f"it uses the private name `{found[0]}` inside class `{cls.name}`, where Python mangles it to "
            f"`{mangled}`; at module level it would name something else"
        )

    def _captures(self, node: FuncNode, fn_scope: _Scope) -> list[Capture]:
        captures: dict[str, Capture] = {}
        for name in self._body_nodes(node):
            if not isinstance(name, ast.Name):
                continue
            for binding in self.bindings(name):
                scope = binding.scope
                if _is_within(scope, fn_scope) or binding.node is node or binding.value is node:
                    continue  # its own local, or the function itself (recursion)
                if scope.kind == "module":
                    # A global is not a capture, unless a module-level loop around the definition rebinds it.
                    if binding.node is None or not self._rebound_by_enclosing_loop(binding.node, node):
                        continue
                    kind = CaptureKind.LOOP
                elif not scope.is_local:
                    continue  # class attribute or builtin
                else:
                    kind = self._capture_kind(binding, node)
                previous = captures.get(name.id)
                if previous is None or _KIND_PRIORITY[kind] < _KIND_PRIORITY[previous.kind]:
                    label = "<module>" if scope.kind == "module" else "<scope>"
                    captures[name.id] = Capture(name.id, kind, scope.name or label)
        return sorted(captures.values(), key=lambda c: c.name)

    def _capture_kind(self, binding: _Binding, fn_node: ast.AST) -> CaptureKind:
        node = binding.node
        if binding.kind == "param" and isinstance(node, ast.arg) and self._is_self_param(node):
            return CaptureKind.SELF
        if node is not None and self._rebound_by_enclosing_loop(node, fn_node):
            return CaptureKind.LOOP
        return CaptureKind.LOCAL

    def _is_self_param(self, param: ast.arg) -> bool:
        args = self.parent(param)
        func = self.parent(args) if args is not None else None
        if not isinstance(args, ast.arguments) or not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return False
        positional = [*args.posonlyargs, *args.args]
        if not positional or positional[0] is not param:
            return False
        cls = self.parent(func)
        if not isinstance(cls, ast.ClassDef) or not any(s is func for s in cls.body):
            return False
        decorators: set[str] = set()
        for d in func.decorator_list:
            decorators |= self.qualified_names(d)
        return "builtins.staticmethod" not in decorators and "staticmethod" not in decorators

    def _rebound_by_enclosing_loop(self, bound_node: ast.AST, fn_node: ast.AST) -> bool:
        for anc in self.ancestors(fn_node):
            if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                return False
            if not isinstance(anc, _LOOPS):
                continue
            if isinstance(anc, (ast.For, ast.AsyncFor, ast.While)) and not any(
                self.is_descendant(fn_node, stmt) for stmt in anc.body
            ):
                continue
            if self.is_descendant(bound_node, anc):
                return True
        return False

    def _definition_time_roots(self, node: FuncNode) -> list[ast.AST]:
        roots: list[ast.AST] = list(defaults(node))
        if not isinstance(node, ast.Lambda):
            roots.extend(node.decorator_list)
            if not self.future_annotations:
                a = node.args
                params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
                params.extend(p for p in (a.vararg, a.kwarg) if p is not None)
                roots.extend(p.annotation for p in params if p.annotation is not None)
                if node.returns is not None:
                    roots.append(node.returns)
        return roots

    def _enclosing_locals_read(self, roots: Sequence[ast.AST]) -> list[str]:
        refs = set()
        for name in _names_in(roots):
            for binding in self.bindings(name):
                if binding.scope.is_local:
                    refs.add(name.id)
        return sorted(refs)

    # ----------------------------------------------------------------- ESP005 support
    def _runs_every_forward(self, call: ast.Call, caller: FuncNode | None) -> bool:
        if not isinstance(caller, (ast.FunctionDef, ast.AsyncFunctionDef)) or caller.name != "forward":
            return False
        cls = self.parent(caller)
        if not isinstance(cls, ast.ClassDef) or not any(s is caller for s in cls.body):
            return False
        for anc in self.ancestors(call):
            if anc is caller:
                return True
            if isinstance(anc, _CONDITIONAL):  # also covers else/except/finally: they sit under these
                return False
        return False


class _RelevanceFilter:
    """Which top-level defs and classes can contain a call that reaches a mask API, judged on text.

    A call reaches an API through a name that spells the API (`create_block_mask`, `fa.create_mask`),
    an import alias of one (`... import create_block_mask as cbm`), or a module-level variable bound to
    a call that mentions one of these (`cbm2 = torch.compile(cbm)`), computed to a fixpoint. A def or
    class whose source mentions none of them, nor `global` (which could rebind a module name), cannot,
    so only the name it binds is recorded. Everything else is visited in full.
    """

    def __init__(self, tree: ast.Module, lines: list[str], spellings: frozenset[str]) -> None:
        self.lines = lines
        words = set(spellings) | {"global", "partial"}
        aliases: list[tuple[str, str]] = []  # (bound name, text it depends on)
        # Module-level imports only: an alias imported inside a def binds a local of a def that spells
        # the API's name, and that def is visited in full anyway.
        for node in _module_level_statements(tree.body):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.asname:
                        aliases.append((alias.asname, alias.name.rsplit(".", 1)[-1]))
        assigned: list[tuple[list[str], str]] = []
        for stmt in tree.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names:
                    assigned.append((names, self.segment(stmt)))
        changed = True
        while changed:
            changed = False
            pattern = _word_pattern(words)
            for name, original in aliases:
                if name not in words and original in words:
                    words.add(name)
                    changed = True
            for names, text in assigned:
                if any(n not in words for n in names) and pattern.search(text):
                    words.update(names)
                    changed = True
        self.pattern = _word_pattern(words)

    def segment(self, node: ast.stmt) -> str:
        start = node.lineno
        decorators = getattr(node, "decorator_list", None)
        if decorators:
            start = min(start, *(d.lineno for d in decorators))
        end = node.end_lineno or node.lineno
        return "".join(self.lines[start - 1 : end])

    def __call__(self, node: ast.stmt) -> bool:
        return self.pattern.search(self.segment(node)) is not None


def _module_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run in the module's scope: the body and the blocks of if/try/with/for/while."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, _SKIPPABLE):
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from _module_level_statements(getattr(stmt, name, None) or [])
        for handler in getattr(stmt, "handlers", None) or []:
            yield from _module_level_statements(handler.body)


def _word_pattern(words: set[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, words))) + r")\b")


def _is_within(scope: _Scope, ancestor: _Scope) -> bool:
    current: _Scope | None = scope
    while current is not None and current.kind not in ("module", "builtins"):
        if current is ancestor:
            return True
        current = current.parent
    return False


def _reads_class_cell(node: ast.AST) -> bool:
    if isinstance(node, ast.Name) and node.id == "__class__":
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "super"
        and not node.args
        and not node.keywords
    )


def _names_in(roots: Sequence[ast.AST]) -> list[ast.Name]:
    return [n for root in roots for n in ast.walk(root) if isinstance(n, ast.Name)]


_FLEX_FALLBACK = MaskApi(FLEX_ATTENTION, 3, "score_mod", role="score_mod")


def _add_reason(reasons: list[str], reason: str) -> None:
    if reason not in reasons:
        reasons.append(reason)


def _is_private(name: str) -> bool:
    return name.startswith("__") and not name.endswith("__")


def _identifiers(root: ast.AST) -> Iterator[str]:
    """Every identifier the compiler would mangle inside a class: names, attributes, parameters, keywords."""
    for n in ast.walk(root):
        if isinstance(n, ast.Name):
            yield n.id
        elif isinstance(n, ast.Attribute):
            yield n.attr
        elif isinstance(n, (ast.arg, ast.keyword)) and n.arg:
            yield n.arg
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield n.name
        elif isinstance(n, ast.alias):
            yield n.asname or n.name.partition(".")[0]
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            yield from n.names


def module_level_names(text: str) -> frozenset[str]:
    """Every name module level binds or some code reads from module level (or builtins), by the
    compiler's own symbol tables: a hoisted function must not take any of them."""
    import symtable

    top = symtable.symtable(text, "<module>", "exec")
    names = set(top.get_identifiers())
    stack = list(top.get_children())
    while stack:
        table = stack.pop()
        is_class = str(table.get_type()) in ("class", "SymbolTableType.CLASS")
        for sym in table.get_symbols():
            if sym.is_global() or sym.is_declared_global():
                names.add(sym.get_name())
            elif is_class and sym.is_referenced() and not sym.is_free():
                names.add(sym.get_name())  # a class body reads its own names from module level as well
        stack.extend(table.get_children())
    return frozenset(names)


class ModuleLevelNames:
    """`module_level_names`, asked one name at a time: answered from the text when it can be, exactly,
    and by the compiler's symbol tables (`symtable`, a second parse of the whole file) only otherwise.

    Everything `module_level_names` holds is an identifier spelled in module-level code, a name some
    scope reads as a global, or a name a class body reads. So a name is surely not among them when the
    text spells it nowhere; or when `inside` (the def whose local the hoisted function is) binds it in
    its own scope and the text spells it, as a whole word, nowhere but in that def's body, in strings,
    in comments or after a `.` (attributes are no names), no scope in that body declaring it `global`
    and no class body there binding it (a class body that binds a name reads it from module level):
    every read of it there is a read of that local. Mangled names (`_C__x`) are never spelled, so names
    with `__` go to `symtable`; so does every name when some identifier may NFKC-normalize to an ASCII
    word it does not spell."""

    def __init__(self, text: str, tree: ast.Module) -> None:
        self.text = text
        self.tree = tree
        self._all: frozenset[str] | None = None

    def uses(self, name: str, inside: ast.AST | None = None) -> bool:
        if self._all is None and self._surely_unused(name, inside):
            return False
        if self._all is None:
            self._all = module_level_names(self.text)
        return name in self._all

    @functools.cached_property
    def _read_as_written(self) -> bool:
        """No identifier can NFKC-normalize to an ASCII word the text does not spell."""
        return len(identifier_texts(self.text)) == 1

    @functools.cached_property
    def _line_starts(self) -> list[int]:
        lines = io.StringIO(self.text, newline="").readlines()  # \n, \r\n and \r end lines, as for Python
        return list(itertools.accumulate((len(line) for line in lines), initial=0))

    @functools.cached_property
    def _source(self) -> SourceLines:
        from ..noqa import SourceLines

        return SourceLines(self.text, self.tree)

    def _surely_unused(self, name: str, inside: ast.AST | None) -> bool:
        text = self.text
        if "__" in name or not name.isidentifier() or not name.isascii() or not self._read_as_written:
            return False
        found = [m.start() for m in re.finditer(rf"\b{re.escape(name)}\b", text)]
        if not found:
            return True
        body = self._body_lines(inside)
        if body is None:
            return False
        assert isinstance(inside, (ast.FunctionDef, ast.AsyncFunctionDef))
        if name not in scope_names(inside, list(inside.body)):
            return False  # only a local of `inside` is read there as that local, not as a global
        first, last = body
        for node in (n for stmt in inside.body for n in ast.walk(stmt)):
            if isinstance(node, ast.Global) and name in node.names:
                return False  # a nested scope reads and writes the module's own `name`
            if isinstance(node, ast.ClassDef) and name in scope_names(node, list(node.body)):
                return False  # a class body that binds `name` reads it from module level
        line_starts = self._line_starts
        for at in found:
            number = bisect.bisect_right(line_starts, at)
            if first <= number <= last:
                continue
            before = text[line_starts[number - 1] : at]
            if before.rstrip(" \t").endswith("."):
                continue  # an attribute: `x.name`
            column = len(before.encode("utf-8", "surrogatepass"))  # ast counts UTF-8 bytes
            if self._source.in_code(number, column) is not False:
                return False  # an identifier, or the tree cannot tell
        return True

    @staticmethod
    def _body_lines(inside: ast.AST | None) -> tuple[int, int] | None:
        """The lines of a def's body, when none of them also holds its header (`def f(x=a): a`)."""
        if not isinstance(inside, (ast.FunctionDef, ast.AsyncFunctionDef)) or inside.end_lineno is None:
            return None
        header = [inside.args, *inside.decorator_list, *([inside.returns] if inside.returns else [])]
        header_end = max([inside.lineno, *(getattr(n, "end_lineno", 0) or 0 for h in header for n in ast.walk(h))])
        first = inside.body[0].lineno
        decorated = getattr(inside.body[0], "decorator_list", None)
        if decorated:
            first = min(first, *(d.lineno for d in decorated))
        return (first, inside.end_lineno) if first > header_end else None


def has_future_annotations(tree: ast.Module) -> bool:
    """`from __future__ import annotations`: annotations are not evaluated when a def runs."""
    return any(
        isinstance(s, ast.ImportFrom)
        and s.module == "__future__"
        and s.level == 0
        and any(a.name == "annotations" for a in s.names)
        for s in tree.body
    )


def analyze_source(tree: ast.Module, text: str, apis: ApiTable) -> ModuleFacts:
    """Facts for a module parsed with `ast.parse(text)`."""
    analyzer = FastAnalyzer(tree, text, apis)
    facts = analyzer.analyze()
    helpers = analyzer.pass_through_helpers(facts)
    analyzer.scopes.release()
    if not helpers:
        return facts
    # Calls of a pass-through helper are uses of its API: analyse again with the helpers known (and the
    # defs that call them visited in full).
    again = FastAnalyzer(tree, text, apis, helpers)
    facts = again.analyze()
    again.scopes.release()
    return facts


__all__ = ["FastAnalyzer", "ModuleLevelNames", "analyze_source", "has_future_annotations", "module_level_names"]
