"""Names for hoisted functions: readable, deterministic, and never shadowing or rebinding anything.

A name is free for a hoist when
- nothing in the module binds it at module level (def, class, import, assignment, `global` writes),
- no code reads it as a module-level or builtin name (including names a star import may provide),
- it is not a keyword or a builtin, and
- between each place that will read it and module level, no function or class scope binds it (else
  that binding, not the hoisted function, would answer the lookup).
Candidates are tried in order: the function's own name, then `name_2`, `name_3`, ...
"""

from __future__ import annotations

import builtins
import keyword
from collections.abc import Iterable, Iterator

import libcst as cst
from libcst.metadata import BuiltinScope, GlobalScope, Scope

_BUILTINS = frozenset(dir(builtins))


class ModuleNames:
    """What the module already uses at module level, plus the names this fix has handed out."""

    def __init__(self, scopes: Iterable[Scope]) -> None:
        self.taken: set[str] = set()
        for scope in scopes:
            if isinstance(scope, GlobalScope):
                self.taken.update(a.name for a in scope.assignments)
            for access in scope.accesses:
                referents = access.referents
                if not referents or any(isinstance(r.scope, (GlobalScope, BuiltinScope)) for r in referents):
                    name = access.node.value if isinstance(access.node, cst.Name) else None
                    if name is not None:
                        self.taken.add(name)

    def usable(self, name: str, readers: Iterable[Scope], replaced: set[int]) -> bool:
        """Can module-level `name` be read from every scope in `readers`? `replaced`: ids of bindings going away."""
        if not name.isidentifier() or keyword.iskeyword(name) or name in _BUILTINS or name in self.taken:
            return False
        return not any(_bound_between(name, scope, replaced) for scope in readers)

    def choose(self, base: str, readers: list[Scope], replaced: set[int]) -> str:
        for candidate in _candidates(base):
            if self.usable(candidate, readers, replaced):
                self.taken.add(candidate)
                return candidate
        raise AssertionError("unreachable: the candidate sequence is infinite")


def _candidates(base: str) -> Iterator[str]:
    yield base
    n = 2
    while True:
        yield f"{base}_{n}"
        n += 1


def _bound_between(name: str, scope: Scope | None, replaced: set[int]) -> bool:
    """True when a function or class scope from `scope` up to module level binds `name` (other than `replaced`)."""
    while scope is not None and not isinstance(scope, (GlobalScope, BuiltinScope)):
        for assignment in scope.assignments[name]:
            if id(getattr(assignment, "node", None)) not in replaced:
                return True
        scope = scope.parent
    return False


def lambda_base_name(enclosing: str | None, variable: str | None) -> str:
    """`mask = lambda ...` keeps `mask`; an inline lambda in `build` becomes `build_mask_mod`."""
    if variable and variable != "<lambda>":
        return variable
    stem = (enclosing or "").rsplit(".", 1)[-1].lstrip("_")
    if not stem or stem == "<lambda>":
        return "mask_mod"
    return f"{stem}_mask_mod"
