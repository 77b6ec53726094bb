"""The analysis of one module: every fact the rules and the fixer use, from one walk over the stdlib `ast`.

Checking, `--fix`/`--diff`, the flake8 plugin and the language server all run this (through
`engine.analyze_bytes`); there is no other implementation (docs/architecture.md says why). `ast.parse`
runs in C, and names are resolved in the same single walk (scopes.py). Spans are 1-based lines,
1-based *character* columns, end exclusive, parentheses excluded (as ruff and SARIF).

The parts, each asking only the ones before it:
scopes.py (the walk) -> resolution.py (names, places) -> callees.py (which API a call reaches) ->
hoist_sites.py (what a move touches) -> mask_functions.py (what a mask argument is) ->
call_sites.py (facts of one call) -> here: `MaskUse`s and `AttentionCall`s of the module, then
call_flow.py (where BlockMasks go, the options calls get: flow_model.CallFlow).
"""

from __future__ import annotations

import ast

from ..core.apis import FLEX_ATTENTION, PARTIAL, ApiTable, MaskApi
from ..core.span import Span
from .call_flow import CallFlowFacts
from .call_sites import CallSiteFacts
from .callees import Callees, PassThrough, ResolvedApi
from .hoist_sites import HoistSites
from .imported_names import ProjectNames, imported_callable_spellings
from .mask_functions import MaskFunctions
from .mask_shapes import FLEX_IMPORT, imports_flex_attention, names_an_index
from .model import CallArgument, HoistForm, MaskUse, ModuleFacts
from .positions import Positions
from .relevance import RelevanceFilter
from .resolution import Resolver
from .scopes import ScopeBuilder
from .signature_uses import name_routes, signature_uses
from .syntax import Argument, call_arguments


class ModuleAnalyzer:
    """The mask uses and attention calls of one module."""

    def __init__(
        self,
        tree: ast.Module,
        text: str,
        apis: ApiTable,
        helpers: dict[str, PassThrough] | None = None,
        project: ProjectNames | None = None,
    ) -> None:
        self.tree = tree
        self.text = text
        self.apis = apis
        self.positions = Positions(text)
        self.scopes = ScopeBuilder()
        self.helpers = helpers or {}
        self.spellings = apis.spellings() | frozenset(self.helpers)
        # In a module that may use FlexAttention, a definition that spells a key/value index parameter may hold
        # a mask known by its parameters alone (mask_shapes.py): it is walked in full too.
        self.may_import_flex = "flex_attention" in text and FLEX_IMPORT.search(text) is not None
        also = names_an_index if self.may_import_flex else None
        relevant = RelevanceFilter(tree, self.positions.lines, self.spellings, also)
        if project is not None:  # names imported from project modules that reach an API (imported_names.py)
            imported = imported_callable_spellings(tree, text, project, apis, relevant)
            if imported - self.spellings:
                self.spellings |= imported
                relevant = RelevanceFilter(tree, self.positions.lines, self.spellings, also)
        self.scopes.relevant = relevant
        self.scopes.visit(tree, self.scopes.module, None, None)
        resolver = Resolver(tree, text, self.positions, self.scopes)
        callees = Callees(resolver, apis, self.helpers, project)
        functions = MaskFunctions(resolver, callees, HoistSites(resolver))
        call_sites = CallSiteFacts(resolver, callees, apis, functions.resolve_mask_expr)
        self.callees = callees
        self.functions = functions
        self.call_sites = call_sites
        self.parent = resolver.parent
        self.bindings = resolver.bindings
        self.qualified_names = resolver.qualified_names
        self.enclosing_function = resolver.enclosing_function
        self.qualname = resolver.qualname
        self.resolve_callable = callees.resolve_callable
        self.mask_argument = callees.mask_argument
        self.resolve_mask_expr = functions.resolve_mask_expr
        self.resolver = resolver
        self.attention_call = call_sites.attention_call
        self.bind_arguments = call_sites.bind_arguments
        self.torch_in_scope = call_sites.torch_in_scope
        self.stable_callee = call_sites.stable_callee
        self.runs_every_forward = call_sites.runs_every_forward
        self.runs_under_plain_vmap = call_sites.runs_under_plain_vmap
        self.call_flow = CallFlowFacts(resolver, callees, call_sites, apis)

    def analyze(self) -> ModuleFacts:
        facts = ModuleFacts()
        spellings = self.spellings
        for call in list(self.scopes.calls):  # resolving a factory may visit more code, adding calls
            func = call.func
            # An attribute callee's qualified name ends with its attribute: only an API's own name
            # (or `partial`, for partial(create_block_mask, mask)) can resolve to something we check, or a
            # class attribute of this module (`Cls.compiled_cbm`: class_attributes.py).
            if (
                isinstance(func, ast.Attribute)
                and func.attr not in spellings
                and func.attr != "partial"
                and func.attr not in self.callees.class_attributes.names()
            ):
                continue
            resolved_apis = self.resolve_callable(func, set())
            attention = next((r for r in resolved_apis if r.api.qualified_name == FLEX_ATTENTION), None)
            if attention is not None and attention.offset == 0 and attention.helper is None:
                facts.attention_calls.append(self.attention_call(call))
            args = call_arguments(call)
            for resolved in resolved_apis:
                use = self.mask_use(call, args, resolved)
                if use is not None:
                    facts.uses.append(use)
                    break
            else:
                use = self.partial_binding_use(call)
                if use is not None:
                    facts.uses.append(use)
        facts.uses.sort(key=lambda u: (u.arg_span, u.api))
        name_routes(facts.uses)
        if self.may_import_flex and self.imports_flex(facts):
            facts.signature_uses = signature_uses(self.resolver, self.functions, facts)
        facts.call_flow = self.call_flow.collect(facts)
        return facts

    def imports_flex(self, facts: ModuleFacts) -> bool:
        """The module uses FlexAttention: an import of it or of something in it, or a call we resolved."""
        if facts.uses or facts.attention_calls:
            return True
        imports = [
            (name, b.qualified_names(name))
            for scope in self.scopes.made
            for name, bindings in scope.bindings.items()
            for b in bindings
            if b.kind == "import"
        ]
        return imports_flex_attention(imports)

    def pass_through_helpers(self, facts: ModuleFacts) -> dict[str, PassThrough]:
        """Module-level functions whose parameter goes, unchanged, to an API as its mask function."""
        helpers: dict[str, PassThrough] = {}
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
            helpers[caller.name] = PassThrough(caller.name, api, use)
        return helpers

    # ----------------------------------------------------------------- mask uses
    def partial_binding_use(self, call: ast.Call) -> MaskUse | None:
        if PARTIAL not in self.qualified_names(call.func):
            return None
        args = call_arguments(call)
        if not args or args[0].keyword is not None or args[0].star:
            return None
        for resolved in self.resolve_callable(args[0].value, set()):
            arg = self.mask_argument(args[1:], resolved)
            if arg is not None:
                return self.build_use(call, arg, resolved.api, bind=False)
        return None

    def mask_use(self, call: ast.Call, args: list[Argument], resolved: ResolvedApi) -> MaskUse | None:
        arg = self.mask_argument(args, resolved)
        if arg is None:
            return None
        use = self.build_use(call, arg, resolved.api, bind=resolved.offset == 0 and not resolved.mask_bound)
        if resolved.helper is not None:
            helper = resolved.helper
            use.via_helper = helper.name
            if helper.inner is not None:
                use.arguments = dict(helper.inner.arguments)
                use.plain_vmap = helper.inner.plain_vmap
            else:  # another project module's helper: its constant arguments, reported at this call
                use.via_helper_defined_in = helper.defined_in
                use.arguments = constant_arguments(helper.constants, self.positions.span(call.func))
                use.plain_vmap = False  # how it calls the API is not known here
            use.torch_in_scope = False  # the arguments are inside the helper: no fix rewrites them from here
        use.callee_is_api = resolved.direct and resolved.helper is None
        return use

    def build_use(self, call: ast.Call, arg: Argument, api: MaskApi, bind: bool) -> MaskUse:
        self.functions.start_routes()
        functions, all_known = self.resolve_mask_expr(arg.value, set())
        routes = self.functions.take_routes()
        caller = self.enclosing_function(call)
        # Functions returned by factory calls are new: ESP005 keeps judging what it judged before them.
        capture_free = (
            all_known
            and all(f.factory is None and not f.binds_values for f in functions)
            and all(not f.captures and not f.default_refs for f in functions)
        )
        per_forward = api.builds_block_mask and self.runs_every_forward(call, caller)
        # Only ESP010's fix reads whether `torch` and the callee are stable: asked only where it applies.
        compile_flag = any(k.arg == "_compile" for k in call.keywords)
        for f in functions:
            if f.site is not None and f.site.form is HoistForm.INLINE_LAMBDA:
                f.site.role = api.role  # names it: `..._score_mod` for a lambda passed as `score_mod`
        arguments = self.bind_arguments(call, api) if bind else {}
        use = MaskUse(
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
            arguments=arguments,
            callee_span=self.positions.span(call.func),
            torch_in_scope=compile_flag and self.torch_in_scope(call),
            call_node=call,
            callee_stable=compile_flag and self.stable_callee(call, api.qualified_name),
        )
        use.routes = {id(f): routes[id(f)] for f in functions if id(f) in routes}
        use.plain_vmap = bind and self.runs_under_plain_vmap(call, api.qualified_name, arguments)
        if "_compile" in arguments:
            use.callee_compiled = self.call_sites.callee_may_be_compiled(call)
            alias = self.call_sites.compiled_alias(call, api.qualified_name)
            use.compiled_alias_line = alias.lineno if alias is not None else None
        return use


def constant_arguments(constants: dict[str, object], span: Span) -> dict[str, CallArgument]:
    """A helper's constant API arguments (`B=None`) as arguments of the call that reaches it, at `span`."""
    return {
        name: CallArgument(name, span, None, None, ast.Constant(value))
        for name, value in constants.items()
        if value is None or isinstance(value, int)  # None, a size or a flag: what the cache can hold
    }


def analyze_source(tree: ast.Module, text: str, apis: ApiTable, project: ProjectNames | None = None) -> ModuleFacts:
    """Facts for a module parsed with `ast.parse(text)`; `project` answers about names imported from the
    other modules of the project (None: nothing is known of them)."""
    analyzer = ModuleAnalyzer(tree, text, apis, project=project)
    facts = analyzer.analyze()
    helpers = analyzer.pass_through_helpers(facts)
    analyzer.scopes.release()
    if not helpers:
        return facts
    # Calls of a pass-through helper are uses of its API: analyse again with the helpers known (and the
    # defs that call them visited in full).
    again = ModuleAnalyzer(tree, text, apis, helpers, project)
    facts = again.analyze()
    again.scopes.release()
    return facts
