"""Where a mask/score function object can go: the fixes of ESP024 and ESP025 are exact only when every
reference to the function is an argument of a call that fails on what the function returns today.

A module-level function may be imported and called by other modules, so only a lambda passed inline or a
def nested in a function qualifies: then every reference is in that function, found by name (nested
scopes that rebind the name aside: a superset, so a doubt declines).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence

from .captured_tensors import references
from .model import MaskFunction, MaskUse
from .name_bindings import function_binding


def passed_only_to(fn: MaskFunction, uses: Sequence[MaskUse], accepted: Callable[[MaskUse], bool]) -> bool:
    """Every reference to `fn` is the argument of a use `accepted` approves (and there is one)."""
    node = fn.ast_node
    arguments = {id(u.arg_node) for u in uses if accepted(u) and u.arg_node is not None}
    if isinstance(node, ast.Lambda):
        return id(node) in arguments  # passed inline: the call is its only reference
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.decorator_list:
        return False  # a decorator may keep or call the function
    outer = fn.outer_functions
    if not outer:
        return False
    enclosing = outer[-1]
    binding = function_binding(enclosing, node.name)
    if binding is None or len(binding.values) != 1:
        return False  # bound more than once, or in a class body, or declared global/nonlocal
    found = references(enclosing, node.name)
    return bool(found) and all(isinstance(r.ctx, ast.Load) and id(r) in arguments for r in found)
