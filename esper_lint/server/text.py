"""Editor buffers and the engine's bytes: encodings, line splitting, positions and minimal edits.

The engine reads bytes and reports `Span`s (1-based lines, 1-based code-point columns, end exclusive);
LSP sends text and counts 0-based lines and columns in the negotiated unit (UTF-16 by default).
Nothing here depends on the LSP library, so the conversions are tested on their own.
"""

from __future__ import annotations

import codecs
import difflib
import io
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.span import Span

# Counts a string in the client's position unit (UTF-16 code units unless the client chose another).
UnitCounter = Callable[[str], int]


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class BufferEncodingError(ValueError):
    """The buffer holds characters its declared `# coding:` cannot store: the file could not be saved."""


@dataclass(frozen=True)
class Buffer:
    """An editor buffer as the bytes `esper-lint` would read from disk once it is saved."""

    text: str
    source: bytes
    codec: str  # decodes `source` (and a fixed version of it) back to buffer text

    @classmethod
    def from_text(cls, text: str) -> Buffer:
        """Encode as the file would be saved: in its `# coding:` declaration, else UTF-8.

        Editors keep a byte-order mark out of the buffer (they restore it on save); one left in the text
        stays a character, so the engine sees the BOM exactly as it would on disk.
        """
        as_utf8 = text.encode("utf-8", errors="surrogatepass")
        try:
            declared, _ = tokenize.detect_encoding(io.BytesIO(as_utf8).readline)
            codec = codecs.lookup(declared).name
        except (SyntaxError, LookupError):
            codec = "utf-8"  # the engine reports the bad declaration itself
        if codec in ("utf-8", "utf-8-sig"):
            return cls(text, as_utf8, "utf-8")
        try:
            return cls(text, text.encode(codec), codec)
        except UnicodeEncodeError as exc:
            where = text[: exc.start]
            line = where.count("\n") + 1
            raise BufferEncodingError(
                f"line {line}: {text[exc.start]!r} cannot be stored in the declared encoding {codec}; "
                "the file was not checked: change the character or the `# coding:` line"
            ) from None

    def decode(self, source: bytes) -> str:
        return source.decode(self.codec)

    @property
    def bom_in_text(self) -> bool:
        return self.text.startswith("\ufeff")


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split where both Python and LSP split: at \\n, \\r\\n and \\r only
    (`str.splitlines` also splits at form feeds and U+2028, which are not line breaks for either)."""
    return io.StringIO(text, newline="").readlines()


@dataclass(frozen=True)
class Position:
    """0-based line and column in the client's units (mirrors LSP's Position)."""

    line: int
    character: int


def _line_body(line: str) -> str:
    return line.rstrip("\r\n")


def span_to_range(
    span: Span, lines: Sequence[str], units: UnitCounter = utf16_units, bom_in_text: bool = False
) -> tuple[Position, Position]:
    """The LSP range of an engine span: code-point columns to client units, line by line."""

    def convert(line_number: int, column: int) -> Position:
        index = line_number - 1
        if index >= len(lines):  # past the end (a span at EOF): the end of the document
            return end_of(lines, units)
        body = _line_body(lines[index])
        # The engine decodes the BOM away, so its columns on line 1 start after it.
        skip = 1 if bom_in_text and index == 0 else 0
        return Position(index, units(body[: max(column - 1, 0) + skip]))

    return convert(span.line, span.column), convert(span.end_line, span.end_column)


def end_of(lines: Sequence[str], units: UnitCounter = utf16_units) -> Position:
    if not lines:
        return Position(0, 0)
    last = lines[-1]
    if last.endswith(("\n", "\r")):
        return Position(len(lines), 0)
    return Position(len(lines) - 1, units(last))


def line_start(index: int, lines: Sequence[str], units: UnitCounter = utf16_units) -> Position:
    return Position(index, 0) if index < len(lines) else end_of(lines, units)


@dataclass(frozen=True)
class Edit:
    """Replace the text between two positions of the old buffer (mirrors LSP's TextEdit)."""

    start: Position
    end: Position
    new_text: str


def line_edits(old: str, new: str, units: UnitCounter = utf16_units) -> list[Edit]:
    """The smallest set of whole-line replacements turning `old` into `new`, in document order.

    Whole lines keep every position at a line start (or the document's end), so no column has to be
    converted and no edit can split a \\r\\n pair.
    """
    old_lines, new_lines = split_lines(old), split_lines(new)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    edits = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(
            Edit(line_start(i1, old_lines, units), line_start(i2, old_lines, units), "".join(new_lines[j1:j2]))
        )
    return edits
