"""Reference analysis backend: LibCST with its scope and qualified-name metadata.

Names are resolved the way Python resolves them: LibCST's ScopeProvider knows which binding each name
refers to (imports, assignments, parameters, comprehension targets) and QualifiedNameProvider turns
imports and aliases into fully qualified names. Nothing here matches on spelling alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import libcst as cst
from libcst.metadata import (
    Assignment,
    BaseAssignment,
    ComprehensionScope,
    FunctionScope,
    GlobalScope,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    Scope,
    ScopeProvider,
)

from ..apis import MASK_COMBINATORS, PARTIAL, TRANSPARENT_WRAPPERS, ApiTable, MaskApi
from .model import (
    CLASS_CELL_REASON,
    Capture,
    CaptureKind,
    FunctionKind,
    MaskFunction,
    MaskUse,
    ModuleFacts,
    Span,
    class_attribute_reason,
)

_LOOP_NODES = (cst.For, cst.While, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
# Statements and expressions under which a call in `forward` does not run on every call.
_CONDITIONAL_NODES = (
    cst.If,
    cst.Else,
    cst.Try,
    cst.TryStar,
    cst.For,
    cst.While,
    cst.Match,
    cst.IfExp,
    cst.BooleanOperation,
    cst.Lambda,
    cst.FunctionDef,
    *_COMPREHENSIONS,
)


class _ResolvedApi:
    """A callable that is a mask API, possibly behind partial(): `offset` leading positionals bound."""

    __slots__ = ("api", "mask_bound", "offset")

    def __init__(self, api: MaskApi, offset: int = 0, mask_bound: bool = False) -> None:
        self.api = api
        self.offset = offset
        self.mask_bound = mask_bound


class LibcstAnalyzer:
    def __init__(self, module: cst.Module, apis: ApiTable) -> None:
        self.module = module
        self.apis = apis
        # unsafe_skip_copy: the fixer needs the nodes we report to be the module's own nodes.
        self.wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self.scopes = self.wrapper.resolve(ScopeProvider)
        self.qnames = self.wrapper.resolve(QualifiedNameProvider)
        self.positions = self.wrapper.resolve(PositionProvider)
        self.parents = self.wrapper.resolve(ParentNodeProvider)
        self.future_annotations = has_future_annotations(module)
        self._functions: dict[int, MaskFunction] = {}

    # ----------------------------------------------------------------- entry point
    def analyze(self) -> ModuleFacts:
        facts = ModuleFacts()
        for call in _walk_calls(self.module):
            for resolved in self._resolve_callable(call.func, set()):
                use = self._mask_use(call, resolved)
                if use is not None:
                    facts.uses.append(use)
                    break
            else:
                # functools.partial(create_block_mask, mask, ...) passes the mask at the partial call.
                use = self._partial_binding_use(call)
                if use is not None:
                    facts.uses.append(use)
        facts.uses.sort(key=lambda u: (u.arg_span, u.api))
        return facts

    # ----------------------------------------------------------------- helpers: positions, parents
    def span(self, node: cst.CSTNode) -> Span:
        rng = self.positions[node]
        return Span(rng.start.line, rng.start.column + 1, rng.end.line, rng.end.column + 1)

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        current = self.parents.get(node)
        while current is not None:
            yield current
            current = self.parents.get(current)

    def is_descendant(self, node: cst.CSTNode, ancestor: cst.CSTNode) -> bool:
        return node is ancestor or any(a is ancestor for a in self.ancestors(node))

    def qualified_names(self, node: cst.CSTNode) -> set[str]:
        value = self.qnames.get(node, ())
        if callable(value):  # LibCST computes qualified names lazily (LazyValue)
            value = value()
        return {q.name for q in value}

    def bindings(self, name: cst.Name) -> list[BaseAssignment]:
        """The assignments a name use may refer to, as Python's scoping rules say."""
        scope = self.scopes.get(name)
        if scope is None:
            return []
        found: list[BaseAssignment] = []
        for access in scope.accesses[name]:
            if access.node is name:
                found.extend(access.referents)
        return sorted(found, key=self._assignment_order)

    def _assignment_order(self, assignment: BaseAssignment) -> tuple[int, int]:
        node = getattr(assignment, "node", None)
        if isinstance(node, cst.CSTNode) and node in self.positions:
            start = self.positions[node].start
            return (start.line, start.column)
        return (0, 0)

    def enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | cst.Lambda | None:
        for anc in self.ancestors(node):
            if isinstance(anc, (cst.FunctionDef, cst.Lambda)):
                return anc
        return None

    def qualname(self, node: cst.CSTNode | None) -> str | None:
        """Dotted path of the function/class definitions around and including `node`."""
        if node is None:
            return None
        parts: list[str] = []
        for n in (node, *self.ancestors(node)):
            if isinstance(n, (cst.FunctionDef, cst.ClassDef)):
                parts.append(n.name.value)
            elif isinstance(n, cst.Lambda):
                parts.append("<lambda>")
        return ".".join(reversed(parts)) or None

    # ----------------------------------------------------------------- callee resolution
    def _resolve_callable(self, expr: cst.BaseExpression, seen: set[int]) -> list[_ResolvedApi]:
        if id(expr) in seen:
            return []
        seen.add(id(expr))
        if isinstance(expr, (cst.Name, cst.Attribute)):
            found = [_ResolvedApi(api) for q in sorted(self.qualified_names(expr)) if (api := self.apis.get(q))]
            if found:
                return found
            if isinstance(expr, cst.Name):
                # `cbm = torch.compile(create_block_mask)` and friends: follow local assignments.
                for binding in self.bindings(expr):
                    value = self._assigned_value(binding)
                    if isinstance(value, cst.Call):
                        found.extend(self._resolve_wrapper_call(value, seen))
                    elif isinstance(value, (cst.Name, cst.Attribute)):
                        found.extend(self._resolve_callable(value, seen))  # `cbm2 = cbm`
            return found
        if isinstance(expr, cst.Call):
            return self._resolve_wrapper_call(expr, seen)
        return []

    def _resolve_wrapper_call(self, call: cst.Call, seen: set[int]) -> list[_ResolvedApi]:
        names = self.qualified_names(call.func)
        if not call.args or call.args[0].keyword is not None or call.args[0].star:
            return []
        inner = call.args[0].value
        if names & TRANSPARENT_WRAPPERS:
            return self._resolve_callable(inner, seen)
        if PARTIAL in names:
            bound_positionals = call.args[1:]
            if any(a.star for a in bound_positionals):
                return []
            n_positional = sum(1 for a in bound_positionals if a.keyword is None)
            keywords = {a.keyword.value for a in bound_positionals if a.keyword is not None}
            result = []
            for r in self._resolve_callable(inner, seen):
                offset = r.offset + n_positional
                bound = (
                    r.mask_bound
                    or r.api.mask_keyword in keywords
                    or (r.api.mask_position is not None and r.api.mask_position < offset)
                )
                result.append(_ResolvedApi(r.api, offset, bound))
            return result
        return []

    def _assigned_value(self, binding: BaseAssignment) -> cst.BaseExpression | None:
        """The right-hand side of a plain `name = value` / `name: T = value` binding."""
        if not isinstance(binding, Assignment) or not isinstance(binding.node, cst.Name):
            return None
        parent = self.parent(binding.node)
        if isinstance(parent, cst.AssignTarget):
            assign = self.parent(parent)
            if isinstance(assign, cst.Assign):
                return assign.value
        if isinstance(parent, cst.AnnAssign) and parent.target is binding.node:
            return parent.value
        if isinstance(parent, cst.NamedExpr) and parent.target is binding.node:
            return parent.value
        return None

    # ----------------------------------------------------------------- mask arguments
    def _mask_argument(self, call: cst.Call, resolved: _ResolvedApi) -> cst.Arg | None:
        if resolved.mask_bound:
            return None
        api = resolved.api
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == api.mask_keyword:
                return arg
        if api.mask_position is None:
            return None
        index = api.mask_position - resolved.offset
        positionals = []
        for arg in call.args:
            if arg.keyword is not None or arg.star == "**":
                break
            if arg.star:  # *args before the mask: position unknown
                return None
            positionals.append(arg)
        return positionals[index] if 0 <= index < len(positionals) else None

    def _partial_binding_use(self, call: cst.Call) -> MaskUse | None:
        if PARTIAL not in self.qualified_names(call.func) or not call.args:
            return None
        first = call.args[0]
        if first.keyword is not None or first.star:
            return None
        for resolved in self._resolve_callable(first.value, set()):
            shifted = cst.Call(func=call.func, args=call.args[1:])  # args as seen by the API
            arg = self._mask_argument_in(shifted.args, resolved)
            if arg is not None:
                return self._build_use(call, arg, resolved.api)
        return None

    def _mask_argument_in(self, args: Sequence[cst.Arg], resolved: _ResolvedApi) -> cst.Arg | None:
        fake = cst.Call(func=cst.Name("_"), args=args)
        return self._mask_argument(fake, resolved)

    def _mask_use(self, call: cst.Call, resolved: _ResolvedApi) -> MaskUse | None:
        arg = self._mask_argument(call, resolved)
        if arg is None:
            return None
        return self._build_use(call, arg, resolved.api)

    def _build_use(self, call: cst.Call, arg: cst.Arg, api: MaskApi) -> MaskUse:
        functions, all_known = self._resolve_mask_expr(arg.value, set())
        caller = self.enclosing_function(call)
        capture_free = all_known and all(not f.captures and not f.default_refs for f in functions)
        per_forward = api.builds_block_mask and self._runs_every_forward(call, caller)
        return MaskUse(
            api=api.qualified_name,
            arg_span=self.span(arg.value),
            call_span=self.span(call),
            functions=functions,
            caller=self.qualname(caller),
            per_forward=per_forward,
            mask_is_capture_free=capture_free,
            arg_node=arg.value,
            role=api.role,
        )

    def _resolve_mask_expr(self, expr: cst.BaseExpression, seen: set[int]) -> tuple[list[MaskFunction], bool]:
        """What a mask argument may evaluate to. Returns (functions, every possibility known)."""
        if id(expr) in seen:
            return [], False
        seen.add(id(expr))
        if isinstance(expr, cst.Lambda):
            return [self._mask_function(expr, "<lambda>", None)], True
        if isinstance(expr, cst.NamedExpr):
            return self._resolve_mask_expr(expr.value, seen)
        if isinstance(expr, cst.Call) and self.qualified_names(expr.func) & MASK_COMBINATORS:
            functions: list[MaskFunction] = []
            known = True
            for a in expr.args:
                if a.star or a.keyword is not None:
                    known = False
                    continue
                fs, k = self._resolve_mask_expr(a.value, seen)
                functions.extend(fs)
                known = known and k
            return functions, known
        if isinstance(expr, cst.IfExp):
            # `m1 if flag else m2`: either may be passed.
            body, body_known = self._resolve_mask_expr(expr.body, seen)
            orelse, orelse_known = self._resolve_mask_expr(expr.orelse, seen)
            return body + orelse, body_known and orelse_known
        if isinstance(expr, cst.Attribute):
            # `masks.causal` from an imported module is a module-level function elsewhere.
            return [], bool(self._imported_names(expr))
        if not isinstance(expr, cst.Name):
            return [], False
        functions = []
        known = True
        bindings = self.bindings(expr)
        if not bindings:
            return [], False
        for binding in bindings:
            node = getattr(binding, "node", None)
            if isinstance(node, cst.FunctionDef):
                functions.append(self._mask_function(node, node.name.value, binding))
                continue
            if isinstance(node, (cst.Import, cst.ImportFrom)):
                continue  # a function from another module: defined at its module level
            value = self._assigned_value(binding)
            if isinstance(value, cst.Lambda):
                functions.append(self._mask_function(value, expr.value, binding))
            elif value is not None and isinstance(value, (cst.Call, cst.Name, cst.IfExp, cst.Attribute)):
                fs, k = self._resolve_mask_expr(value, seen)
                functions.extend(fs)
                known = known and k
            else:
                known = False
        if len(bindings) > 1:
            for f in functions:
                reason = f"`{expr.value}` is bound more than once in its scope"
                if f.enclosing is not None and reason not in f.unfixable_reasons:
                    f.unfixable_reasons.append(reason)
        return functions, known

    def _imported_names(self, expr: cst.Attribute) -> set[str]:
        base: cst.BaseExpression = expr
        while isinstance(base, cst.Attribute):
            base = base.value
        if not isinstance(base, cst.Name):
            return set()
        return {
            q
            for q in self.qualified_names(expr)
            if any(isinstance(getattr(b, "node", None), (cst.Import, cst.ImportFrom)) for b in self.bindings(base))
        }

    # ----------------------------------------------------------------- the function itself
    def _mask_function(
        self, node: cst.FunctionDef | cst.Lambda, name: str, binding: BaseAssignment | None
    ) -> MaskFunction:
        cached = self._functions.get(id(node))
        if cached is not None:
            return cached
        enclosing = self.enclosing_function(node)
        kind = FunctionKind.DEF if isinstance(node, cst.FunctionDef) else FunctionKind.LAMBDA
        fn = MaskFunction(
            kind=kind,
            name=name,
            span=self.span(node.name if isinstance(node, cst.FunctionDef) else node),
            enclosing=self.qualname(enclosing),
            node=node,
            binding_node=getattr(binding, "node", None),
        )
        self._functions[id(node)] = fn
        fn_scope = self.scopes.get(node.body)
        if fn_scope is None:  # LibCST gives every function body a scope; nothing to analyse otherwise
            return fn
        if enclosing is None:
            # Module or class level: no function scope to capture from, but a module-level loop (or
            # comprehension) around the definition still rebinds what it reads: late binding.
            fn.captures = [c for c in self._captures(node, fn_scope) if c.kind is CaptureKind.LOOP]
            return fn
        fn.captures = self._captures(node, fn_scope)
        fn.default_refs = self._enclosing_locals_read(_defaults(node))
        fn.definition_time_refs = self._enclosing_locals_read(self._definition_time_roots(node))
        for stmt_type, word in ((cst.Nonlocal, "nonlocal"), (cst.Global, "global")):
            if isinstance(node, cst.FunctionDef) and _contains(node.body, stmt_type):
                fn.unfixable_reasons.append(f"it declares `{word}` names")
        if _uses_class_cell(node.body):
            fn.unfixable_reasons.append(CLASS_CELL_REASON)
        block = self.parent(node)
        if isinstance(node, cst.FunctionDef) and isinstance(self.parent(block) if block else None, cst.ClassDef):
            fn.unfixable_reasons.append(class_attribute_reason(node.name.value))
        return fn

    def _captures(self, node: cst.FunctionDef | cst.Lambda, fn_scope: Scope) -> list[Capture]:
        captures: dict[str, Capture] = {}
        body_roots: list[cst.CSTNode] = [node.body]
        for name in _names_in(body_roots):
            for binding in self.bindings(name):
                scope = binding.scope
                itself = getattr(binding, "node", None) is node or self._assigned_value(binding) is node
                if _is_within(scope, fn_scope) or itself:
                    continue  # its own local, or the function itself (recursion)
                if isinstance(scope, GlobalScope):
                    # A global is not a capture, unless a module-level loop around the definition rebinds it.
                    node_bound = getattr(binding, "node", None)
                    if not (isinstance(node_bound, cst.CSTNode) and self._rebound_by_enclosing_loop(node_bound, node)):
                        continue
                    kind = CaptureKind.LOOP
                elif not isinstance(scope, (FunctionScope, ComprehensionScope)):
                    continue  # class attribute or builtin: not a capture
                else:
                    kind = self._capture_kind(binding, node)
                previous = captures.get(name.value)
                if previous is None or _KIND_PRIORITY[kind] < _KIND_PRIORITY[previous.kind]:
                    label = "<module>" if isinstance(scope, GlobalScope) else "<scope>"
                    captures[name.value] = Capture(name.value, kind, getattr(scope, "name", None) or label)
        return sorted(captures.values(), key=lambda c: c.name)

    def _capture_kind(self, binding: BaseAssignment, fn_node: cst.CSTNode) -> CaptureKind:
        node = getattr(binding, "node", None)
        if isinstance(node, cst.Param) and self._is_self_param(node):
            return CaptureKind.SELF
        if isinstance(node, cst.CSTNode) and self._rebound_by_enclosing_loop(node, fn_node):
            return CaptureKind.LOOP
        return CaptureKind.LOCAL

    def _is_self_param(self, param: cst.Param) -> bool:
        params = self.parent(param)
        func = self.parent(params) if params is not None else None
        if not isinstance(params, cst.Parameters) or not isinstance(func, cst.FunctionDef):
            return False
        positional = [*params.posonly_params, *params.params]
        if not positional or positional[0] is not param:
            return False
        block = self.parent(func)
        cls = self.parent(block) if block is not None else None
        if not isinstance(cls, cst.ClassDef):
            return False
        decorators = set()
        for d in func.decorators:
            decorators |= self.qualified_names(d.decorator)
        return "builtins.staticmethod" not in decorators and "staticmethod" not in decorators

    def _rebound_by_enclosing_loop(self, bound_node: cst.CSTNode, fn_node: cst.CSTNode) -> bool:
        """True when a loop around the closure also rebinds the captured name (late binding)."""
        for anc in self.ancestors(fn_node):
            if isinstance(anc, (cst.FunctionDef, cst.ClassDef)):
                return False  # the loop must be in the same function as the binding
            if not isinstance(anc, _LOOP_NODES):
                continue
            if isinstance(anc, (cst.For, cst.While)) and not self.is_descendant(fn_node, anc.body):
                continue
            if self.is_descendant(bound_node, anc):
                return True
        return False

    def _definition_time_roots(self, node: cst.FunctionDef | cst.Lambda) -> list[cst.CSTNode]:
        """Expressions evaluated when the def/lambda itself runs: defaults, decorators, annotations."""
        roots: list[cst.CSTNode] = list(_defaults(node))
        if isinstance(node, cst.FunctionDef):
            roots.extend(d.decorator for d in node.decorators)
            if not self.future_annotations:
                params = node.params
                all_params = [*params.posonly_params, *params.params, *params.kwonly_params]
                for star in (params.star_arg, params.star_kwarg):
                    if isinstance(star, cst.Param):
                        all_params.append(star)
                roots.extend(p.annotation.annotation for p in all_params if p.annotation is not None)
                if node.returns is not None:
                    roots.append(node.returns.annotation)
        return roots

    def _enclosing_locals_read(self, roots: Sequence[cst.CSTNode]) -> list[str]:
        """Names in `roots` that resolve to a function (or comprehension) scope's binding."""
        refs = set()
        for name in _names_in(roots):
            for binding in self.bindings(name):
                if isinstance(binding.scope, (FunctionScope, ComprehensionScope)):
                    refs.add(name.value)
        return sorted(refs)

    # ----------------------------------------------------------------- ESP005 support
    def _runs_every_forward(self, call: cst.Call, caller: cst.FunctionDef | cst.Lambda | None) -> bool:
        if not isinstance(caller, cst.FunctionDef) or caller.name.value != "forward":
            return False
        block = self.parent(caller)
        if not isinstance(self.parent(block) if block is not None else None, cst.ClassDef):
            return False
        for anc in self.ancestors(call):
            if anc is caller:
                return True
            if isinstance(anc, _CONDITIONAL_NODES):
                return False
        return False


_KIND_PRIORITY = {CaptureKind.LOOP: 0, CaptureKind.SELF: 1, CaptureKind.LOCAL: 2}


def _is_within(scope: Scope, ancestor: Scope) -> bool:
    current: Scope | None = scope
    while current is not None and not isinstance(current, GlobalScope):
        if current is ancestor:
            return True
        if current.parent is current:  # BuiltinScope is its own parent: stop, or a builtin loops forever
            return False
        current = current.parent
    return False


def _uses_class_cell(body: cst.CSTNode) -> bool:
    """Zero-argument super() and __class__ read the enclosing class's cell, which module level lacks."""
    for node in _collect([body], (cst.Name, cst.Call)):
        if isinstance(node, cst.Name) and node.value == "__class__":
            return True
        if isinstance(node, cst.Call) and not node.args:
            func = node.func
            if isinstance(func, cst.Name) and func.value == "super":
                return True
    return False


def _defaults(node: cst.FunctionDef | cst.Lambda) -> list[cst.CSTNode]:
    params = node.params
    return [p.default for p in (*params.posonly_params, *params.params, *params.kwonly_params) if p.default]


def has_future_annotations(module: cst.Module) -> bool:
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if (
                isinstance(small, cst.ImportFrom)
                and isinstance(small.module, cst.Name)
                and small.module.value == "__future__"
                and not isinstance(small.names, cst.ImportStar)
                and any(isinstance(a.name, cst.Name) and a.name.value == "annotations" for a in small.names)
            ):
                return True
    return False


class _Collector(cst.CSTVisitor):
    def __init__(self, types: tuple[type[cst.CSTNode], ...]) -> None:
        self.types = types
        self.found: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, self.types):
            self.found.append(node)
        return True


def _collect(roots: Sequence[cst.CSTNode], types: tuple[type[cst.CSTNode], ...]) -> list[cst.CSTNode]:
    collector = _Collector(types)
    for root in roots:
        root.visit(collector)
    return collector.found


def _walk_calls(module: cst.Module) -> list[cst.Call]:
    return [n for n in _collect([module], (cst.Call,)) if isinstance(n, cst.Call)]


def _names_in(roots: Sequence[cst.CSTNode]) -> list[cst.Name]:
    return [n for n in _collect(roots, (cst.Name,)) if isinstance(n, cst.Name)]


def _contains(root: cst.CSTNode, node_type: type[cst.CSTNode]) -> bool:
    return bool(_collect([root], (node_type,)))


def analyze_module(module: cst.Module, apis: ApiTable) -> ModuleFacts:
    facts = LibcstAnalyzer(module, apis).analyze()
    _adopt_fast_reasons(facts, module, apis)
    return facts


def _adopt_fast_reasons(facts: ModuleFacts, module: cst.Module, apis: ApiTable) -> None:
    """Why a hoist is unsafe is decided once, by the stdlib-ast analysis (`hoist_safety`); the fixer's
    facts take its reasons so that check mode and `--fix` agree (bridge until the fixer uses it directly)."""
    import ast

    from .fast_backend import analyze_source

    try:
        fast = analyze_source(ast.parse(module.code), module.code, apis)
    except (SyntaxError, ValueError, RecursionError):
        return  # syntax newer than this interpreter: keep LibCST's own reasons
    reasons = {(f.kind, f.span): f.unfixable_reasons for u in fast.uses for f in u.functions if f.nested}
    for use in facts.uses:
        for fn in use.functions:
            if fn.nested and (fn.kind, fn.span) in reasons:
                fn.unfixable_reasons = list(reasons[fn.kind, fn.span])


__all__ = ["LibcstAnalyzer", "analyze_module"]
