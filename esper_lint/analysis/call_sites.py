"""Small syntactic facts about calls and functions that the call-site rules (ESP007-ESP016) rely on.

Kept apart from the scope analysis in fast_backend.py: nothing here resolves names.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Protocol

from .model import Span

# A call argument in source order: the expression (positional, `*x` as the Starred node) or the keyword
# (`name=value`, `**kw`), with "*", "**" or "".
ArgumentItem = tuple[ast.expr | ast.keyword, str]


class _HasPositions(Protocol):
    lines: list[str]

    def start(self, node: ast.AST) -> tuple[int, int]: ...
    def end(self, node: ast.AST) -> tuple[int, int]: ...


def argument_items(call: ast.Call) -> list[ArgumentItem]:
    items: list[ArgumentItem] = [(a, "*" if isinstance(a, ast.Starred) else "") for a in call.args]
    items += [(k, "" if k.arg else "**") for k in call.keywords]
    items.sort(key=lambda item: (item[0].lineno, item[0].col_offset))
    return items


def _between(positions: _HasPositions, start: tuple[int, int], end: tuple[int, int]) -> str:
    """The source text from `start` to `end` (1-based lines, 0-based character columns)."""
    (l1, c1), (l2, c2) = start, end
    if l1 == l2:
        return positions.lines[l1 - 1][c1:c2]
    parts = [positions.lines[l1 - 1][c1:], *positions.lines[l1 : l2 - 1], positions.lines[l2 - 1][:c2]]
    return "".join(parts)


def _only_separator(text: str) -> bool:
    return text.replace(",", "", 1).strip() == "" and text.count(",") == 1


def removal_span(positions: _HasPositions, items: list[ArgumentItem], index: int) -> Span | None:
    """Where to cut to remove argument `index` and one separating comma; None if anything else is in between
    (a comment, a parenthesis)."""
    node = items[index][0]
    start, end = positions.start(node), positions.end(node)
    if index > 0:
        previous_end = positions.end(items[index - 1][0])
        if not _only_separator(_between(positions, previous_end, start)):
            return None
        return Span(previous_end[0], previous_end[1] + 1, end[0], end[1] + 1)
    if index + 1 < len(items):
        next_start = positions.start(items[index + 1][0])
        if not _only_separator(_between(positions, end, next_start)):
            return None
        return Span(start[0], start[1] + 1, next_start[0], next_start[1] + 1)
    return Span(start[0], start[1] + 1, end[0], end[1] + 1)


def own_returns(func: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.Return]:
    """The function's own `return` statements (not those of functions or classes nested in it)."""
    stack: list[ast.AST] = list(func.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


_COMPILATION = re.compile(r"compile|_dynamo|\bjit\b")


def mentions_compilation(text: str) -> bool:
    """The module may compile something (`torch.compile`, `_dynamo`, `jit`, even `re.compile`): ESP016 then
    cannot tell whether a `flex_attention` call runs compiled, and stays silent."""
    return _COMPILATION.search(text) is not None
