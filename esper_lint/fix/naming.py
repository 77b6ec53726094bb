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
from collections.abc import Iterator

_BUILTINS = frozenset(dir(builtins))


class ModuleNames:
    """What the module already uses at module level (the analysis' `module_level_names`), plus the
    names this fix has handed out."""

    def __init__(self, taken: frozenset[str]) -> None:
        self.taken: set[str] = set(taken)

    def usable(self, name: str, shadowing: frozenset[str]) -> bool:
        """Can a new module-level `name` be read where the hoist puts it? `shadowing`: names a scope on a
        reader's lookup path binds (from the analysis, Python's scoping rules)."""
        if not name.isidentifier() or keyword.iskeyword(name) or name in _BUILTINS or name in self.taken:
            return False
        return name not in shadowing

    def choose(self, base: str, shadowing: frozenset[str]) -> str:
        for candidate in _candidates(base):
            if self.usable(candidate, shadowing):
                self.taken.add(candidate)
                return candidate
        raise AssertionError("unreachable: the candidate sequence is infinite")


def _candidates(base: str) -> Iterator[str]:
    yield base
    n = 2
    while True:
        yield f"{base}_{n}"
        n += 1


def lambda_base_name(enclosing: str | None, variable: str | None) -> str:
    """`mask = lambda ...` keeps `mask`; an inline lambda in `build` becomes `build_mask_mod`."""
    if variable and variable != "<lambda>":
        return variable
    stem = (enclosing or "").rsplit(".", 1)[-1].lstrip("_")
    if not stem or stem == "<lambda>":
        return "mask_mod"
    return f"{stem}_mask_mod"
