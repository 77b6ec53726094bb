"""The literal keys of the `kernel_options` a `flex_attention` call receives (ESP023).

Followed: a dict display (`{"BLOCK_M": 64}`, with `**other` followed too), `dict(BLOCK_M=64)` and
`FlexKernelOptions(...)` (resolved by qualified name), and a variable every binding of which is one of those,
with the keys later set on it by `opts["KEY"] = v`, `opts.update(...)` or `opts.setdefault("KEY", v)`.
Anything else (a parameter, an attribute, a function's result) contributes no key: nothing is guessed.
"""

from __future__ import annotations

import ast

from ..core.apis import FLEX_MODULE
from ..core.span import Span
from .flow_model import KernelOptions, OptionKey
from .resolution import Resolver

_DICT_CALLS = frozenset({"builtins.dict", f"{FLEX_MODULE}.FlexKernelOptions"})
_MAX_DEPTH = 4


class KernelOptionKeys:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.positions = resolver.positions

    def of(self, value: ast.expr) -> KernelOptions | None:
        keys = self._keys(value, 0, set())
        if not keys:
            return None
        return KernelOptions(self.positions.span(value), tuple(keys))

    def _keys(self, expr: ast.expr, depth: int, seen: set[int]) -> list[OptionKey]:
        if depth > _MAX_DEPTH or id(expr) in seen:
            return []
        seen.add(id(expr))
        keys: list[OptionKey] = []
        if isinstance(expr, ast.Dict):
            for key, value in zip(expr.keys, expr.values, strict=True):
                if key is None:  # `**other`
                    keys += self._keys(value, depth + 1, seen)
                elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                    keys.append(OptionKey(key.value, self.positions.span(key), value))
        elif isinstance(expr, ast.Call) and self.resolver.qualified_names(expr.func) & _DICT_CALLS:
            keys += self._call_keys(expr, depth, seen)
        elif isinstance(expr, ast.IfExp):
            keys += self._keys(expr.body, depth + 1, seen) + self._keys(expr.orelse, depth + 1, seen)
        elif isinstance(expr, ast.Name):
            bindings = self.resolver.bindings(expr)
            if not bindings or any(b.kind != "store" or b.value is None for b in bindings):
                return []
            for binding in bindings:
                assert binding.value is not None
                keys += self._keys(binding.value, depth + 1, seen)
            keys += self._later_keys(expr, {id(b) for b in bindings}, depth, seen)
        return keys

    def _call_keys(self, call: ast.Call, depth: int, seen: set[int]) -> list[OptionKey]:
        keys: list[OptionKey] = []
        for arg in call.args[:1]:
            keys += self._keys(arg, depth + 1, seen)
        for keyword in call.keywords:
            if keyword.arg is None:
                keys += self._keys(keyword.value, depth + 1, seen)
            else:
                keys.append(OptionKey(keyword.arg, self._keyword_name_span(keyword), keyword.value))
        return keys

    def _keyword_name_span(self, keyword: ast.keyword) -> Span:
        """`BLOCK_m` in `dict(BLOCK_m=64)`: the keyword's name (an identifier, so on one line)."""
        line, column = self.positions.start(keyword)
        return Span(line, column + 1, line, column + 1 + len(keyword.arg or ""))

    def _later_keys(self, name: ast.Name, ids: set[int], depth: int, seen: set[int]) -> list[OptionKey]:
        """Keys set on the same variable: `opts["KEY"] = v`, `opts.update(...)`, `opts.setdefault("KEY", v)`."""
        keys: list[OptionKey] = []
        for other in self.resolver.scopes.names.get(name.id, ()):
            if other is name or not isinstance(other.ctx, ast.Load):
                continue
            if not any(id(b) in ids for b in self.resolver.bindings(other)):
                continue
            parent = self.resolver.parent(other)
            if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store):
                key = parent.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    assign = self.resolver.parent(parent)
                    value = assign.value if isinstance(assign, ast.Assign) else None
                    keys.append(OptionKey(key.value, self.positions.span(key), value))
            elif isinstance(parent, ast.Attribute) and parent.attr in ("update", "setdefault"):
                call = self.resolver.parent(parent)
                if not isinstance(call, ast.Call) or call.func is not parent:
                    continue
                if parent.attr == "update":
                    keys += self._call_keys(call, depth, seen)
                elif call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
                    value = call.args[1] if len(call.args) > 1 else None
                    keys.append(OptionKey(call.args[0].value, self.positions.span(call.args[0]), value))
        return keys
