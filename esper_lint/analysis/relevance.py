"""The relevance filter: which top-level defs and classes the scope walk must visit in full."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from ..core.span import first_line
from .syntax import (
    STATEMENT_BLOCKS,
    assigned_targets,
    class_body_attributes,
    may_return_callable,
    module_level_statements,
)

_Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


class RelevanceFilter:
    """Which top-level defs and classes can contain a call that reaches a mask API, judged on text.

    A call reaches an API through a name that spells the API (`create_block_mask`, `fa.create_mask`),
    an import alias of one (`... import create_block_mask as cbm`), or a module-level variable bound to
    a call that mentions one of these (`cbm2 = torch.compile(cbm)`), or a call of a module-level def whose
    final `return` mentions one (`compiled_flex()(q, k, v)` with `def compiled_flex(): return
    torch.compile(flex_attention)`), computed to a fixpoint. A def or class whose source mentions none of
    them, nor `global` (which could rebind a module name), cannot, so only the name it binds is recorded.
    Everything else is visited in full, and so is a definition that `also` accepts (in a module that imports
    FlexAttention: one that spells a key/value index parameter, maybe a mask known by its parameters).
    What a skipped definition spells stays available (`mentioning`, `words_beside`): an answer that claims to
    know every use of a name (a list's appends, a helper's callers) asks whether skipped code spells it.
    """

    def __init__(
        self,
        tree: ast.Module,
        lines: list[str],
        spellings: frozenset[str],
        also: Callable[[str], bool] | None = None,
    ) -> None:
        self.lines = lines
        self.also = also  # more text that makes a definition worth a full visit (mask_shapes.names_an_index)
        words = set(spellings) | {"global", "partial"}
        self.pattern = _word_pattern(words)
        aliases: list[tuple[str, str]] = []  # (bound name, text it depends on)
        # Module-level imports only: an alias imported inside a def binds a local of a def that spells
        # the API's name, and that def is visited in full anyway.
        for node in module_level_statements(tree.body):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.asname:
                        aliases.append((alias.asname, alias.name.rsplit(".", 1)[-1]))
        assigned: list[tuple[list[str], str]] = []
        for stmt in tree.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names:
                    assigned.append((names, self.segment(stmt)))
        # Class attributes of a module-level class (assigned in its body) that one of its statements sets to
        # something spelling an API (`cls.compiled_cbm = torch.compile(create_block_mask)`): a method calling
        # `Cls.compiled_cbm(...)` reaches it (class_attributes.py).
        for stmt in tree.body:
            if isinstance(stmt, ast.ClassDef):
                assigned.extend(self._class_attribute_writes(stmt))
        # Module-level defs ending in `return <value>`: a call of one gives what that value is, maybe an API
        # (`return torch.compile(flex_attention)`: callees.helper_returning). Only the return is read.
        returning = [
            (stmt.name, self.segment(last))
            for stmt in tree.body
            if isinstance(stmt, ast.FunctionDef)
            and isinstance(last := stmt.body[-1], ast.Return)
            and last.value is not None
            and may_return_callable(last.value)
        ]
        # To a fixpoint; each round searches the texts not yet matched for the words the last round added.
        # The API spellings' pattern is the same for every file (compiled once, in `re`'s cache); the words a
        # file adds are few and its own: looked for as substrings first, compiled only where one occurs.
        found: set[str] = set()
        new: set[str] = set(words)
        first = True
        while new:
            added: set[str] = set()
            for name, original in aliases:
                if name not in words and original in new:
                    added.add(name)
            for names, text in assigned:
                if any(n not in words for n in names) and (self.pattern.search(text) if first else _spells(text, new)):
                    added.update(names)
            for name, text in returning:
                if name not in words and (self.pattern.search(text) if first else _spells(text, new)):
                    added.add(name)
            first = False
            new = added - words
            words |= new
            found |= new
        self.extra = found  # words this file adds: aliases, variables and helpers reaching an API
        self._extra_pattern: re.Pattern[str] | None = None
        self._decided: dict[int, bool] = {}  # id(statement) -> relevant (the project's names ask first)
        self.skipped: dict[int, str] = {}  # id(statement) -> its text, for those it skips (and `mentioning`)

    def _class_attribute_writes(self, cls: ast.ClassDef) -> list[tuple[list[str], str]]:
        """The statements of `cls` that assign an attribute its body assigns (`attr = None` there, `cls.attr =
        ...`, `Cls.attr = ...`), each with that attribute; none unless the class spells an API's name."""
        names = class_body_attributes(cls)
        text = self.segment(cls) if names else ""
        if not names or not self.pattern.search(text):
            return []
        found: list[tuple[list[str], str]] = []
        for stmt in cls.body:  # `compiled = torch.compile(...)` in the body
            targets = assigned_targets(stmt)
            found.extend(([t.id], self.segment(stmt)) for t in targets if isinstance(t, ast.Name) and t.id in names)
        # `cls.attr = ...` anywhere in the class: only statements on the lines the text check finds are looked at,
        # and only statements are walked (a class of torch's runs to thousands of expression nodes).
        top = first_line(cls)
        hit = {top + text.count("\n", 0, m.start()) for m in _attribute_write(names).finditer(text)}
        stack: list[ast.AST] = list(cls.body) if hit else []
        while stack:
            node = stack.pop()
            targets = assigned_targets(node)
            if (
                targets
                and isinstance(node, ast.stmt)
                and any(node.lineno <= line <= (node.end_lineno or node.lineno) for line in hit)
            ):
                found.extend(
                    ([t.attr], self.segment(node)) for t in targets if isinstance(t, ast.Attribute) and t.attr in names
                )
            stack.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, STATEMENT_BLOCKS))
        return found

    def segment(self, node: ast.stmt) -> str:
        end = node.end_lineno or node.lineno
        return "".join(self.lines[first_line(node) - 1 : end])

    def __call__(self, node: ast.stmt) -> bool:
        decided = self._decided.get(id(node))
        if decided is None:
            text = self.segment(node)
            decided = self._decided[id(node)] = (
                self.pattern.search(text) is not None
                or (bool(self.extra) and self._spells_extra(text))
                or (self.also is not None and self.also(text))
            )
            if not decided:
                self.skipped[id(node)] = text
        return decided

    def _spells_extra(self, text: str) -> bool:
        if not any(w in text for w in self.extra):
            return False
        if self._extra_pattern is None:
            self._extra_pattern = _word_pattern(self.extra)
        return self._extra_pattern.search(text) is not None

    def words_beside(self, nodes: list[_Definition], word: str) -> frozenset[str]:
        """Every identifier spelled in the definitions among `nodes` that spell `word` (as a substring)."""
        found: set[str] = set()
        for node in nodes:
            text = self.skipped.get(id(node))
            if text is None:
                text = self.skipped[id(node)] = self.segment(node)
            if word in text:
                found.update(_IDENTIFIER.findall(text))
        return frozenset(found)

    def mentioning(self, nodes: list[_Definition], *words: str) -> list[_Definition]:
        """The definitions among `nodes` (ones the walk skipped) that spell every one of `words` as a word:
        they may read or change what a name holds, unseen by the analysis."""
        found = []
        patterns: list[re.Pattern[str]] | None = None  # compiled only when some text holds every word
        for node in nodes:
            text = self.skipped.get(id(node))
            if text is None:
                text = self.skipped[id(node)] = self.segment(node)
            if not all(w in text for w in words):
                continue
            if patterns is None:
                patterns = [re.compile(r"\b" + re.escape(w) + r"\b") for w in words]
            if all(p.search(text) for p in patterns):
                found.append(node)
        return found


_IDENTIFIER = re.compile(r"\w+")


def _spells(text: str, words: set[str]) -> bool:
    """`text` spells one of `words` as a word (a substring test first: most texts hold none of them)."""
    present = [w for w in words if w in text]
    return bool(present) and _word_pattern(set(present)).search(text) is not None


def _word_pattern(words: set[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, words))) + r")\b")


def _attribute_write(names: frozenset[str] | set[str]) -> re.Pattern[str]:
    """`.attr =` (or `.attr: T =`) for any of `names`: the text check that spares a walk of a class that
    assigns none of its attributes through an object."""
    alternatives = "|".join(sorted(map(re.escape, names)))
    return re.compile(rf"\.\s*(?:{alternatives})\s*\)*\s*(?::[^=\n]*)?=(?!=)")  # `(cls.attr) = ...` too
