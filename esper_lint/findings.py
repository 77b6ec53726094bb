"""What a run produces: findings (rule violations) and file errors (files that could not be checked)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .analysis.model import MaskFunction, Span


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
    # The file's bytes with this finding's own fix alone applied (SARIF gives each result its own fix).
    fixed_source: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def sort_key(self) -> tuple[str, Span, str, str]:
        return (self.path, self.span, self.code, self.message)

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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        span = Span(data["line"], data["column"], data["end_line"], data["end_column"])
        return cls(data["path"], span, data["code"], data["name"], data["message"], data["fixable"])


@dataclass
class FileError:
    """A file that could not be checked (or fixed). Always makes the run exit with code 2."""

    NOT_CHECKED = ("not checked", "was skipped", "were not checked", "left unchanged")

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    kind: str = "error"  # syntax-error, decode-error, io-error, internal-error, timeout, ...

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileError:
        return cls(data["path"], data["message"], data.get("line"), data.get("column"), data.get("kind", "error"))


@dataclass
class FileResult:
    path: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    fixed: int = 0  # findings removed by --fix in this file
    new_source: bytes | None = None  # set by --fix / --diff when the file would change
    original_source: bytes | None = field(default=None, repr=False)  # the bytes the fix started from
