"""Uses without a call: the mask and score functions of a FlexAttention module that no resolved call
passes (defined and never passed, returned by a factory, kept in a list or a dict), recognised by their
parameters (mask_shapes.py); and the route each function is reported with."""

from __future__ import annotations

import ast

from .mask_functions import MaskFunctions
from .mask_shapes import called_with_literal_number, signature_role
from .model import SIGNATURE_ONLY, MaskFunction, MaskUse, ModuleFacts
from .resolution import Resolver
from .syntax import FUNCTIONS, FuncNode


def name_routes(uses: list[MaskUse]) -> None:
    """`MaskFunction.route`: how the analysis reached a function that no use passes by name (the first
    use's route, in source order); None as soon as one use passes it directly."""
    routed: dict[int, str | None] = {}
    functions: dict[int, MaskFunction] = {}
    for use in uses:
        for fn in use.functions:
            functions[id(fn)] = fn
            route = use.routes.get(id(fn))
            if route is None:
                routed[id(fn)] = None
            else:
                routed.setdefault(id(fn), route)
    for key, fn in functions.items():
        fn.route = routed.get(key)


def signature_uses(resolver: Resolver, functions: MaskFunctions, facts: ModuleFacts) -> list[MaskUse]:
    """One use per def/lambda of the module whose signature is FlexAttention's and that no call reaches."""
    scopes = resolver.scopes
    reached = {id(f.ast_node) for use in facts.uses for f in use.functions}
    reached.update(id(f.ast_node) for call in facts.attention_calls for f in call.block_mask_functions)
    candidates: list[tuple[FuncNode, str, int]] = []
    for scope in list(scopes.made):
        node = scope.node
        if scope.kind != "function" or not isinstance(node, (*FUNCTIONS, ast.Lambda)) or id(node) in reached:
            continue
        in_class = isinstance(node, FUNCTIONS) and isinstance(resolver.parent(node), ast.ClassDef)
        shape = signature_role(node, in_class)
        if shape is not None:
            candidates.append((node, *shape))
    if not candidates:
        return []
    plain_python = _called_with_numbers(resolver, {_name_of(node, resolver)[0] for node, _, _ in candidates})
    uses: list[MaskUse] = []
    for node, role, bound in candidates:
        if id(node) in plain_python:
            continue
        name, binding = _name_of(node, resolver)
        fn = functions.mask_function(node, name, binding, bound, body_only=True)
        fn.route = f"recognised as a {role} by its parameters"
        use = MaskUse(SIGNATURE_ONLY, fn.span, fn.span, [fn], fn.enclosing, role=role, functions_known=True)
        use.by_signature = True
        uses.append(use)
    uses.sort(key=lambda u: u.arg_span)
    return uses


def _name_of(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, resolver: Resolver
) -> tuple[str, ast.AST | None]:
    if not isinstance(node, ast.Lambda):
        return node.name, node
    parent = resolver.parent(node)
    if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
        return parent.targets[0].id, parent.targets[0]
    return "<lambda>", None


def _called_with_numbers(resolver: Resolver, names: set[str]) -> set[int]:
    """Defs and lambdas this module calls with a number literal (`causal(0, 0, 3, 2)`): plain Python
    functions here, whatever their parameters are called. Defs the walk skipped that spell one of `names`
    are visited first (a test calling the function need not spell any API)."""
    scopes = resolver.scopes
    for name in sorted(names):
        for node in resolver.unseen_mentions(name):
            if isinstance(node, FUNCTIONS):
                scopes.skipped_body(node)
    found: set[int] = set()
    for call in scopes.calls:
        if not isinstance(call.func, ast.Name) or not called_with_literal_number(call):
            continue
        for binding in resolver.bindings(call.func):
            if binding.kind == "def" and binding.node is not None:
                found.add(id(binding.node))
            elif binding.kind == "store" and isinstance(binding.value, ast.Lambda):
                found.add(id(binding.value))
    return found
