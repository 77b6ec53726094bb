"""Names bound once to a literal: `heads = 1` at module level (or `H = 1` two lines above the call) makes
`create_block_mask(..., H=heads)` the same call as `H=1`.

A name is such a constant only when its scope binds it exactly once, by a plain `name = <literal>`, never
deletes it, and no `global`/`nonlocal` elsewhere redirects a binding into that scope (the one binding
would then not be the only one). Whatever runs, a read of the name either sees that literal or fails.
"""

from __future__ import annotations

import ast

from .resolution import Resolver


def bound_literal(name: ast.Name, resolver: Resolver) -> ast.Constant | None:
    """The literal `name` always holds where it is read, or None."""
    bindings = resolver.bindings(name)
    if len(bindings) != 1:
        return None
    binding = bindings[0]
    value = binding.value
    if binding.kind != "store" or not isinstance(value, ast.Constant) or value.value is Ellipsis:
        return None
    scope = binding.scope
    if len(scope.bindings.get(name.id, ())) != 1 or name.id in scope.deleted:
        return None  # another binding later in the scope (the access sees only earlier ones), or `del`
    statement = resolver.parent(binding.node) if binding.node is not None else None
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and statement.targets[0] is binding.node:
        return value
    if isinstance(statement, ast.AnnAssign) and statement.target is binding.node:
        return value
    return None  # chained, tuple and walrus bindings are left alone
