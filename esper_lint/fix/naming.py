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

import ast
import builtins
import keyword
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..analysis.module_names import ModuleLevelNames

_BUILTINS = frozenset(dir(builtins))


class ModuleNames:
    """What the module already uses at module level (the analysis' `ModuleLevelNames`), plus the names
    this fix has handed out."""

    def __init__(self, module: ModuleLevelNames) -> None:
        self.module = module
        self.taken: set[str] = set()

    def usable(self, name: str, shadowing: frozenset[str], inside: ast.AST | None = None) -> bool:
        """Can a new module-level `name` be read where the hoist puts it? `shadowing`: names a scope on a
        reader's lookup path binds (from the analysis, Python's scoping rules); `inside`: the def whose
        local the hoisted function is (its own uses of the name are no module-level uses)."""
        if not name.isidentifier() or keyword.iskeyword(name) or name in _BUILTINS or name in self.taken:
            return False
        return name not in shadowing and not self.module.uses(name, inside)

    def choose(self, base: str, shadowing: frozenset[str], inside: ast.AST | None = None) -> str:
        for candidate in _candidates(base):
            if self.usable(candidate, shadowing, inside):
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


def lambda_base_name(
    enclosing: str | None, variable: str | None, role: str = "mask_mod", lam: ast.Lambda | None = None
) -> str:
    """`mask = lambda ...` (or `mask := lambda ...`) keeps `mask`; an inline lambda that says what it does
    is named for it (`lambda b, h, q, kv: q >= kv` is `causal_mask`); any other inline lambda in `build`
    becomes `build_mask_mod`.

    `role` is the parameter the lambda is passed as (`mask_mod`, `score_mod`). The stem comes from the
    enclosing function, without test-runner prefixes or runs of underscores, and at most a few words
    (`test_sandwich_flex_matches_sdpa` gives `sandwich_flex_mask_mod`); a dunder method (`__init__`)
    says nothing about the mask, so its class names it instead; a stem already ending in the role's first
    word (`_mask`) is not repeated (`mask_mod`, not `mask_mask_mod`)."""
    if variable and variable != "<lambda>":
        return def_base_name(variable)
    known = _what_it_does(lam) if lam is not None and role == "mask_mod" else None
    if known is not None:
        return known
    full = _enclosing_stem(enclosing)
    stem = _uncollected(full)
    if stem is None:
        return f"{role}_{_short(full)}"  # `testing` -> `mask_mod_testing`
    stem = _short(stem)
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


_STEM_LENGTH = 16  # characters of whole words kept from the enclosing function's name
_LINKING_WORDS = frozenset(
    {"a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "or", "over", "the", "to", "vs", "with"}
)


def _short(stem: str) -> str:
    """The first words of `stem`, up to _STEM_LENGTH characters (always at least one word)."""
    words = stem.split("_")
    kept = words[:1]
    for word in words[1:]:
        if len("_".join([*kept, word])) > _STEM_LENGTH:
            break
        kept.append(word)
    while len(kept) > 1 and kept[-1].lower() in _LINKING_WORDS:  # `run_checks_over` -> `run_checks`
        kept.pop()
    return "_".join(kept)


def _what_it_does(lam: ast.Lambda) -> str | None:
    """A name for the few masks recognisable at a glance: `q >= kv` (or `kv <= q`) is causal."""
    params = [*lam.args.posonlyargs, *lam.args.args]
    body = lam.body
    if len(params) != 4 or not isinstance(body, ast.Compare) or len(body.ops) != 1:
        return None
    left, right = body.left, body.comparators[0]
    if not (isinstance(left, ast.Name) and isinstance(right, ast.Name)):
        return None
    q, kv = params[2].arg, params[3].arg
    op = body.ops[0]
    if (isinstance(op, ast.GtE) and (left.id, right.id) == (q, kv)) or (
        isinstance(op, ast.LtE) and (left.id, right.id) == (kv, q)
    ):
        return "causal_mask"
    return None


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
