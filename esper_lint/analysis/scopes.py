"""Scopes and bindings: one walk over the stdlib `ast` records every scope, every binding and every access.

Name resolution for the rules' facts (which binding a name reads, captures, qualified names) uses the
model LibCST's ScopeProvider had, which the findings were built and checked against:
- an access sees the bindings of its own scope made by statements that ended before it (a `for`
  target is visible after the target is bound); if there are none it falls back to the parent scope;
  bindings in enclosing scopes are all visible;
- class scopes are invisible from the functions and comprehensions nested in them;
- `import a.b.c` binds `a.b.c`, `a.b` and `a`; an attribute chain is resolved through the longest
  dotted prefix that is bound;
- `global` / `nonlocal` redirect both bindings and lookups.
What a fix touches follows CPython's compiler exactly instead (hoist_sites.py, module_names.py).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .syntax import FUNCTIONS, SKIPPABLE, child_nodes


class Scope:
    __slots__ = ("bindings", "count", "deleted", "kind", "name", "node", "overwrites", "parent", "prefix")

    def __init__(self, kind: str, name: str | None, parent: Scope | None, node: ast.AST | None) -> None:
        self.kind = kind  # "builtins", "module", "class", "function", "comprehension"
        self.name = name
        self.parent = parent
        self.node = node
        self.bindings: dict[str, list[Binding]] = {}
        self.count = 0  # LibCST's assignment counter: orders bindings against accesses
        self.overwrites: dict[str, Scope] = {}  # global / nonlocal declarations
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

    def visible_parent(self, first: Scope | None = None) -> Scope:
        parent = first if first is not None else self.parent
        assert parent is not None
        while parent.kind == "class":  # class bodies are not visible from nested scopes
            assert parent.parent is not None
            parent = parent.parent
        return parent

    def target(self, name: str) -> Scope:
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

    def resolve(self, name: str) -> list[Binding]:
        """All bindings `name` may refer to from this scope (LibCST's `_resolve_scope_for_access`)."""
        if self.kind == "builtins":
            found = self.bindings.get(name)
            if found is None and hasattr(builtins, name):
                found = self.bindings[name] = [Binding(name, self, "builtin", None, 0)]
            return found or []
        if name in self.overwrites:
            return self.visible_parent(self.overwrites[name]).resolve(name)
        if name in self.bindings:
            return self.bindings[name]
        return self.visible_parent().resolve(name)


class Binding:
    __slots__ = ("alias", "index", "kind", "name", "node", "position", "scope", "value")

    def __init__(self, name: str, scope: Scope, kind: str, node: ast.AST | None, index: int) -> None:
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


class Access:
    __slots__ = ("_referents", "index", "scope", "top_attribute")

    def __init__(self, scope: Scope, index: int, top_attribute: ast.Attribute | None) -> None:
        self.scope = scope
        self.index = index
        self.top_attribute = top_attribute
        self._referents: dict[str, list[Binding]] = {}

    def referents(self, name: str) -> list[Binding]:
        """LibCST's `Access.record_assignments`: bindings made later in the same scope are not seen."""
        found = self._referents.get(name)
        if found is None:
            candidates = self.scope.resolve(name)
            found = [b for b in candidates if b.scope is not self.scope or b.index < self.index]
            if not found and candidates and self.scope.parent is not None:
                found = list(self.scope.parent.resolve(name))
            self._referents[name] = found
        return found


def full_name(node: ast.AST) -> str | None:
    """LibCST's `get_full_name_for_node` for expressions."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = full_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    if isinstance(node, ast.Call):
        return full_name(node.func)
    if isinstance(node, ast.Subscript):
        return full_name(node.value)
    return None


def dotted_names(node: ast.expr) -> Iterator[tuple[str, ast.expr]]:
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
        inner = dotted_names(value)
        first = next(inner, None)
        if first is None:
            return
        yield f"{first[0]}.{node.attr}", node
        yield first
        yield from inner


# --------------------------------------------------------------------------- the walk
class ScopeBuilder:
    """One pass over the tree, in LibCST's visiting order: scopes, bindings, accesses and parents."""

    def __init__(self) -> None:
        self.builtins = Scope("builtins", None, None, None)
        self.module = Scope("module", None, self.builtins, None)
        self.made: list[Scope] = [self.builtins, self.module]  # every scope, for `release`
        self.accesses: dict[int, Access] = {}  # id(Name) -> access
        self.scope_of: dict[int, Scope] = {}  # id(node) -> scope its expression is evaluated in
        self.function_scope: dict[int, Scope] = {}  # id(def / lambda / comprehension) -> its scope
        self.calls: list[ast.Call] = []
        # Each node's parent, by id: kept here rather than on the nodes, so that a tree has no reference
        # cycles and is freed as soon as it is dropped (cycles made the garbage collector a third of a run).
        self.parents: dict[int, ast.AST | None] = {}
        self.names: dict[str, list[ast.Name]] = {}  # every Name visited, by identifier: the renamer's index
        self.string_annotations: list[ast.Constant] = []  # `x: "T"`: text a rename would not reach
        self.nonlocal_or_global: list[ast.stmt] = []
        self.skipped_in: dict[int, Scope] = {}  # id(def skipped by `relevant`) -> the scope it is bound in
        self.skipped: list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = []  # those defs, in order
        # Decides whether a top-level def/class needs a full visit; None visits everything.
        self.relevant: Callable[[ast.stmt], bool] | None = None

    def new_scope(self, kind: str, name: str | None, parent: Scope, node: ast.AST) -> Scope:
        scope = Scope(kind, name, parent, node)
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
    def bind(self, scope: Scope, name: str, kind: str, node: ast.AST | None) -> Binding:
        target = scope.target(name)
        binding = Binding(name, target, kind, node, target.count)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.decorator_list:
            first = node.decorator_list[0]  # LibCST's definition starts at its first decorator
            binding.position = (first.lineno, first.col_offset - 1)
        elif isinstance(node, (ast.stmt, ast.expr, ast.arg, ast.excepthandler, ast.pattern)):
            binding.position = (node.lineno, node.col_offset)
        target.bindings.setdefault(name, []).append(binding)
        return binding

    def bind_target(self, scope: Scope, target: ast.expr, value: ast.expr | None, parent: ast.AST) -> None:
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
    def visit_many(self, nodes: Sequence[ast.AST | None], scope: Scope, parent: ast.AST) -> None:
        for n in nodes:
            if n is not None:
                self.visit(n, scope, parent, None)

    def visit(self, node: ast.AST, scope: Scope, parent: ast.AST | None, top_attr: ast.Attribute | None) -> None:
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
                self.accesses[id(node)] = Access(scope, scope.count, top_attr)
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
    def v_module(self, node: ast.Module, scope: Scope) -> None:
        relevant = self.relevant
        for stmt in node.body:
            if relevant is not None and isinstance(stmt, SKIPPABLE) and not relevant(stmt):
                self.shallow_definition(stmt, scope, node)
            else:
                self.visit(stmt, scope, node, None)

    def shallow_definition(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, scope: Scope, parent: ast.AST
    ) -> None:
        """A top-level def/class, or a method of a top-level class, that cannot contain a mask-API call:
        only the name it binds matters (it may still be passed as a mask function elsewhere), exactly as a
        full visit would bind it. `skipped_in` keeps the scope to visit its body in should that be needed."""
        self.parents[id(node)] = parent
        self.bind(scope, node.name, "class" if isinstance(node, ast.ClassDef) else "def", node)
        self.skipped_in[id(node)] = scope
        self.skipped.append(node)
        scope.count += 1

    def skipped_body(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        """Visit, after all, the body of a def the relevance filter skipped (a mask function or factory)."""
        self.function_body(node, self.skipped_in.get(id(node), self.module))

    def v_function(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        self.bind(scope, node.name, "def", node)
        self.function_body(node, scope)
        self.visit_many(node.decorator_list, scope, node)
        if node.returns is not None:
            self.annotation(node.returns)
            self.visit(node.returns, scope, node, None)
        scope.count += 1

    def function_body(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope) -> None:
        """The def's own scope: parameters and body (also used to visit a skipped top-level def later)."""
        inner = self.new_scope("function", node.name, scope, node)
        self.function_scope[id(node)] = inner
        self.visit_arguments(node.args, inner, scope, node)
        self.visit_many(node.body, inner, node)

    def v_lambda(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.Lambda)
        self.scope_of[id(node)] = scope
        inner = self.new_scope("function", None, scope, node)
        self.function_scope[id(node)] = inner
        self.visit_arguments(node.args, inner, scope, node)
        self.visit(node.body, inner, node, None)

    def visit_arguments(self, args: ast.arguments, inner: Scope, outer: Scope, owner: ast.AST) -> None:
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

    def v_class(self, node: ast.AST, scope: Scope) -> None:
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
            if relevant is not None and isinstance(stmt, FUNCTIONS) and not relevant(stmt):
                self.shallow_definition(stmt, inner, node)
            else:
                self.visit(stmt, inner, node, None)
        scope.count += 1

    def v_import(self, node: ast.AST, scope: Scope) -> None:
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

    def v_assign(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.Assign)
        for target in node.targets:
            self.bind_target(scope, target, node.value, node)
        self.visit(node.value, scope, node, None)
        scope.count += 1

    def v_annassign(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.AnnAssign)
        self.bind_target(scope, node.target, node.value, node)
        self.annotation(node.annotation)
        self.visit(node.annotation, scope, node, None)
        if node.value is not None:
            self.visit(node.value, scope, node, None)
        scope.count += 1

    def v_augassign(self, node: ast.AST, scope: Scope) -> None:
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

    def v_namedexpr(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.NamedExpr)
        self.scope_of[id(node)] = scope
        self.bind_target(scope, node.target, node.value, node)
        self.visit(node.value, scope, node, None)
        scope.count += 1

    def v_for(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, (ast.For, ast.AsyncFor))
        self.bind_target(scope, node.target, None, node)
        scope.count += 1
        self.visit(node.iter, scope, node, None)
        self.visit_many(node.body, scope, node)
        self.visit_many(node.orelse, scope, node)

    def v_with(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, (ast.With, ast.AsyncWith))
        for item in node.items:
            self.parents[id(item)] = node
            self.visit(item.context_expr, scope, item, None)
            if item.optional_vars is not None:
                self.bind_target(scope, item.optional_vars, None, item)
                scope.count += 1
            scope.count += 1
        self.visit_many(node.body, scope, node)

    def v_handler(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.ExceptHandler)
        if node.type is not None:
            self.visit(node.type, scope, node, None)
        if node.name:
            self.bind(scope, node.name, "other", node)
            scope.count += 1
        self.visit_many(node.body, scope, node)

    def v_global(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, (ast.Global, ast.Nonlocal))
        self.nonlocal_or_global.append(node)
        for name in node.names:
            if isinstance(node, ast.Global):
                if scope.kind != "module":
                    scope.overwrites[name] = self.module
            elif scope.parent is not None and scope.kind != "module":
                scope.overwrites[name] = scope.parent
        scope.count += 1

    def v_comprehension(self, node: ast.AST, scope: Scope) -> None:
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

    def _inner_generators(self, generators: list[ast.comprehension], i: int, scope: Scope, owner: ast.AST) -> None:
        if i >= len(generators):
            return
        gen = generators[i]
        self.parents[id(gen)] = owner
        self.bind_target(scope, gen.target, None, gen)
        self.visit(gen.iter, scope, gen, None)
        self.visit_many(gen.ifs, scope, gen)
        self._inner_generators(generators, i + 1, scope, owner)
        scope.count += 1  # LibCST's CompFor counts when it is left, after the inner ones

    def v_match_binding(self, node: ast.AST, scope: Scope) -> None:
        name = getattr(node, "name", None) or getattr(node, "rest", None)
        for child in ast.iter_child_nodes(node):
            self.visit(child, scope, node, None)
        if isinstance(name, str):
            self.bind(scope, name, "other", node)


_DISPATCH: dict[type[ast.AST], Any] = {
    ast.Module: ScopeBuilder.v_module,
    ast.FunctionDef: ScopeBuilder.v_function,
    ast.AsyncFunctionDef: ScopeBuilder.v_function,
    ast.Lambda: ScopeBuilder.v_lambda,
    ast.ClassDef: ScopeBuilder.v_class,
    ast.Import: ScopeBuilder.v_import,
    ast.ImportFrom: ScopeBuilder.v_import,
    ast.Assign: ScopeBuilder.v_assign,
    ast.AnnAssign: ScopeBuilder.v_annassign,
    ast.AugAssign: ScopeBuilder.v_augassign,
    ast.NamedExpr: ScopeBuilder.v_namedexpr,
    ast.For: ScopeBuilder.v_for,
    ast.AsyncFor: ScopeBuilder.v_for,
    ast.With: ScopeBuilder.v_with,
    ast.AsyncWith: ScopeBuilder.v_with,
    ast.ExceptHandler: ScopeBuilder.v_handler,
    ast.Global: ScopeBuilder.v_global,
    ast.Nonlocal: ScopeBuilder.v_global,
    ast.ListComp: ScopeBuilder.v_comprehension,
    ast.SetComp: ScopeBuilder.v_comprehension,
    ast.DictComp: ScopeBuilder.v_comprehension,
    ast.GeneratorExp: ScopeBuilder.v_comprehension,
    ast.MatchAs: ScopeBuilder.v_match_binding,
    ast.MatchStar: ScopeBuilder.v_match_binding,
    ast.MatchMapping: ScopeBuilder.v_match_binding,
}
