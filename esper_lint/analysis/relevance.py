"""The relevance filter: which top-level defs and classes the scope walk must visit in full."""

from __future__ import annotations

import ast
import re

from ..core.span import first_line
from .syntax import module_level_statements


class RelevanceFilter:
    """Which top-level defs and classes can contain a call that reaches a mask API, judged on text.

    A call reaches an API through a name that spells the API (`create_block_mask`, `fa.create_mask`),
    an import alias of one (`... import create_block_mask as cbm`), or a module-level variable bound to
    a call that mentions one of these (`cbm2 = torch.compile(cbm)`), computed to a fixpoint. A def or
    class whose source mentions none of them, nor `global` (which could rebind a module name), cannot,
    so only the name it binds is recorded. Everything else is visited in full.
    """

    def __init__(self, tree: ast.Module, lines: list[str], spellings: frozenset[str]) -> None:
        self.lines = lines
        words = set(spellings) | {"global", "partial"}
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
        changed = True
        while changed:
            changed = False
            pattern = _word_pattern(words)
            for name, original in aliases:
                if name not in words and original in words:
                    words.add(name)
                    changed = True
            for names, text in assigned:
                if any(n not in words for n in names) and pattern.search(text):
                    words.update(names)
                    changed = True
        self.pattern = _word_pattern(words)

    def segment(self, node: ast.stmt) -> str:
        end = node.end_lineno or node.lineno
        return "".join(self.lines[first_line(node) - 1 : end])

    def __call__(self, node: ast.stmt) -> bool:
        return self.pattern.search(self.segment(node)) is not None


def _word_pattern(words: set[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, words))) + r")\b")
