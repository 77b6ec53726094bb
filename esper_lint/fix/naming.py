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
import re
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


# Names test runners pick up by themselves at module level: pytest collects `test*` functions (and
# `Test*` classes) and calls `setup_module`/`teardown_function`/... and `pytest_*` hooks; unittest calls
# `setUpModule`/`tearDownModule` and `load_tests`. Matched in any case, as runners can be configured.
_COLLECTED_PREFIX = re.compile(r"^(?:test|setup|teardown|pytest|load_tests)", re.IGNORECASE)


def def_base_name(name: str) -> str:
    """A nested `def` keeps its name, unless a test runner would collect it at module level: `test_causal`
    becomes `causal` (its uses are renamed with it)."""
    if not _COLLECTED_PREFIX.match(name):
        return name
    stem = _uncollected(_tidy(name))
    return f"mask_{_tidy(name)}" if stem is None else stem or "mask_mod"


def lambda_base_name(enclosing: str | None, variable: str | None, role: str = "mask_mod") -> str:
    """`mask = lambda ...` keeps `mask`; an inline lambda in `build` becomes `build_mask_mod`.

    `role` is the parameter the lambda is passed as (`mask_mod`, `score_mod`). The stem comes from the
    enclosing function, without test-runner prefixes or runs of underscores; a dunder method (`__init__`)
    says nothing about the mask, so its class names it instead; a stem already ending in the role's first
    word (`_mask`) is not repeated (`mask_mod`, not `mask_mask_mod`)."""
    if variable and variable != "<lambda>":
        return def_base_name(variable)
    full = _enclosing_stem(enclosing)
    stem = _uncollected(full)
    if stem is None:
        return f"{role}_{full}"  # `testing` -> `mask_mod_testing`
    head = role.split("_", 1)[0]
    if not stem:
        return role
    if stem == head or stem.endswith(f"_{head}"):
        return f"{stem}{role[len(head) :]}"
    return f"{stem}_{role}"


def _enclosing_stem(enclosing: str | None) -> str:
    parts = [p for p in (enclosing or "").split(".") if p and p != "<lambda>"]
    while parts and parts[-1].startswith("__") and parts[-1].endswith("__"):
        parts.pop()  # `Server.__init__` -> `Server`
    if not parts:
        return ""
    stem = parts[-1]
    if stem[:1].isupper():  # a class name: CamelCase -> snake_case
        stem = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", stem).lower()
    return _tidy(stem)


def _tidy(name: str) -> str:
    """No leading, trailing or repeated underscores."""
    return re.sub(r"_+", "_", name).strip("_")


def _uncollected(stem: str) -> str | None:
    """`stem` without the prefixes test runners collect, as separate words (`test_causal` -> `causal`,
    `setUpModule` -> `Module`); None when the prefix is glued to the rest (`testing`): no word to drop."""
    while stem and (match := _COLLECTED_PREFIX.match(stem)):
        rest = stem[match.end() :]
        if rest and not rest.startswith("_") and not (rest[0].isupper() and match.group()[-1].islower()):
            return None
        stem = _tidy(rest)
    return stem
