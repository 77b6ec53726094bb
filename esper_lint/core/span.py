"""Where something is in a source file."""

from __future__ import annotations

import ast

from .records import NamedTuple


class Span(NamedTuple):
    """A source range: 1-based lines, 1-based columns, end column exclusive (as ruff and SARIF).

    (Value types here are NamedTuples, not frozen dataclasses: building those classes is a measurable
    part of a one-file run's start-up, and equality, hashing and ordering are the same.)"""

    line: int
    column: int
    end_line: int
    end_column: int


def first_line(node: ast.AST) -> int:
    """The line a statement or expression starts on, counting a definition's decorators (which come first)."""
    line: int = getattr(node, "lineno", 0)
    decorators = getattr(node, "decorator_list", None)
    return int(decorators[0].lineno) if decorators else line
