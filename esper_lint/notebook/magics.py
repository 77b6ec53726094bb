"""IPython syntax in a code cell, masked so the cell reads as Python, and put back after a fix.

Magics (`%time ...`, `x = !ls`, `?obj`, `obj?`) and shell escapes become indented `pass` placeholders that keep
line numbers (a continuation line becomes a placeholder comment); a cell that starts with a cell magic is
Python only for the magics whose body runs in the kernel (`%%time`, `%%timeit`, ...): any other cell magic's
body (`%%bash`, `%%html`, ...) becomes comments.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

PLACEHOLDER = "pass  # esper-lint: magic {}"
_PLACEHOLDER_TAG = re.compile(r"# esper-lint: magic (\d+)$")
# Cell magics whose body is Python executed in the kernel's namespace: their body is linted.
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
# `x = !ls`, `a, b = %sx ...`: assignments from a magic or a shell escape.
_ASSIGNED_MAGIC = re.compile(r"^\s*[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*[%!]")


def lines(text: str) -> list[str]:
    """Lines with their endings, split where Python splits them (\\n, \\r\\n, \\r)."""
    return io.StringIO(text, newline="").readlines()


def mask_magics(text: str, ids: Iterator[int]) -> tuple[str, dict[int, str]]:
    """The cell with each IPython magic / shell escape line replaced by an indented `pass` placeholder
    (continuation lines by a placeholder comment); placeholder id -> original line."""
    cell_lines = lines(text)
    magics: dict[int, str] = {}
    out: list[str] = []

    def replace(line: str, statement: bool) -> str:
        ident = next(ids)
        magics[ident] = line
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        indent = body[: len(body) - len(body.lstrip())]
        return indent + (PLACEHOLDER.format(ident) if statement else f"# esper-lint: magic {ident}") + ending

    first = cell_lines[0].strip() if cell_lines else ""
    if first.startswith("%%"):
        name = first[2:].split(maxsplit=1)[0] if first[2:].strip() else ""
        if name not in _PYTHON_CELL_MAGICS:  # the body is not Python (%%bash, %%html, %%writefile, ...)
            return "".join(replace(line, False) for line in cell_lines), magics
        out.append(replace(cell_lines[0], True))
        cell_lines = cell_lines[1:]
    scanner = _Scanner()
    continuing_magic = False
    for line in cell_lines:
        if continuing_magic:
            out.append(replace(line, False))
            continuing_magic = line.rstrip("\r\n").endswith("\\")
            continue
        if scanner.at_statement_start and _is_magic(line, scanner):
            out.append(replace(line, True))
            continuing_magic = line.rstrip("\r\n").endswith("\\")
            continue
        scanner.feed(line)
        out.append(line)
    return "".join(out), magics


def _is_magic(line: str, scanner: _Scanner) -> bool:
    stripped = line.strip()
    if stripped.startswith(("%", "!", "?")) or _ASSIGNED_MAGIC.match(line):
        return True
    return scanner.code_part(line).rstrip().endswith("?")  # `obj?`, `obj??`: no Python statement ends so


class _Scanner:
    """Just enough of Python's lexer to know whether a line starts a statement (not inside a string,
    brackets or a backslash continuation): only there can a line be a magic."""

    def __init__(self) -> None:
        self.quote: str | None = None
        self.depth = 0
        self.continued = False

    @property
    def at_statement_start(self) -> bool:
        return self.quote is None and self.depth == 0 and not self.continued

    def code_part(self, line: str) -> str:
        """The line up to its comment, for a line that starts a statement."""
        probe = _Scanner()
        end = probe._scan(line)
        return line[:end]

    def feed(self, line: str) -> None:
        self._scan(line)

    def _scan(self, line: str) -> int:
        """Advance over one line; the offset where its comment starts (or its length)."""
        body = line.rstrip("\r\n")
        i, n, comment = 0, len(body), len(body)
        while i < n:
            ch = body[i]
            if self.quote is not None:
                if ch == "\\":
                    i += 2
                    continue
                if body.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                    continue
                i += 1
                continue
            if ch == "#":
                comment = i
                break
            if ch in "\"'":
                self.quote = ch * 3 if body.startswith(ch * 3, i) else ch
                i += len(self.quote)
                continue
            if ch in "([{":
                self.depth += 1
            elif ch in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1
        self.continued = body[:comment].endswith("\\")
        if self.quote is not None and len(self.quote) == 1 and not self.continued:
            self.quote = None  # an unterminated one-line string: Python's error, not ours to track
        return comment


def restore_magics(text: str, magics: dict[int, str]) -> str | None:
    """A cell's placeholders put back; None unless each appears exactly once."""
    seen: set[int] = set()
    out: list[str] = []
    for line in lines(text):
        match = _PLACEHOLDER_TAG.search(line.rstrip("\r\n"))
        ident = int(match.group(1)) if match else None
        if ident is None or ident not in magics:
            out.append(line)
            continue
        if ident in seen:
            return None
        seen.add(ident)
        original = magics[ident]
        if line.lstrip().startswith("pass"):  # a statement placeholder keeps its (possibly new) indentation
            indent = line[: len(line) - len(line.lstrip())]
            original = indent + original.lstrip(" \t")
        out.append(original)
    return "".join(out) if seen == set(magics) else None
