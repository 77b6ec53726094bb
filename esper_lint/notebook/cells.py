"""A notebook's code cells, read from its JSON, and the one Python module they make, with its line map.

The notebook is plain JSON (nbformat 4), read with the standard library so the linter core stays light for
pre-commit. Code cells are joined in order into one module, so a name imported in cell 1 resolves in cell 3
as it does in the kernel. Each cell after the first is preceded by a one-line marker statement: it ends the
previous cell's indentation and is the boundary a fix must not cross. The line map gives each line of the
module its (cell, line in the cell), as ruff's notebook index does; findings and errors are mapped back
through it (`nb.ipynb:cell 3:2:5`; cells are counted from 1 over all cells, markdown included, as Jupyter
shows them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..core.findings import FileError, Finding
from .magics import lines, mask_magics

_NOT_CHECKED = "the file was not checked"
# The statement that opens each cell after the first in the joined module (a no-op string expression).
_MARKER = '"esper-lint: notebook cell {}"'
MARKER_LINE = re.compile(r'^"esper-lint: notebook cell (\d+)"\r?\n?$')


class NotebookError(Exception):
    def __init__(self, error: FileError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class CodeCell:
    index: int  # position in the notebook's `cells` list
    text: str  # the cell's source as stored
    python: str  # the same with magics replaced by placeholders (same number of lines)
    magics: dict[int, str]  # placeholder id -> the original line it stands for

    @property
    def number(self) -> int:
        return self.index + 1


@dataclass
class Notebook:
    path: str
    text: str  # the JSON text as read (without a byte-order mark)
    bom: bool
    data: dict[str, Any]
    cells: list[CodeCell]
    python: str = ""  # the code cells joined into one module
    line_map: list[tuple[int, int] | None] = field(default_factory=list)  # module line - 1 -> (cell, line)

    def locate(self, line: int) -> tuple[int, int] | None:
        """(cell number, line in the cell) of a line of the joined module; None for a marker line."""
        return self.line_map[line - 1] if 0 < line <= len(self.line_map) else None

    def encode(self, text: str) -> bytes:
        """A JSON text of this notebook as bytes, with the byte-order mark the file was read with."""
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode("utf-8")


# ---------------------------------------------------------------------- reading
def notebook_error(path: str, message: str) -> NotebookError:
    """A notebook that cannot be read (or written back), saying so."""
    return NotebookError(FileError(path, f"{message}; {_NOT_CHECKED}", kind="notebook-error"))


def load(source: bytes, path: str) -> Notebook | None:
    """The notebook's code cells, joined; None for an empty file or a notebook in another language;
    NotebookError if unreadable."""
    bom = source.startswith(b"\xef\xbb\xbf")
    try:
        text = source[3 if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"not valid UTF-8 (byte {exc.start}: {exc.reason}); notebooks are UTF-8 JSON"
        raise notebook_error(path, message) from None
    if not text.strip():
        return None  # an empty file (`touch new.ipynb`): no cells, nothing to check (as ruff)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise notebook_error(path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise notebook_error(path, "not a readable notebook (JSON nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        version = data.get("nbformat") if isinstance(data, dict) else None
        if isinstance(version, int) and version < 4:
            raise _unsupported(path, version)
        raise notebook_error(path, 'not a Jupyter notebook (no "cells" list)')
    version = data.get("nbformat")
    if not isinstance(version, int) or version < 4:
        raise _unsupported(path, version)
    if not _is_python(data.get("metadata")):
        return None
    cells: list[CodeCell] = []
    magic_ids = iter(range(1, 1 << 30))
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        stored = cell.get("source", "")
        if isinstance(stored, list) and all(isinstance(s, str) for s in stored):
            cell_text = "".join(stored)
        elif isinstance(stored, str):
            cell_text = stored
        else:
            raise notebook_error(path, f"cell {index + 1}: `source` is neither a string nor a list of strings")
        python, magics = mask_magics(cell_text, magic_ids)
        cells.append(CodeCell(index, cell_text, python, magics))
    notebook = Notebook(path, text, bom, data, cells)
    notebook.python, notebook.line_map = join(cells)
    return notebook


def _unsupported(path: str, version: object) -> NotebookError:
    return notebook_error(
        path,
        f"nbformat {version} is not supported (nbformat 4 or later is); convert it with "
        "`jupyter nbconvert --to notebook --nbformat 4`",
    )


def _is_python(metadata: object) -> bool:
    """Like ruff: a notebook whose metadata names another language (R, Julia, ...) is not Python."""
    if not isinstance(metadata, dict):
        return True
    for key, name in (("language_info", "name"), ("kernelspec", "language")):
        section = metadata.get(key)
        if isinstance(section, dict) and isinstance(section.get(name), str):
            return bool(section[name].lower().startswith("python"))
    return True


def join(cells: list[CodeCell]) -> tuple[str, list[tuple[int, int] | None]]:
    """The cells' Python as one module, each cell after the first behind its marker line; the line map."""
    parts: list[str] = []
    line_map: list[tuple[int, int] | None] = []
    for position, cell in enumerate(cells):
        if position:
            parts.append(_MARKER.format(cell.number) + "\n")
            line_map.append(None)
        cell_lines = lines(cell.python)
        if cell_lines and not cell_lines[-1].endswith(("\n", "\r")):
            cell_lines[-1] += "\n"
        parts.extend(cell_lines)
        line_map.extend((cell.number, n) for n in range(1, len(cell_lines) + 1))
    return "".join(parts), line_map


# ---------------------------------------------------------------------- positions
def map_findings(notebook: Notebook, findings: list[Finding]) -> list[Finding]:
    """The module's findings placed in their cells (copies: an analysis' findings are never changed, so a
    caller may map the same ones twice), sorted as a file's findings are."""
    mapped: list[Finding] = []
    for finding in findings:
        span, cell, message = finding.span, finding.cell, finding.message
        where = notebook.locate(span.line)
        if where is not None:
            cell, line = where
            offset = span.line - line
            end_line = span.end_line - offset
            end = notebook.locate(span.end_line)
            if end is None or end[0] != cell:
                end_line = line  # cannot happen for a statement inside a cell; keep the end in the cell
            span = type(span)(line, span.column, end_line, span.end_column)
            message = _LINE_MENTION.sub(partial(_mention, notebook, cell), message)
        mapped.append(
            Finding(
                finding.path,
                span,
                finding.code,
                finding.name,
                message,
                finding.fixable,
                finding.target,
                cell,
                finding.edits,
                finding.fixed_source,
            )
        )
    mapped.sort(key=lambda f: f.sort_key)
    return mapped


# Messages name the function they are about as `causal (line 12 in ...)` (rules/base.py `where`).
_LINE_MENTION = re.compile(r"(?<=\()line (\d+)")


def _mention(notebook: Notebook, cell: int, match: re.Match[str]) -> str:
    line = int(match.group(1))
    where = notebook.locate(line)
    if where is None:
        return f"line {line}"
    return f"line {where[1]}" if where[0] == cell else f"cell {where[0]}, line {where[1]}"


def map_errors(notebook: Notebook, errors: list[FileError]) -> list[FileError]:
    """The module's errors placed in their cells (copies, as `map_findings`)."""
    mapped: list[FileError] = []
    for error in errors:
        line, cell = error.line, error.cell
        if line is not None and cell is None:  # placed in the module, not yet in its cell
            where = notebook.locate(line)
            if where is None:  # a cell boundary: the previous cell did not end (open bracket or string)
                where = notebook.locate(line - 1)
                if where is not None:
                    where = (where[0], where[1] + 1)
            if where is not None:
                cell, line = where
        mapped.append(FileError(error.path, error.message, line, error.column, error.kind, cell))
    return mapped
