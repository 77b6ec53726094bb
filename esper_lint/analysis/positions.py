"""Source positions: `ast` gives UTF-8 byte columns; findings and edits use character columns."""

from __future__ import annotations

import ast
import io

from ..core.span import Span


class Positions:
    """Turns ast positions (UTF-8 byte columns) into LibCST's spans (character columns)."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Only \n, \r\n and \r end lines for Python (str.splitlines also splits on form feeds).
        self.lines = io.StringIO(text, newline="").readlines()

    def char_col(self, line: int, byte_col: int) -> int:
        if line - 1 >= len(self.lines):
            return byte_col
        src = self.lines[line - 1]
        if src.isascii():
            return byte_col
        return len(src.encode("utf-8")[:byte_col].decode("utf-8", errors="replace"))

    def start(self, node: ast.AST) -> tuple[int, int]:
        return node.lineno, self.char_col(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> tuple[int, int]:
        line = node.end_lineno  # type: ignore[attr-defined]
        return line, self.char_col(line, node.end_col_offset)  # type: ignore[attr-defined]

    def text_between(self, start: tuple[int, int], end: tuple[int, int]) -> str:
        """The source text from `start` to `end` (1-based lines, 0-based character columns)."""
        (l1, c1), (l2, c2) = start, end
        if l1 == l2:
            return self.lines[l1 - 1][c1:c2]
        return self.lines[l1 - 1][c1:] + "".join(self.lines[l1 : l2 - 1]) + self.lines[l2 - 1][:c2]

    def segment(self, node: ast.AST) -> str:
        """The node's source text (without its enclosing parentheses, as `ast` positions go)."""
        return self.text_between(self.start(node), self.end(node))

    def span(self, node: ast.AST) -> Span:
        """Like LibCST's PositionProvider, and like `ast`, a span excludes the expression's parentheses."""
        (l1, c1), (l2, c2) = self.start(node), self.end(node)
        return Span(l1, c1 + 1, l2, c2 + 1)

    def name_span(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Span:
        line, col = self.start(node)
        i, text = line - 1, self.lines
        pos = col
        for keyword in ("async", "def") if isinstance(node, ast.AsyncFunctionDef) else ("def",):
            i, pos = self._skip_space(i, pos)
            pos += len(keyword)
        i, pos = self._skip_space(i, pos)
        return (
            Span(i + 1, pos + 1, i + 1, pos + 1 + len(node.name))
            if i < len(text)
            else Span(line, col + 1, line, col + 1)
        )

    def _skip_space(self, i: int, pos: int) -> tuple[int, int]:
        while i < len(self.lines):
            src = self.lines[i]
            while pos < len(src) and src[pos] in " \t\f":
                pos += 1
            if src.startswith("\\", pos):  # explicit line continuation
                i, pos = i + 1, 0
                continue
            return i, pos
        return i, pos
