"""Callee resolution: which mask API (or pass-through helper) a call reaches, through imports, aliases,
`partial`, `torch.compile` and the like, and which of its arguments is the mask function."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

from ..core.apis import MASK_COMBINATORS, PARTIAL, TRANSPARENT_WRAPPERS, ApiTable, MaskApi
from .class_attributes import ClassAttributes
from .imported_names import ProjectNames
from .model import MaskUse
from .resolution import Resolver
from .scopes import Binding
from .syntax import Argument, call_arguments, may_return_callable

_WRAPPING = TRANSPARENT_WRAPPERS | {PARTIAL}

# What the analysis knows without asking the project: combinators, wrappers, `partial`.
_KNOWN_ELSEWHERE = MASK_COMBINATORS | TRANSPARENT_WRAPPERS | {PARTIAL}


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


def _resolution_key(resolved: ResolvedApi) -> tuple[str, int, bool, str]:
    helper = resolved.helper.name if resolved.helper is not None else ""
    return resolved.api.qualified_name, resolved.offset, resolved.mask_bound, helper


class PassThrough:
    """A module-level function that passes one of its parameters on as an API's mask function:
    `def make(mask_mod, n): return create_block_mask(mask_mod, None, None, n, n)`. Calls of it are
    checked as calls of the API, with the arguments of the call inside it."""

    __slots__ = ("api", "constants", "defined_in", "inner", "name")

    def __init__(self, name: str, api: MaskApi, inner: MaskUse | None) -> None:
        self.name = name
        self.api = api
        self.inner = inner  # None for a helper another module of the project defines:
        self.defined_in: str | None = None  # ... then where (`mypkg/attn.py:30`)
        # ... and the arguments of its API call that are constants there (`B=None`), by parameter name.
        self.constants: dict[str, object] = {}


class Callees:
    """Resolves callees against the API table (and the module's pass-through helpers)."""

    def __init__(
        self,
        resolver: Resolver,
        apis: ApiTable,
        helpers: dict[str, PassThrough],
        project: ProjectNames | None = None,
    ) -> None:
        self.apis = apis
        self.helpers = helpers
        self.project = project
        self.parent = resolver.parent
        self.scopes = resolver.scopes
        self.bindings = resolver.bindings
        self.qualified_names = resolver.qualified_names
        self.imported_names = resolver.imported_names
        self._imported: dict[str, tuple[list[ResolvedApi], bool]] = {}  # qualified name -> APIs, compiled
        self.class_attributes = ClassAttributes(resolver)

    def resolve_callable(self, expr: ast.expr, seen: set[int]) -> list[ResolvedApi]:
        if id(expr) in seen:
            return []
        seen.add(id(expr))
        if isinstance(expr, ast.Name) and len(bindings := self.bindings(expr)) > 1:
            return self.resolve_bindings(bindings, seen)
        if isinstance(expr, (ast.Name, ast.Attribute)):
            qualified = sorted(self.qualified_names(expr))
            found = [ResolvedApi(api, direct=True) for q in qualified if (api := self.apis.get(q))]
            found += [ResolvedApi(h.api, helper=h) for q in qualified if (h := self.helpers.get(q))]
            if not found and self.project is not None:
                imported = self.imported_qualified_names(expr, qualified)
                found = [r for q in imported for r in self.imported_callable(q)[0]]
            if found:
                return found
            if isinstance(expr, ast.Name):
                for binding in self.bindings(expr):
                    value = binding.value if binding.kind == "store" else None
                    if isinstance(value, ast.Call):
                        found.extend(self.resolve_wrapper_call(value, seen))
                    elif isinstance(value, (ast.Name, ast.Attribute)):
                        found.extend(self.resolve_callable(value, seen))  # `cbm2 = cbm`
            else:
                values = self.attribute_values(expr)  # `Cls.compiled_cbm = torch.compile(create_block_mask)`
                found = self.resolve_values(values, seen) if values else []
            return found
        if isinstance(expr, ast.Call):
            return self.resolve_wrapper_call(expr, seen)
        return []

    def resolve_bindings(self, bindings: list[Binding], seen: set[int]) -> list[ResolvedApi]:
        """A name with several bindings is an API only when each binding that could be called is that same
        API (`flex_attention = torch.compile(flex_attention)`; a `= None` fallback cannot be called): one
        that may be another function (a shim `def flex_attention`, a wrapper) makes it unknown, as Python
        would call whichever ran last."""
        answers: list[list[ResolvedApi]] = []
        for binding in bindings:
            value = binding.value if binding.kind == "store" else None
            if isinstance(value, ast.Constant) and value.value is None:
                continue
            qualified = sorted(binding.qualified_names(binding.name))
            found = [ResolvedApi(api, direct=True) for q in qualified if (api := self.apis.get(q))]
            found += [ResolvedApi(h.api, helper=h) for q in qualified if (h := self.helpers.get(q))]
            if not found and isinstance(value, ast.Call):
                found = self.resolve_wrapper_call(value, set(seen))  # each binding resolved on its own
            elif not found and isinstance(value, (ast.Name, ast.Attribute)):
                found = self.resolve_callable(value, set(seen))  # `cbm2 = cbm`
            answers.append(found)
        keys = {tuple(sorted(_resolution_key(r) for r in found)) for found in answers}
        return answers[0] if len(keys) == 1 and answers else []

    def attribute_values(self, expr: ast.Attribute) -> list[ast.expr] | None:
        """`Cls.attr` / `cls.attr` / `self.attr`, a class attribute of this module: the values other than `None`
        written to it (class_attributes.py); None when it is not one or a write is unknown."""
        values = self.class_attributes.values(expr)
        if values is None:
            return None
        return [v for v in values if not (isinstance(v, ast.Constant) and v.value is None)]

    def resolve_values(self, values: list[ast.expr], seen: set[int]) -> list[ResolvedApi]:
        """The API every one of `values` is (as `resolve_bindings`: one that is another function, or none,
        makes it unknown)."""
        answers = [self.resolve_callable(v, set(seen)) for v in values]
        keys = {tuple(sorted(_resolution_key(r) for r in found)) for found in answers}
        if len(keys) != 1 or not answers[0]:
            return []
        return [ResolvedApi(r.api, r.offset, r.mask_bound, r.helper) for r in answers[0]]  # never `direct`

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

    # ----------------------------------------------------------------- names from other project modules
    def imported_qualified_names(self, expr: ast.expr, qualified: Iterable[str] | None = None) -> set[str]:
        """The qualified names of `causal` / `m.causal` when it is bound by imports only (else none), less
        the names of torch's and functools' own functions (no project defines those). `qualified`: those
        of `expr`, when the caller has them (every unresolved callee asks: not resolved twice)."""
        names: Iterable[str] = ()
        if isinstance(expr, ast.Attribute):
            names = self.imported_names(expr) if qualified is None else self._under_import(expr, qualified)
        elif isinstance(expr, ast.Name):
            bindings = self.bindings(expr)
            if bindings and all(b.kind == "import" for b in bindings):
                names = self.qualified_names(expr) if qualified is None else qualified
        return {q for q in names if self.project_may_define(q)}

    def _under_import(self, expr: ast.Attribute, qualified: Iterable[str]) -> Iterable[str]:
        """`qualified` when the name under `expr` (`m` of `m.causal`) is bound by an import (as
        `Resolver.imported_names`), else none."""
        base: ast.expr = expr
        while isinstance(base, ast.Attribute):
            base = base.value
        if not isinstance(base, ast.Name) or not any(b.kind == "import" for b in self.bindings(base)):
            return ()
        return qualified

    def project_may_define(self, qualified: str) -> bool:
        return self.apis.get(qualified) is None and qualified not in _KNOWN_ELSEWHERE

    def imported_callable(self, qualified: str) -> tuple[list[ResolvedApi], bool]:
        """The mask APIs a name imported from another project module reaches (an alias of an API, or a
        pass-through helper), and whether it is compiled (`torch.compile(create_block_mask)`)."""
        known = self._imported.get(qualified)
        if known is not None:
            return known
        found: list[ResolvedApi] = []
        imported = self.project.lookup(qualified, functions=False) if self.project is not None else None
        entry = imported.entry if imported is not None else {}
        if imported is not None and imported.kind == "alias":
            for name, offset, mask_bound in entry.get("apis", ()):
                api = self.apis.get(str(name))
                if api is not None:
                    found.append(ResolvedApi(api, int(offset), bool(mask_bound)))
        elif imported is not None and imported.kind == "helper":
            base = self.apis.get(str(entry.get("api")))
            position = entry.get("position")
            if base is not None and isinstance(position, int):
                keyword = str(entry.get("keyword", ""))
                api = MaskApi(base.qualified_name, position, keyword, base.builds_block_mask, base.role)
                helper = PassThrough(imported.name, api, None)
                helper.defined_in = imported.where()
                helper.constants = {str(k): v for k, v in entry.get("constants", ())}
                found.append(ResolvedApi(api, helper=helper))
        result = self._imported[qualified] = (found, bool(found) and bool(entry.get("compiled")))
        return result

    def imported_wrappers(self, expr: ast.expr) -> set[str]:
        """`torch.compile` when `expr` names a compiled API alias or helper of another project module."""
        if self.project is None:
            return set()
        compiled = any(self.imported_callable(q)[1] for q in self.imported_qualified_names(expr))
        return {"torch.compile"} if compiled else set()

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
