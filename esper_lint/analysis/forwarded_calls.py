"""Calls that reach `flex_attention` through a module-level function forwarding its `**kwargs`.

`def fused(query, key, value, mask, **kwargs): return flex_attention(query, key, value, block_mask=mask,
**kwargs)` (often under `@torch.compile`) makes `fused(q, k, v, m, return_lse=True)` pass `return_lse=True` to
`flex_attention`. The keywords such a call gives that the function does not name as parameters are the
ones forwarded; ESP023 and ESP027 judge them as if written at `flex_attention` itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .model import CallArgument
from .resolution import Resolver
from .syntax import FUNCTIONS


def forwarders(resolver: Resolver, attention_calls: list[ast.Call]) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Module-level functions with a `flex_attention(..., **kwargs)` call forwarding their own `**kwargs`."""
    found: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    for call in attention_calls:
        function = resolver.enclosing_function(call)
        if not isinstance(function, FUNCTIONS) or resolver.parent(function) is not resolver.tree:
            continue
        kwarg = function.args.kwarg
        if kwarg is None or function in found:
            continue
        for keyword in call.keywords:
            value = keyword.value
            if (
                keyword.arg is None
                and isinstance(value, ast.Name)
                and value.id == kwarg.arg
                and any(b.node is kwarg for b in resolver.bindings(value))
            ):
                found.append(function)
                break
    return found


def forwarded_arguments(
    resolver: Resolver, function: ast.FunctionDef | ast.AsyncFunctionDef
) -> Iterator[tuple[ast.Call, dict[str, CallArgument]]]:
    """Each call of `function` (by a name bound only to it), with the keywords it forwards."""
    args = function.args
    named = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    positions = resolver.positions
    for name in list(resolver.scopes.names.get(function.name, ())):
        call = resolver.parent(name)
        if not (isinstance(call, ast.Call) and call.func is name and isinstance(name.ctx, ast.Load)):
            continue
        bindings = resolver.bindings(name)
        if not bindings or any(b.node is not function for b in bindings):
            continue
        forwarded = {
            k.arg: CallArgument(k.arg, positions.span(k.value), positions.span(k), None, k.value)
            for k in call.keywords
            if k.arg is not None and k.arg not in named
        }
        if forwarded:
            yield call, forwarded
