"""Names imported from other modules of the checked project: what the analysis may ask about them, and the
facts it builds from the answers (a `MaskFunction` defined elsewhere).

The analysis never reads another file. Orchestration (`esper_lint/project.py`) answers `ProjectNames`
from its index of the project's modules (what each module offers is computed by `module_exports.py`
from that module alone), and records every question with its answer, so that a cached result is reused
only while the answers it used still hold.

An answer is an `Imported`: the exported entry (plain JSON values, as the cache keeps them) and the
defining file, relative to the project root. Entry kinds (`module_exports.py` writes them):
- `mask`: the name is a function object (a def, a lambda, a combination, a factory's result) usable as a
  mask function; `functions` lists what it may be, `known` whether that list is complete.
- `factory`: calling the name returns such functions (`functions`, `known`).
- `alias`: the name is a mask API under another name (`apis`: qualified name, bound positions, mask bound),
  `compiled` when through `torch.compile`.
- `helper`: a function that passes one parameter on, unchanged, to a mask API as its mask function.
"""

from __future__ import annotations

import ast
import functools
import re
from typing import Any, Protocol

from ..core.apis import ApiTable
from ..core.span import Span
from .model import Capture, CaptureKind, FunctionKind, MaskFunction
from .relevance import RelevanceFilter
from .syntax import FUNCTIONS, SKIPPABLE, module_level_statements

# How many of a function's first positional parameters `module_exports` records the reads of (b, h, and
# `score_mod`'s h).
RECORDED_PARAMETERS = 3
DEFINED_ELSEWHERE = "it is defined in another module"


class Imported:
    """What another module of the project binds to a name."""

    __slots__ = ("entry", "name", "path")

    def __init__(self, name: str, entry: dict[str, Any], path: str) -> None:
        self.name = name  # the name in the module that defines it
        self.entry = entry
        self.path = path  # the defining file, relative to the project root (posix)

    @property
    def kind(self) -> str:
        return str(self.entry.get("kind", ""))

    def where(self, line: int | None = None) -> str:
        """`mypkg/masks.py:12`: where the messages say a function is defined."""
        return f"{self.path}:{line if line is not None else self.entry.get('line', 1)}"


class ProjectNames(Protocol):
    """The questions one module's analysis asks about the names it imports (absolute `mypkg.masks.causal`,
    or relative to the module's package: `.masks.causal`, as `Binding.qualified_names` spells them)."""

    def lookup(self, qualified: str, functions: bool) -> Imported | None:
        """What `qualified` is in the project. `functions`: a mask function or factory is wanted;
        otherwise only a mask API alias or pass-through helper (asked for every imported callee)."""
        ...

    def module(self, module: str) -> tuple[bool, bool] | None:
        """None unless `module` is a module of the project; else whether it is a package, and whether it
        spells a mask API's name (only such a module can bind an alias or helper)."""
        ...


class ProjectSource(Protocol):
    """What a run hands the engine: the `ProjectNames` of each file it checks (None: no project)."""

    def names_for(self, path: str) -> ProjectNames | None: ...


def imported_functions(imported: Imported, called: bool) -> tuple[list[MaskFunction], bool] | None:
    """The mask functions an imported name stands for: itself (`called` False) or what calling it returns
    (`called` True). None when the entry says nothing about that use."""
    entry = imported.entry
    if imported.kind != ("factory" if called else "mask"):
        return None
    functions = [_function(imported, item) for item in entry.get("functions", ())]
    return functions, bool(entry.get("known")) and bool(functions)


def _function(imported: Imported, item: dict[str, Any]) -> MaskFunction:
    line = int(item.get("line", 1))
    fn = MaskFunction(
        kind=FunctionKind.LAMBDA if item.get("lambda") else FunctionKind.DEF,
        name=str(item.get("name", imported.name)),
        span=Span(line, 1, line, 1),
        enclosing=item.get("enclosing"),
    )
    fn.captures = [Capture(str(n), CaptureKind(k), str(s)) for n, k, s in item.get("captures", ())]
    fn.factory = item.get("factory")
    fn.defined_in = imported.where(line)
    fn.known_reads = tuple(str(r) for r in item.get("reads", ()))
    fn.unfixable_reasons.append(DEFINED_ELSEWHERE)
    return fn


def import_qualified_name(module: str | None, level: int, name: str) -> str:
    """`from ..pkg import name` -> `..pkg.name`, as `Binding.qualified_names` spells it."""
    prefix = "." * level + (module or "")
    if not prefix:
        return name
    return f"{prefix}{name}" if prefix.endswith(".") else f"{prefix}.{name}"


def imported_callable_spellings(
    tree: ast.Module, text: str, project: ProjectNames, apis: ApiTable, relevant: RelevanceFilter
) -> frozenset[str]:
    """Names this module imports at module level that reach a mask API through another project module,
    for the relevance filter (`relevant`, built without them) to visit the code that spells them, as it
    does for the APIs' own names; and the attributes called on a project module that spells an API
    (`attn.make_block_mask(...)` after `import pkg.attn as attn`), which the analysis then resolves.
    Only a project module that spells an API's name can bind an alias or helper: one question per import
    statement settles most of them."""
    words: set[str] = set()
    names: dict[str, list[str]] = {}  # local name -> qualified names it may be
    for stmt in module_level_statements(tree.body):
        if isinstance(stmt, ast.ImportFrom) and stmt.module != "__future__":
            source = project.module("." * stmt.level + (stmt.module or ""))
            for alias in stmt.names:
                qualified = import_qualified_name(stmt.module, stmt.level, alias.name)
                local = alias.asname or alias.name
                if alias.name == "*" or apis.get(qualified) is not None:
                    continue
                if source is not None and source[1]:  # the module spells an API: perhaps an alias or helper
                    names.setdefault(local, []).append(qualified)
                if (source is not None and source[0]) or (source is None and stmt.level):  # perhaps a submodule
                    words |= _called_attributes(text, local, qualified, project)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                words |= _called_attributes(text, alias.asname or alias.name, alias.name, project)
    if names:  # only the code the filter would skip needs them: a name it does not spell asks nothing
        skipped = _skipped_text(tree, relevant)
        words.update(
            local
            for local, qualified in names.items()
            if _has_word(skipped, local) and any(project.lookup(q, False) for q in qualified)
        )
    return frozenset(words)


def _has_word(text: str, word: str) -> bool:
    """`word` occurs in `text` as a whole identifier (str.find: much faster than a `\\b` pattern)."""
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        if not _continues(text, start - 1) and not _continues(text, end):
            return True
        start = text.find(word, end)
    return False


def _continues(text: str, index: int) -> bool:
    return 0 <= index < len(text) and (text[index].isalnum() or text[index] == "_")


def _skipped_text(tree: ast.Module, relevant: RelevanceFilter) -> str:
    """The text of the top-level defs and classes (and methods of top-level classes) `relevant` skips."""
    parts: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, SKIPPABLE) and not relevant(stmt):
            parts.append(relevant.skipped[id(stmt)])
        elif isinstance(stmt, ast.ClassDef):
            parts += [relevant.skipped[id(s)] for s in stmt.body if isinstance(s, FUNCTIONS) and not relevant(s)]
    return "\n".join(parts)


def _called_attributes(text: str, local: str, module: str, project: ProjectNames) -> set[str]:
    """The attributes called on `local` (`attn.make_block_mask(`) that module `module` binds to an API
    alias or helper (none unless `module` is a project module that spells an API)."""
    found = project.module(module)
    if found is None or not found[1]:
        return set()
    called: set[str] = set()
    prefix = local + "."
    start = text.find(prefix)
    while start != -1:
        end = start + len(prefix)
        attribute = _call().match(text, end)
        if attribute is not None and (
            start == 0 or not (text[start - 1].isidentifier() or text[start - 1] in ".0123456789")
        ):
            called.add(attribute.group(1))
        start = text.find(prefix, end)
    return {name for name in called if project.lookup(f"{module}.{name}", functions=False) is not None}


@functools.cache
def _call() -> re.Pattern[str]:
    return re.compile(r"(\w+)[ \t]*\(")  # compiled on first use: few modules import one that spells an API
