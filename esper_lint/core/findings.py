"""What a run produces: findings (rule violations) and file errors (files that could not be checked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .records import record_eq, record_repr
from .span import Span

if TYPE_CHECKING:
    from .fixes import Fix


class Finding:
    __slots__ = ("cell", "code", "edits", "fixable", "fixed_source", "message", "name", "path", "span", "target")
    _compared = ("path", "span", "code", "name", "message", "fixable", "cell")
    _shown = _compared
    __eq__ = record_eq
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (as a dataclass)
    __repr__ = record_repr

    def __init__(
        self,
        path: str,
        span: Span,
        code: str,
        name: str,
        message: str,
        fixable: bool = False,
        target: object | None = None,
        cell: int | None = None,
        edits: Fix | None = None,
        fixed_source: bytes | None = None,
    ) -> None:
        self.path = path
        self.span = span
        self.code = code
        self.name = name
        self.message = message
        self.fixable = fixable
        # The analysis' fact about the function a safe fix would hoist (a MaskFunction, ESP001/ESP002):
        # opaque here, read by the fixer only, never serialised.
        self.target = target
        # In a Jupyter notebook: the 1-based cell (counting every cell, as Jupyter and ruff do); lines are the cell's.
        self.cell = cell
        # Text edits that fix it (fix/edits.py), safe or unsafe; applied by --fix, never serialised.
        self.edits = edits
        # The file's bytes with this finding's own fix alone applied (SARIF gives each result its own fix).
        self.fixed_source = fixed_source

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


class FileError:
    """A file that could not be checked (or fixed). Always makes the run exit with code 2."""

    NOT_CHECKED = ("not checked", "was skipped", "were not checked", "left unchanged")

    __slots__ = ("cell", "column", "kind", "line", "message", "path")
    _compared = ("path", "message", "line", "column", "kind", "cell")
    _shown = _compared
    __eq__ = record_eq
    __hash__ = None  # type: ignore[assignment]
    __repr__ = record_repr

    def __init__(
        self,
        path: str,
        message: str,
        line: int | None = None,
        column: int | None = None,
        kind: str = "error",
        cell: int | None = None,
    ) -> None:
        self.path = path
        self.message = message
        self.line = line
        self.column = column
        self.kind = kind  # syntax-error, decode-error, io-error, internal-error, timeout, ...
        self.cell = cell  # in a notebook, the cell `line` counts in

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


class FileResult:
    __slots__ = ("errors", "findings", "fixed", "new_source", "original_source", "path")
    _compared = ("path", "findings", "errors", "fixed", "new_source", "original_source")
    _shown = ("path", "findings", "errors", "fixed", "new_source")
    __eq__ = record_eq
    __hash__ = None  # type: ignore[assignment]
    __repr__ = record_repr

    def __init__(
        self,
        path: str,
        findings: list[Finding] | None = None,
        errors: list[FileError] | None = None,
        fixed: int = 0,
        new_source: bytes | None = None,
        original_source: bytes | None = None,
    ) -> None:
        self.path = path
        self.findings: list[Finding] = findings if findings is not None else []
        self.errors: list[FileError] = errors if errors is not None else []
        self.fixed = fixed  # findings removed by --fix in this file
        self.new_source = new_source  # set by --fix / --diff when the file would change
        self.original_source = original_source  # the bytes the fix started from
