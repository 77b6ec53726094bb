"""Mask functions: the `def` or `lambda` an expression passed as a mask may be, and its facts (what it
captures, what it calls, whether and how it could be moved to module level)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

from ..core.apis import MASK_COMBINATORS, PARTIAL
from ..core.span import first_line
from .callees import Callees
from .hoist_safety import hoist_reasons
from .hoist_sites import HoistSites
from .imported_names import imported_functions
from .mask_flow import BoundDefinition, Found, MaskFlow
from .model import CLASS_CELL_REASON, Capture, CaptureKind, FunctionKind, MaskFunction, class_attribute_reason
from .resolution import Resolver
from .scopes import Binding, Scope
from .syntax import (
    LOOPS,
    FuncNode,
    call_arguments,
    defaults,
    definition_time_roots,
    names_in,
    own_returns,
    reads_class_cell,
    returns_its_argument,
)

_KIND_PRIORITY = {CaptureKind.LOOP: 0, CaptureKind.SELF: 1, CaptureKind.LOCAL: 2}
_MASK_ARITY = 4  # torch passes a mask_mod 4 positional arguments (a score_mod 5)


def _positional_count(node: FuncNode) -> int:
    return len(node.args.posonlyargs) + len(node.args.args)


class MaskFunctions:
    """One `MaskFunction` per def/lambda (cached: every use of it shares the facts)."""

    def __init__(self, resolver: Resolver, callees: Callees, hoist_sites: HoistSites) -> None:
        self.tree = resolver.tree
        self.positions = resolver.positions
        self.scopes = resolver.scopes
        self.future_annotations = resolver.future_annotations
        self.parent = resolver.parent
        self.ancestors = resolver.ancestors
        self.is_descendant = resolver.is_descendant
        self.enclosing_function = resolver.enclosing_function
        self.outer_functions = resolver.outer_functions
        self.qualname = resolver.qualname
        self.bindings = resolver.bindings
        self.qualified_names = resolver.qualified_names
        self.imported_names = resolver.imported_names
        self.self_assignment = resolver.self_assignment
        self.body_nodes = resolver.body_nodes
        self.is_mask_argument = callees.is_mask_argument
        self.project = callees.project
        self.imported_qualified_names = callees.imported_qualified_names
        self.project_may_define = callees.project_may_define
        # (qualified name, called) -> the functions another project module gives it (imported_names.py)
        self._imported: dict[tuple[str, bool], tuple[list[MaskFunction], bool] | None] = {}
        self.hoist_site = hoist_sites.hoist_site
        self.flow = MaskFlow(resolver)
        self._functions: dict[tuple[int, int, frozenset[str]], MaskFunction] = {}
        self.module_summary = resolver.module_summary
        # While a use is resolved (`start_routes`): id(function) -> how it was reached, and the functions
        # reached by name (no route).
        self._routes: dict[int, str] | None = None
        self._direct: set[int] = set()

    def start_routes(self) -> None:
        self._routes, self._direct = {}, set()

    def take_routes(self) -> dict[int, str]:
        """The routes of the functions the resolutions since `start_routes` reached only through a route."""
        routes = {k: v for k, v in (self._routes or {}).items() if k not in self._direct}
        self._routes = None
        return routes

    def _reached(self, fn: MaskFunction, route: str | None) -> MaskFunction:
        if self._routes is not None:
            if route is None:
                self._direct.add(id(fn))
            else:
                self._routes.setdefault(id(fn), route)
        return fn

    def mask_function(
        self,
        node: FuncNode,
        name: str,
        bound: ast.AST | None = None,
        bound_positional: int = 0,
        bound_keywords: frozenset[str] = frozenset(),
        body_only: bool = False,
    ) -> MaskFunction:
        """The facts of one def/lambda (cached). `body_only`: for a function known by its parameters alone,
        which only the body rules see: what it calls and captures, not what a hoist would touch."""
        key = (id(node), bound_positional, bound_keywords)
        cached = self._functions.get(key)
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
            outer_functions=self.outer_functions(node),
            module_summary=self.module_summary(),
            binding_node=bound,
            bound_positional=bound_positional,
            bound_keywords=bound_keywords,
        )
        self._functions[key] = fn
        if not isinstance(node, ast.Lambda) and node.decorator_list:
            fn.replaced_by_decorator = not all(self.leaves_in_place(d, node) for d in node.decorator_list)
        fn_scope = self.scopes.function_scope.get(id(node))
        if fn_scope is None and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # A def the relevance filter skipped: visit its body now, to resolve what it calls.
            self.scopes.skipped_body(node)
            fn.callees = self.local_callees(node)
            return fn  # no loop around it: nothing captured
        fn.callees = self.local_callees(node)
        if fn_scope is None:
            return fn
        if enclosing is None:
            # Module or class level: only a module-level loop around the definition is captured.
            fn.captures = [c for c in self.captures(node, fn_scope) if c.kind is CaptureKind.LOOP]
            return fn
        fn.captures = self.captures(node, fn_scope)
        fn.default_refs = self.enclosing_locals_read(defaults(node))
        if body_only:
            return fn
        fn.definition_time_refs = self.enclosing_locals_read(definition_time_roots(node, self.future_annotations))
        if fn.captures or fn.default_refs:
            return fn  # never hoisted, so why it could not be is never read (rules/mask_functions.py)
        body_nodes = self.body_nodes(node)
        if not isinstance(node, ast.Lambda):
            for stmt_type, word in ((ast.Nonlocal, "nonlocal"), (ast.Global, "global")):
                if any(isinstance(n, stmt_type) for n in body_nodes):
                    fn.unfixable_reasons.append(f"it declares `{word}` names")
        if any(reads_class_cell(n) for n in body_nodes):
            fn.unfixable_reasons.append(CLASS_CELL_REASON)
        if not isinstance(node, ast.Lambda) and isinstance(self.parent(node), ast.ClassDef):
            fn.unfixable_reasons.append(class_attribute_reason(node.name))
        else:
            fn.site = self.hoist_site(node, fn)
        # The uses the hoist would rename, resolved by Python's scoping above (a class body that binds the
        # name reads another variable); without a hoist site the safety checks find the uses themselves.
        uses = fn.site.reference_nodes if fn.site is not None and fn.site.variable is not None else None
        safety = hoist_reasons(
            node,
            enclosing,
            self.parent,
            self.module_summary(),
            self.is_mask_argument,
            self.future_annotations,
            uses,
            self.source_lines(enclosing),
        )
        fn.unfixable_reasons.extend(r for r in safety if r not in fn.unfixable_reasons)
        return fn

    def leaves_in_place(self, decorator: ast.expr, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
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
        return returns_its_argument(target)

    def source_lines(self, node: FuncNode) -> str:
        """The whole lines `node` spans, from its first decorator: every identifier in it is spelled there."""
        return "".join(self.positions.lines[first_line(node) - 1 : node.end_lineno])

    def local_callees(self, node: FuncNode) -> dict[int, list[MaskFunction]]:
        """The calls in the function's body whose callee name is bound only to defs / lambdas of this module."""
        callees: dict[int, list[MaskFunction]] = {}
        for call in self.body_nodes(node):
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            bindings = [b for b in self.bindings(call.func) if self.self_assignment(b) is None]
            functions: list[MaskFunction] = []
            for binding in bindings:
                target = binding.node if binding.kind == "def" else binding.value
                if binding.kind == "store" and isinstance(target, ast.Lambda):
                    functions.append(self.mask_function(target, call.func.id))
                elif binding.kind == "def" and isinstance(target, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions.append(self.mask_function(target, target.name))
                elif binding.kind == "import" and (found := self.imported_mask(binding.qualified_names(call.func.id))):
                    if not found[1]:
                        functions = []
                        break
                    functions.extend(found[0])  # a function of another project module
                else:
                    functions = []
                    break
            if functions:
                callees[id(call)] = functions
        return callees

    # ----------------------------------------------------------------- what an expression may be
    def resolve_mask_expr(
        self, expr: ast.expr, seen: set[int], route: str | None = None
    ) -> tuple[list[MaskFunction], bool]:
        """The defs/lambdas `expr` may evaluate to, and whether that list is complete. `route` says how the
        value got here when not by name (mask_flow.py); the first route to a function is kept for it."""
        if id(expr) in seen:
            return [], False
        seen.add(id(expr))
        if isinstance(expr, ast.Lambda):
            return [self._reached(self.mask_function(expr, "<lambda>"), route)], True
        if isinstance(expr, ast.NamedExpr):  # `create_mask(fn := lambda ..., ...)`
            return self.resolve_mask_expr(expr.value, seen, route)
        if isinstance(expr, ast.Call):
            names = self.qualified_names(expr.func)
            if names & MASK_COMBINATORS:
                return self.combined(expr, seen, route)
            if PARTIAL in names:
                return self.partial_target(expr, seen, route)
            found = self.flow.subscript_values(expr)
            if found is not None:
                return self.resolve_found(found, seen, route)
            return self.factory_results(expr, seen, route)
        if isinstance(expr, ast.IfExp):  # `m1 if flag else m2`: either may be passed
            body, body_known = self.resolve_mask_expr(expr.body, seen, route)
            orelse, orelse_known = self.resolve_mask_expr(expr.orelse, seen, route)
            return body + orelse, body_known and orelse_known
        if isinstance(expr, ast.Subscript):
            found = self.flow.subscript_values(expr)
            return self.resolve_found(found, seen, route) if found is not None else ([], False)
        if isinstance(expr, ast.Attribute):
            imported_names = self.imported_names(expr)
            if imported_names:
                return self.imported_mask(imported_names) or ([], True)
            found = self.flow.self_attribute(expr, self.is_self_param)
            if found is None:
                return [], False
            # Complete only when assigned just above: a subclass or another module may replace an attribute.
            return self.resolve_found(found, seen, route)
        if not isinstance(expr, ast.Name):
            return [], False
        functions: list[MaskFunction] = []
        known = True
        bindings = [b for b in self.bindings(expr) if self.self_assignment(b) is None]
        if not bindings:
            return [], False
        for binding in bindings:
            node = binding.node
            if binding.kind == "def" and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append(self._reached(self.mask_function(node, node.name, node), route))
                continue
            if binding.kind == "import":
                from_project = self.imported_mask(binding.qualified_names(expr.id))
                if from_project is not None:  # defined in another project module
                    functions.extend(from_project[0])
                    known = known and from_project[1]
                continue
            value = binding.value if binding.kind == "store" else None
            if isinstance(value, ast.Lambda):
                functions.append(self._reached(self.mask_function(value, expr.id, binding.node), route))
            elif isinstance(value, (ast.Call, ast.Name, ast.IfExp, ast.Attribute, ast.Subscript)):
                fs, k = self.resolve_mask_expr(value, seen, route)
                functions.extend(fs)
                known = known and k
            elif value is None and (loop := self.flow.loop_values(binding)) is not None:
                fs, k = self.resolve_found(loop, seen, route)
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

    def resolve_found(self, found: Found, seen: set[int], route: str | None) -> tuple[list[MaskFunction], bool]:
        """Resolve each value mask_flow found, with the route it gave (the outer route wins: it is nearer the call)."""
        values, known = found
        functions: list[MaskFunction] = []
        for value, how in values:
            step = route or how
            if isinstance(value, BoundDefinition):
                if _positional_count(value.node) - value.bound < _MASK_ARITY:
                    known = False  # `self.m` with `def m(b, h, q, kv)`: torch's arguments do not fit
                    continue
                fn = self.mask_function(value.node, value.node.name, value.node, value.bound)
                fn.bound_method = value.bound > 0
                functions.append(self._reached(fn, step or value.route))
                continue
            fs, k = self.resolve_mask_expr(value, seen, step)
            functions.extend(fs)
            known = known and k
        return functions, known

    def combined(self, call: ast.Call, seen: set[int], route: str | None) -> tuple[list[MaskFunction], bool]:
        """`and_masks(a, b)`, `or_masks(*masks)`: every mask combined."""
        functions: list[MaskFunction] = []
        known = True
        for a in call_arguments(call):
            if a.keyword is not None:
                known = False
                continue
            if a.star:
                starred = a.node if isinstance(a.node, ast.Starred) else None
                found = self.flow.starred(starred, call) if starred is not None else None
                if found is None:
                    known = False
                    continue
                fs, k = self.resolve_found(found, seen, route)
            else:
                fs, k = self.resolve_mask_expr(a.value, seen, route)
            functions.extend(fs)
            known = known and k
        return functions, known

    def partial_target(self, call: ast.Call, seen: set[int], route: str | None) -> tuple[list[MaskFunction], bool]:
        """`functools.partial(f, window, causal=True)`: `f` with its first positional parameters bound."""
        args = call_arguments(call)
        if not args or args[0].keyword is not None or args[0].star or any(a.star for a in args[1:]):
            return [], False
        positional = sum(1 for a in args[1:] if a.keyword is None)
        keywords = frozenset(a.keyword for a in args[1:] if a.keyword is not None)
        step = route or f"via `functools.partial` at line {call.lineno}"
        inner, known = self.resolve_mask_expr(args[0].value, seen, step)
        functions: list[MaskFunction] = []
        for fn in inner:
            node = fn.ast_node
            if node is None:  # defined in another module: its parameters are not known here
                known = False
                continue
            bound = fn.bound_positional + positional
            params = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
            if keywords & set(params[bound : bound + _MASK_ARITY]) or len(params) - bound < _MASK_ARITY:
                known = False  # a keyword binds a parameter torch passes by position: not a mask we can read
                continue
            variant = self.mask_function(node, fn.name, fn.binding_node, bound, fn.bound_keywords | keywords)
            variant.factory = fn.factory
            functions.append(self._reached(variant, step))
        return functions, known

    def factory_results(
        self, call: ast.Call, seen: set[int], route: str | None = None
    ) -> tuple[list[MaskFunction], bool]:
        """What a same-module factory returns: `def padding_factory(n): def padding(...): ...; return padding`."""
        imported = self.imported_mask(self.imported_qualified_names(call.func), called=True)
        if imported is not None:  # a factory another project module defines
            return imported
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
        returns = [r for r in own_returns(factory) if r.value is not None]
        if not returns:
            return [], False
        functions: list[MaskFunction] = []
        known = True
        step = route or f"returned by `{factory.name}()` at line {call.lineno}"
        for ret in returns:
            assert ret.value is not None
            found, k = self.resolve_mask_expr(ret.value, seen, step)
            known = known and k
            for fn in found:
                if fn.enclosing is not None and fn.factory is None and self.qualname(factory) == fn.enclosing:
                    fn.factory = factory.name
                functions.append(fn)
        return functions, known and bool(functions)

    def imported_mask(self, qualified: Iterable[str], called: bool = False) -> tuple[list[MaskFunction], bool] | None:
        """The functions a name imported from another project module stands for as a mask (`called`: what
        calling it returns), and whether they are all it may be; None when the project does not know."""
        if self.project is None:
            return None
        for name in sorted(q for q in qualified if self.project_may_define(q)):
            key = (name, called)
            if key not in self._imported:
                found = self.project.lookup(name, functions=True)
                self._imported[key] = imported_functions(found, called) if found is not None else None
            result = self._imported[key]
            if result is not None:
                return list(result[0]), result[1]
        return None

    # ----------------------------------------------------------------- captures
    def captures(self, node: FuncNode, fn_scope: Scope) -> list[Capture]:
        captures: dict[str, Capture] = {}
        for name in self.body_nodes(node):
            if not isinstance(name, ast.Name):
                continue
            for binding in self.bindings(name):
                scope = binding.scope
                if _is_within(scope, fn_scope) or binding.node is node or binding.value is node:
                    continue  # its own local, or the function itself (recursion)
                if scope.kind == "module":
                    # A global is not a capture, unless a module-level loop around the definition rebinds it.
                    if binding.node is None or not self.rebound_by_enclosing_loop(binding.node, node):
                        continue
                    kind = CaptureKind.LOOP
                elif not scope.is_local:
                    continue  # class attribute or builtin
                else:
                    kind = self.capture_kind(binding, node)
                previous = captures.get(name.id)
                if previous is None or _KIND_PRIORITY[kind] < _KIND_PRIORITY[previous.kind]:
                    label = "<module>" if scope.kind == "module" else "<scope>"
                    captures[name.id] = Capture(name.id, kind, scope.name or label)
        return sorted(captures.values(), key=lambda c: c.name)

    def capture_kind(self, binding: Binding, fn_node: ast.AST) -> CaptureKind:
        node = binding.node
        if binding.kind == "param" and isinstance(node, ast.arg) and self.is_self_param(node):
            return CaptureKind.SELF
        if node is not None and self.rebound_by_enclosing_loop(node, fn_node):
            return CaptureKind.LOOP
        return CaptureKind.LOCAL

    def is_self_param(self, param: ast.arg) -> bool:
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

    def rebound_by_enclosing_loop(self, bound_node: ast.AST, fn_node: ast.AST) -> bool:
        for anc in self.ancestors(fn_node):
            if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                return False
            if not isinstance(anc, LOOPS):
                continue
            if isinstance(anc, (ast.For, ast.AsyncFor, ast.While)) and not any(
                self.is_descendant(fn_node, stmt) for stmt in anc.body
            ):
                continue
            if self.is_descendant(bound_node, anc):
                return True
        return False

    def enclosing_locals_read(self, roots: Sequence[ast.AST]) -> list[str]:
        refs = set()
        for name in names_in(roots):
            for binding in self.bindings(name):
                if binding.scope.is_local:
                    refs.add(name.id)
        return sorted(refs)


def _is_within(scope: Scope, ancestor: Scope) -> bool:
    current: Scope | None = scope
    while current is not None and current.kind not in ("module", "builtins"):
        if current is ancestor:
            return True
        current = current.parent
    return False
