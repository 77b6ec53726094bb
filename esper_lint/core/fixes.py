"""The fixes a finding carries: text edits, applied all together or not at all.

An `Edit` replaces the text of a `Span` (1-based lines, 1-based character columns, end exclusive, as every
finding's span) with new text; an empty span inserts. A `Fix` is the edits of one finding. `safe` fixes keep
what the program does exactly; the others ("unsafe", ruff's meaning) may change behaviour and are applied
only with `--unsafe-fixes`. Rules build these values; `esper_lint/fix/edits.py` applies and verifies them.
"""

from __future__ import annotations

from .records import NamedTuple
from .span import Span

SAFE = "safe"
UNSAFE = "unsafe"


class Edit(NamedTuple):
    span: Span
    replacement: str


class Fix(NamedTuple):
    edits: tuple[Edit, ...]
    applicability: str = SAFE  # SAFE or UNSAFE
    description: str = ""  # what it does, e.g. "pass it as `block_mask=`"

    @property
    def safe(self) -> bool:
        return self.applicability == SAFE

    @property
    def start(self) -> tuple[int, int]:
        return min((e.span.line, e.span.column) for e in self.edits)

    @property
    def end(self) -> tuple[int, int]:
        return max((e.span.end_line, e.span.end_column) for e in self.edits)


def replace(span: Span, text: str, applicability: str = SAFE, description: str = "") -> Fix:
    return Fix((Edit(span, text),), applicability, description)


def insert_at(line: int, column: int, text: str) -> Edit:
    return Edit(Span(line, column, line, column), text)
