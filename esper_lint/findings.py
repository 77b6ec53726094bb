"""What a run produces: findings (rule violations) and file errors (files that could not be checked)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .analysis.model import MaskFunction, Span

if TYPE_CHECKING:
    from .fix.edits import Fix


@dataclass
class Finding:
    path: str
    span: Span
    code: str
    name: str
    message: str
    fixable: bool = False
    # The function a safe fix would hoist (ESP001/ESP002); used by the fixer, never serialised.
    target: MaskFunction | None = field(default=None, compare=False, repr=False)
    # In a Jupyter notebook: the 1-based cell (counting every cell, as Jupyter and ruff do); lines are the cell's.
    cell: int | None = None
    # Text edits that fix it (fix/edits.py), safe or unsafe; applied by --fix, never serialised.
    edits: Fix | None = field(default=None, compare=False, repr=False)
    # The file's bytes with this finding's own fix alone applied (SARIF gives each result its own fix).
    fixed_source: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def sort_key(self) -> tuple[str, int, Span, str, str]:
        return (self.path, self.cell or 0, self.span, self.code, self.message)

    @property
    def position(self) -> str:
        """`path:line:col`, or `path:cell N:line:col` in a notebook (ruff's spelling)."""
        return position(self.path, self.span.line, self.span.column, self.cell)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "code": self.code,
            "name": self.name,
            "message": self.message,
            "fixable": self.fixable,
            **({"cell": self.cell} if self.cell is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        span = Span(data["line"], data["column"], data["end_line"], data["end_column"])
        return cls(
            data["path"], span, data["code"], data["name"], data["message"], data["fixable"], cell=data.get("cell")
        )


def position(path: str, line: int, column: int, cell: int | None = None) -> str:
    return f"{path}:cell {cell}:{line}:{column}" if cell is not None else f"{path}:{line}:{column}"


@dataclass
class FileError:
    """A file that could not be checked (or fixed). Always makes the run exit with code 2."""

    NOT_CHECKED = ("not checked", "was skipped", "were not checked", "left unchanged")

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    kind: str = "error"  # syntax-error, decode-error, io-error, internal-error, timeout, ...
    cell: int | None = None  # in a notebook, the cell `line` counts in

    def __str__(self) -> str:
        where = position(self.path, self.line, self.column or 1, self.cell) if self.line is not None else self.path
        return f"{where}: {self.kind.replace('-', ' ')}: {self.message}"

    @property
    def says_not_checked(self) -> bool:
        """Whether the message already says the file was not checked (reports add it otherwise)."""
        return any(words in self.message for words in self.NOT_CHECKED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "kind": self.kind,
            "message": self.message,
            **({"cell": self.cell} if self.cell is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileError:
        line, column, kind = data.get("line"), data.get("column"), data.get("kind", "error")
        return cls(data["path"], data["message"], line, column, kind, data.get("cell"))


@dataclass
class FileResult:
    path: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    fixed: int = 0  # findings removed by --fix in this file
    new_source: bytes | None = None  # set by --fix / --diff when the file would change
    original_source: bytes | None = field(default=None, repr=False)  # the bytes the fix started from
