"""Callee resolution: which mask API (or pass-through helper) a call reaches, through imports, aliases,
`partial`, `torch.compile` and the like, and which of its arguments is the mask function."""

from __future__ import annotations

import ast
from collections.abc import Sequence

from ..core.apis import MASK_COMBINATORS, PARTIAL, TRANSPARENT_WRAPPERS, ApiTable, MaskApi
from .model import MaskUse
from .resolution import Resolver
from .syntax import Argument, call_arguments, may_return_callable

_WRAPPING = TRANSPARENT_WRAPPERS | {PARTIAL}


class ResolvedApi:
    __slots__ = ("api", "direct", "helper", "mask_bound", "offset")

    def __init__(
        self,
        api: MaskApi,
        offset: int = 0,
        mask_bound: bool = False,
        helper: PassThrough | None = None,
        direct: bool = False,
    ) -> None:
        self.api = api
        self.offset = offset
        self.mask_bound = mask_bound
        self.helper = helper
        self.direct = direct  # the callee itself names the API (no wrapper, alias variable or partial)


class PassThrough:
    """A module-level function that passes one of its parameters on as an API's mask function:
    `def make(mask_mod, n): return create_block_mask(mask_mod, None, None, n, n)`. Calls of it are
    checked as calls of the API, with the arguments of the call inside it."""

    __slots__ = ("api", "inner", "name")

    def __init__(self, name: str, api: MaskApi, inner: MaskUse) -> None:
        self.name = name
        self.api = api
        self.inner = inner


class Callees:
    """Resolves callees against the API table (and the module's pass-through helpers)."""

    def __init__(self, resolver: Resolver, apis: ApiTable, helpers: dict[str, PassThrough]) -> None:
        self.apis = apis
        self.helpers = helpers
        self.parent = resolver.parent
        self.scopes = resolver.scopes
        self.bindings = resolver.bindings
        self.qualified_names = resolver.qualified_names

    def resolve_callable(self, expr: ast.expr, seen: set[int]) -> list[ResolvedApi]:
        if id(expr) in seen:
            return []
        seen.add(id(expr))
        if isinstance(expr, (ast.Name, ast.Attribute)):
            qualified = sorted(self.qualified_names(expr))
            found = [ResolvedApi(api, direct=True) for q in qualified if (api := self.apis.get(q))]
            found += [ResolvedApi(h.api, helper=h) for q in qualified if (h := self.helpers.get(q))]
            if found:
                return found
            if isinstance(expr, ast.Name):
                for binding in self.bindings(expr):
                    value = binding.value if binding.kind == "store" else None
                    if isinstance(value, ast.Call):
                        found.extend(self.resolve_wrapper_call(value, seen))
                    elif isinstance(value, (ast.Name, ast.Attribute)):
                        found.extend(self.resolve_callable(value, seen))  # `cbm2 = cbm`
            return found
        if isinstance(expr, ast.Call):
            return self.resolve_wrapper_call(expr, seen)
        return []

    def resolve_wrapper_call(self, call: ast.Call, seen: set[int]) -> list[ResolvedApi]:
        names = self.qualified_names(call.func)
        args = call_arguments(call)
        returned = self.helper_result(call)
        if returned is not None:  # `def compiled(): return torch.compile(flex_attention)` ... `compiled()(q, k, v)`
            return self.resolve_callable(returned, seen)
        if not args or args[0].keyword is not None or args[0].star:
            return []
        inner = args[0].value
        if names & TRANSPARENT_WRAPPERS:
            return self.resolve_callable(inner, seen)
        if PARTIAL in names:
            bound = args[1:]
            if any(a.star for a in bound):
                return []
            n_positional = sum(1 for a in bound if a.keyword is None)
            keywords = {a.keyword for a in bound if a.keyword is not None}
            result = []
            for r in self.resolve_callable(inner, seen):
                offset = r.offset + n_positional
                mask_bound = (
                    r.mask_bound
                    or r.api.mask_keyword in keywords
                    or (r.api.mask_position is not None and r.api.mask_position < offset)
                )
                result.append(ResolvedApi(r.api, offset, mask_bound))
            return result
        return []

    def helper_result(self, call: ast.Call) -> ast.expr | None:
        """What a call of a def of this module gives, when that def ends in `return <wrappers of a module-level
        name>` (`return torch.compile(flex_attention, dynamic=False)`), its name is bound only to it and nothing
        but transparent wrappers decorate it (`@functools.cache`). Only such a return: its text then spells
        a name the relevance filter knows, so the callers are visited whether or not the filter is on."""
        if not isinstance(call.func, ast.Name):
            return None
        bindings = self.bindings(call.func)
        if len(bindings) != 1 or bindings[0].kind != "def" or not isinstance(bindings[0].node, ast.FunctionDef):
            return None
        node = bindings[0].node
        last = node.body[-1]
        if not isinstance(last, ast.Return) or last.value is None or id(node) not in self.scopes.function_scope:
            return None
        if not may_return_callable(last.value):  # the relevance filter reads helpers by the same test
            return None
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if not self.qualified_names(target) & TRANSPARENT_WRAPPERS:
                return None
        inner: ast.expr = last.value
        while isinstance(inner, ast.Call) and inner.args and self.qualified_names(inner.func) & _WRAPPING:
            inner = inner.args[0]
        base = inner
        while isinstance(base, ast.Attribute):
            base = base.value
        if not isinstance(base, ast.Name) or not all(b.scope.kind == "module" for b in self.bindings(base)):
            return None  # a local of the helper: not a name the text of the return need spell
        return last.value

    # ----------------------------------------------------------------- mask arguments
    @staticmethod
    def mask_argument(args: Sequence[Argument], resolved: ResolvedApi) -> Argument | None:
        if resolved.mask_bound:
            return None
        api = resolved.api
        for arg in args:
            if arg.keyword is not None and arg.keyword == api.mask_keyword:
                return arg
        if api.mask_position is None:
            return None
        index = api.mask_position - resolved.offset
        positionals: list[Argument] = []
        for arg in args:
            if arg.keyword is not None or arg.star:
                break  # positions after `*args` are unknown; those before it are not
            positionals.append(arg)
        return positionals[index] if 0 <= index < len(positionals) else None

    def is_mask_argument(self, expr: ast.expr) -> bool:
        """Is `expr` passed where a mask API (directly, or bound by `partial`) or a combinator takes a mask?"""
        call = self.parent(expr)
        call = self.parent(call) if isinstance(call, ast.keyword) else call
        if not isinstance(call, ast.Call):
            return False
        args = call_arguments(call)
        if self.qualified_names(call.func) & MASK_COMBINATORS:
            return any(a.value is expr and not a.star and a.keyword is None for a in args)
        candidates = [(args, r) for r in self.resolve_callable(call.func, set())]
        if args and not args[0].star and args[0].keyword is None and PARTIAL in self.qualified_names(call.func):
            candidates += [(args[1:], r) for r in self.resolve_callable(args[0].value, set())]
        return any((arg := self.mask_argument(a, r)) is not None and arg.value is expr for a, r in candidates)
