"""Jupyter notebooks (`.ipynb`): lint the code cells as one module, fix them in the notebook's own JSON.

Reading: the notebook is plain JSON (nbformat 4), read with the standard library so the linter core stays
light for pre-commit (nbformat itself validates our output in the tests). Code cells are joined in order
into one Python module, so a name imported in cell 1 resolves in cell 3 as it does in the kernel. Each
cell after the first is preceded by a one-line marker statement: it ends the previous cell's indentation
and is the boundary a fix must not cross (a hoisted function lands just before the top-level statement
that contains it, after its own cell's marker; a cell is changed only if the fix leaves it reading no
name it did not read before, so identical functions in two cells get a definition each).
IPython magics (`%time ...`, `x = !ls`, `?obj`, `obj?`) and shell escapes become `pass` placeholders that
keep line numbers; a cell that starts with a cell magic is linted only for the magics whose body is
Python run in the kernel (`%%time`, `%%timeit`, ...).
Findings are reported per cell (`nb.ipynb:cell 3:2:5`, as ruff does; cells are counted from 1 over all
cells, markdown included, as Jupyter shows them).

Writing (`--fix`): only the `source` value of each changed cell is replaced in the original JSON text;
every other byte (outputs, metadata, other cells, key order, indentation, escapes, final newline) is kept.
Re-dumping the whole document instead would rewrite anything its writer spelled differently (floats,
key order, indent, `ensure_ascii`, which differ between Jupyter, VS Code and Colab). The new source keeps
the cell's storage (a list of lines, nbformat's convention, or one string) and the array's own layout, and
the result is parsed back and compared with the expected document before anything is written.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from .core.findings import FileError, FileResult, Finding

if TYPE_CHECKING:
    from .config import Config

_NOT_CHECKED = "the file was not checked"
# The statement that opens each cell after the first in the joined module (a no-op string expression).
_MARKER = '"esper-lint: notebook cell {}"'
_MARKER_LINE = re.compile(r'^"esper-lint: notebook cell (\d+)"\r?\n?$')
_PLACEHOLDER = "pass  # esper-lint: magic {}"
_PLACEHOLDER_TAG = re.compile(r"# esper-lint: magic (\d+)$")
# Cell magics whose body is Python executed in the kernel's namespace: their body is linted.
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
# `x = !ls`, `a, b = %sx ...`: assignments from a magic or a shell escape.
_ASSIGNED_MAGIC = re.compile(r"^\s*[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*[%!]")


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


# ---------------------------------------------------------------------- reading
def _error(path: str, message: str) -> NotebookError:
    return NotebookError(FileError(path, f"{message}; {_NOT_CHECKED}", kind="notebook-error"))


def load(source: bytes, path: str) -> Notebook | None:
    """The notebook's code cells, joined; None for an empty file or a notebook in another language;
    NotebookError if unreadable."""
    bom = source.startswith(b"\xef\xbb\xbf")
    try:
        text = source[3 if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(path, f"not valid UTF-8 (byte {exc.start}: {exc.reason}); notebooks are UTF-8 JSON") from None
    if not text.strip():
        return None  # an empty file (`touch new.ipynb`): no cells, nothing to check (as ruff)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error(path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise _error(path, "not a readable notebook (JSON nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        version = data.get("nbformat") if isinstance(data, dict) else None
        if isinstance(version, int) and version < 4:
            raise _unsupported(path, version)
        raise _error(path, 'not a Jupyter notebook (no "cells" list)')
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
            raise _error(path, f"cell {index + 1}: `source` is neither a string nor a list of strings")
        python, magics = _mask_magics(cell_text, magic_ids)
        cells.append(CodeCell(index, cell_text, python, magics))
    notebook = Notebook(path, text, bom, data, cells)
    notebook.python, notebook.line_map = _join(cells)
    return notebook


def _unsupported(path: str, version: object) -> NotebookError:
    return _error(
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


def _lines(text: str) -> list[str]:
    """Lines with their endings, split where Python splits them (\\n, \\r\\n, \\r)."""
    return io.StringIO(text, newline="").readlines()


def _join(cells: list[CodeCell]) -> tuple[str, list[tuple[int, int] | None]]:
    parts: list[str] = []
    line_map: list[tuple[int, int] | None] = []
    for position, cell in enumerate(cells):
        if position:
            parts.append(_MARKER.format(cell.number) + "\n")
            line_map.append(None)
        lines = _lines(cell.python)
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += "\n"
        parts.extend(lines)
        line_map.extend((cell.number, n) for n in range(1, len(lines) + 1))
    return "".join(parts), line_map


# ---------------------------------------------------------------------- magics
def _mask_magics(text: str, ids: Iterator[int]) -> tuple[str, dict[int, str]]:
    """The cell with each IPython magic / shell escape line replaced by an indented `pass` placeholder
    (continuation lines by a placeholder comment); placeholder id -> original line."""
    lines = _lines(text)
    magics: dict[int, str] = {}
    out: list[str] = []

    def replace(line: str, statement: bool) -> str:
        ident = next(ids)
        magics[ident] = line
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        indent = body[: len(body) - len(body.lstrip())]
        return indent + (_PLACEHOLDER.format(ident) if statement else f"# esper-lint: magic {ident}") + ending

    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        name = first[2:].split(maxsplit=1)[0] if first[2:].strip() else ""
        if name not in _PYTHON_CELL_MAGICS:  # the body is not Python (%%bash, %%html, %%writefile, ...)
            return "".join(replace(line, False) for line in lines), magics
        out.append(replace(lines[0], True))
        lines = lines[1:]
    scanner = _Scanner()
    continuing_magic = False
    for line in lines:
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


def _restore_magics(text: str, magics: dict[int, str]) -> str | None:
    """A cell's placeholders put back; None unless each appears exactly once."""
    seen: set[int] = set()
    out: list[str] = []
    for line in _lines(text):
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


# ---------------------------------------------------------------------- positions
def _map_findings(notebook: Notebook, findings: list[Finding]) -> list[Finding]:
    for finding in findings:
        where = notebook.locate(finding.span.line)
        if where is None:
            continue
        cell, line = where
        span = finding.span
        offset = span.line - line
        end_line = span.end_line - offset
        end = notebook.locate(span.end_line)
        if end is None or end[0] != cell:
            end_line = line  # cannot happen for a statement inside a cell; keep the end in the cell
        finding.span = type(span)(line, span.column, end_line, span.end_column)
        finding.cell = cell
        finding.message = _LINE_MENTION.sub(partial(_mention, notebook, cell), finding.message)
    findings.sort(key=lambda f: f.sort_key)
    return findings


# Messages name the function they are about as `causal (line 12 in ...)` (rules/base.py `where`).
_LINE_MENTION = re.compile(r"(?<=\()line (\d+)")


def _mention(notebook: Notebook, cell: int, match: re.Match[str]) -> str:
    line = int(match.group(1))
    where = notebook.locate(line)
    if where is None:
        return f"line {line}"
    return f"line {where[1]}" if where[0] == cell else f"cell {where[0]}, line {where[1]}"


def _map_errors(notebook: Notebook, errors: list[FileError]) -> list[FileError]:
    for error in errors:
        if error.line is None or error.cell is not None:  # no place, or placed in its cell already
            continue
        where = notebook.locate(error.line)
        if where is None:  # a cell boundary: the previous cell did not end (open bracket or string)
            where = notebook.locate(error.line - 1)
            if where is not None:
                where = (where[0], where[1] + 1)
        if where is not None:
            error.cell, error.line = where
    return errors


# ---------------------------------------------------------------------- lint
def lint_notebook(source: bytes, path: str, config: Config) -> FileResult:
    """Lint a notebook's code cells. Never raises for bad input: problems become FileErrors."""
    from .engine import lint_source

    try:
        notebook = load(source, path)
    except NotebookError as exc:
        return FileResult(path, errors=[exc.error])
    if notebook is None:
        return FileResult(path)
    result = lint_source(notebook.python.encode("utf-8"), path, config)
    if any(e.kind == "syntax-error" for e in result.errors):
        result = _lint_other_cells(notebook, path, config) or result
    _map_findings(notebook, result.findings)
    _map_errors(notebook, result.errors)
    return result


def _lint_other_cells(notebook: Notebook, path: str, config: Config) -> FileResult | None:
    """A syntax error in some cells: lint the others, each broken cell reported as a syntax error of its own
    (as ruff does). None when every cell is broken, or the others still do not parse together: then the
    notebook is reported as it is."""
    from .engine import lint_source

    broken: dict[int, SyntaxError] = {}
    for cell in notebook.cells:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes and the like are not ours to report
                compile(cell.python, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        except SyntaxError as exc:
            broken[cell.index] = exc
        except ValueError:  # NUL bytes: the whole file is unreadable as Python
            return None
    if not broken or len(broken) == len(notebook.cells):
        return None
    # The broken cells become blank lines: every other line keeps its number, so positions map as before.
    cells = [
        CodeCell(c.index, c.text, "\n" * len(_lines(c.python)), {}) if c.index in broken else c for c in notebook.cells
    ]
    python, _ = _join(cells)
    result = lint_source(python.encode("utf-8"), path, config)
    if result.errors:
        return None
    for cell in notebook.cells:
        failure = broken.get(cell.index)
        if failure is not None:
            message = f"{failure.msg}; this cell was not checked (the notebook's other cells were)"
            error = FileError(path, message, failure.lineno or 1, failure.offset or 1, "syntax-error", cell.number)
            result.errors.append(error)
    return result


# ---------------------------------------------------------------------- fix
def fix_notebook(source: bytes, path: str, config: Config, written: bool = True) -> FileResult:
    """Apply every safe fix to the notebook's cells; `new_source` is the notebook's new JSON bytes. The
    findings that remain are positioned in the fixed cells when it is `written`, else (`--diff`) in `source`.

    The whole module is fixed at once, and each changed cell is taken only if it stays self-contained:
    the fixer shares one definition between identical functions, which across cells would make a later
    cell depend on an earlier one. Such a cell is left for the next pass, where its function is hoisted
    into its own cell (under a fresh name, as the shared one now exists); passes stop when nothing changes.
    """
    from .engine import lint_source
    from .fix.file_fixer import fix_source, remaining_on_disk

    result = FileResult(path, original_source=source)
    try:
        current = load(source, path)
    except NotebookError as exc:
        result.errors.append(exc.error)
        return result
    if current is None:
        return result
    original = current
    before = lint_source(current.python.encode("utf-8"), path, config)
    if any(f.fixable for f in before.findings) and _awaits_at_top_level(current.python):
        unchanged = lint_notebook(source, path, config)
        unchanged.original_source = source
        message = "not fixed: a cell uses top-level `await`, which only IPython runs; move the functions by hand"
        unchanged.errors.append(FileError(path, message, kind="fix-error"))
        return unchanged
    try:
        for attempt in range(len(current.cells) + 1):  # each pass takes at least one more cell, or stops
            fixed = fix_source(current.python.encode("utf-8"), path, config)
            if fixed.errors and attempt == 0:  # the notebook as read: report it as fix_source did
                if any(e.kind == "syntax-error" for e in fixed.errors):  # left unchanged; its other cells checked
                    unfixed = lint_notebook(source, path, config)
                    unfixed.original_source = source
                    return unfixed
                result.findings = _map_findings(current, fixed.findings)
                result.errors = _map_errors(current, fixed.errors)
                return result
            if fixed.errors:
                raise _Unsafe(f"a later pass failed: {fixed.errors[0].message}")
            if fixed.new_source is None:
                break
            findings = _map_findings(current, _module_findings(current, path, config))
            fixable_cells = {f.cell for f in findings if f.fixable}
            new_sources = _cells_to_update(current, fixed.new_source.decode("utf-8"), fixable_cells)
            if not new_sources:
                break
            text = splice_sources(current, new_sources)
            updated = load((b"\xef\xbb\xbf" if current.bom else b"") + text.encode("utf-8"), path)
            assert updated is not None
            current = updated
    except Exception as exc:  # _Unsafe, or a bug: it must cost this notebook's fix, never the file or the run
        reason = str(exc) if isinstance(exc, _Unsafe) else f"{type(exc).__name__}: {exc}"
        unchanged = lint_notebook(source, path, config)
        unchanged.original_source = source
        message = f"could not fix this notebook ({reason}); it was left unchanged. Please report this with the file."
        unchanged.errors.append(FileError(path, message, kind="internal-error"))
        return unchanged
    new_source = (b"\xef\xbb\xbf" if current.bom else b"") + current.text.encode("utf-8")
    remaining = lint_source(current.python.encode("utf-8"), path, config)
    result.new_source = new_source if new_source != source else None
    if not written and result.new_source is not None:  # as they stand in the notebook on disk
        on_disk = remaining_on_disk(remaining.findings, current.python, before.findings, original.python)
        result.findings = _map_findings(original, on_disk)
        result.errors = _map_errors(original, before.errors)
    else:
        result.findings = _map_findings(current, remaining.findings)
        result.errors = _map_errors(current, remaining.errors)
    result.fixed = max(0, len(before.findings) - len(remaining.findings)) if result.new_source is not None else 0
    return result


def _awaits_at_top_level(python: str) -> bool:
    """IPython runs `await` outside functions; Python does not compile it, so the fixer could not verify."""
    if "await" not in python:
        return False
    try:
        compile(python, "<notebook>", "exec", dont_inherit=True)
    except SyntaxError:
        try:
            compile(python, "<notebook>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        except SyntaxError:
            return False
        return True
    return False


def _module_findings(notebook: Notebook, path: str, config: Config) -> list[Finding]:
    """The findings of the notebook's joined module (module lines, not yet mapped to cells)."""
    from .engine import lint_source

    return lint_source(notebook.python.encode("utf-8"), path, config).findings


def fix_notebook_file(path: str, source: bytes, config: Config) -> FileResult:
    """fix_notebook, then write the new JSON in place (atomically, as for Python files)."""
    from .fix.writer import WriteRefused, write_atomic

    result = fix_notebook(source, path, config)
    if result.new_source is None:
        return result
    try:
        write_atomic(path, source, result.new_source)
    except WriteRefused as exc:
        error = exc.error
    except OSError as exc:
        reason = exc.strerror or str(exc)
        error = FileError(path, f"cannot write the fixed file: {reason}; it was left unchanged.", kind="io-error")
    else:
        return result
    unchanged = lint_notebook(source, path, config)
    unchanged.original_source = source
    unchanged.errors.append(error)
    return unchanged


def add_noqa(source: bytes, path: str, config: Config) -> tuple[bytes, int, list[str]]:
    """`# noqa: CODES` on each cell line with a finding, spliced into the notebook's JSON as `--fix` splices
    (only the `source` of the changed cells); the new bytes, how many lines got one, and the places
    (`cell 3:2`) that cannot take one. Raises NotebookError for an unreadable notebook."""
    from .core.noqa import add_noqa as insert_noqa
    from .engine import lint_source

    notebook = load(source, path)
    if notebook is None:
        return source, 0, []
    by_cell: dict[int, dict[int, set[str]]] = {}
    for finding in lint_source(notebook.python.encode("utf-8"), path, config).findings:
        where = notebook.locate(finding.span.line)
        if where is not None:
            by_cell.setdefault(where[0], {}).setdefault(where[1], set()).add(finding.code)
    added = 0
    skipped: list[str] = []
    new_sources: dict[int, str] = {}
    for cell in notebook.cells:
        by_line = by_cell.get(cell.number)
        if not by_line:
            continue
        # Comments go into the masked cell (magics are `pass` placeholders the tokenizer reads), then the
        # magics are put back; a finding is never on a placeholder line.
        python, cell_skipped = insert_noqa(cell.python, by_line)
        restored = _restore_magics(python, cell.magics)
        if restored is None:
            cell_skipped = sorted(by_line)
            restored = cell.text
        skipped += [f"cell {cell.number}:{line}" for line in cell_skipped]
        added += len(by_line) - len(cell_skipped)
        if restored != cell.text:
            new_sources[cell.index] = restored
    if not new_sources:
        return source, added, skipped
    try:
        text = splice_sources(notebook, new_sources)
    except _Unsafe as exc:
        raise _error(path, f"no `# noqa` added: {exc}") from None
    return (b"\xef\xbb\xbf" if notebook.bom else b"") + text.encode("utf-8"), added, skipped


class _Unsafe(Exception):
    """The fixed module cannot be put back into the notebook cell by cell without doubt."""


def _split(notebook: Notebook, fixed_python: str) -> list[str]:
    """The fixed module cut back into the code cells at the markers (placeholders still in)."""
    pieces: list[list[str]] = [[]]
    expected = [cell.number for cell in notebook.cells[1:]]
    for line in _lines(fixed_python):
        match = _MARKER_LINE.match(line)
        if match is not None:
            if not expected or int(match.group(1)) != expected[0]:
                raise _Unsafe("a cell boundary moved")
            expected.pop(0)
            pieces.append([])
            continue
        pieces[-1].append(line)
    if expected or len(pieces) != len(notebook.cells):
        raise _Unsafe("a cell boundary was lost")
    return ["".join(piece) for piece in pieces]


def _cells_to_update(notebook: Notebook, fixed_python: str, fixable_cells: set[int | None]) -> dict[int, str]:
    """The new source of each changed cell that stays self-contained (by cell index), magics restored."""
    new_sources: dict[int, str] = {}
    imported: set[str] = set()  # names the cells before this one import: the kernel has them when it runs
    for cell, python in zip(notebook.cells, _split(notebook, fixed_python), strict=True):
        imported_before = set(imported)
        imported |= _imported_names(cell.python)
        if python == _terminated(cell.python):
            continue
        if cell.number not in fixable_cells:
            raise _Unsafe(f"the fix would change cell {cell.number}, which has nothing to fix")
        python = _like(cell.python, python)
        try:
            compile(python, f"cell {cell.number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            raise _Unsafe(f"cell {cell.number} would not compile on its own ({exc})") from None
        if _free_names(python) - _free_names(cell.python) - imported_before:
            continue  # it would use a function now defined in another cell: left for the next pass
        restored = _restore_magics(python, cell.magics)
        if restored is None:
            raise _Unsafe(f"the IPython magics of cell {cell.number} could not be put back")
        new_sources[cell.index] = restored
    return new_sources


def _free_names(text: str) -> set[str]:
    """Names a cell reads but binds nowhere (coarsely: any binding anywhere in the cell counts)."""
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return loaded - bound


def _imported_names(text: str) -> set[str]:
    """Names a cell binds with `import` at its top level (as `_free_names`, coarsely)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    return {
        (alias.asname or alias.name).split(".")[0]
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }


def _terminated(text: str) -> str:
    return text if not text or text.endswith(("\n", "\r")) else text + "\n"


def _like(original: str, new: str) -> str:
    """The fixed cell with the original's leading blank lines, line endings and final newline: the joined
    module puts a marker above each cell, so a function hoisted to a cell's top gets PEP 8's two blank
    lines, which in a cell are noise."""
    lead = len(original) - len(original.lstrip("\r\n"))
    new = original[:lead] + new.lstrip("\r\n")
    endings = {line[len(line.rstrip("\r\n")) :] for line in _lines(original)} - {""}
    if endings == {"\r\n"}:  # a CRLF cell in a notebook whose joined module starts LF: new lines follow the cell
        new = re.sub(r"(?<!\r)\n", "\r\n", new)
    if not original.endswith(("\n", "\r")) and new.endswith("\n"):
        new = new[:-2] if new.endswith("\r\n") else new[:-1]
    return new


# ---------------------------------------------------------------------- JSON splicing
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip(text: str, i: int) -> int:
    match = _WS.match(text, i)
    assert match is not None
    return match.end()


def _value_end(text: str, i: int) -> int:
    _, end = _DECODER.raw_decode(text, i)
    return end


def _members(text: str, i: int) -> dict[str, tuple[int, int]]:
    """An object's keys -> (start, end) of their values; `i` is at the `{` (the last duplicate key wins, as in json)."""
    assert text[i] == "{"
    members: dict[str, tuple[int, int]] = {}
    i = _skip(text, i + 1)
    if text[i] == "}":
        return members
    while True:
        key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        i = _skip(text, i)
        assert text[i] == ":"
        start = _skip(text, i + 1)
        end = _value_end(text, start)
        members[key] = (start, end)
        i = _skip(text, end)
        if text[i] == "}":
            return members
        assert text[i] == ","
        i = _skip(text, i + 1)


def _items(text: str, i: int) -> list[tuple[int, int]]:
    """An array's items as (start, end); `i` is at the `[`."""
    assert text[i] == "["
    items: list[tuple[int, int]] = []
    i = _skip(text, i + 1)
    if text[i] == "]":
        return items
    while True:
        end = _value_end(text, i)
        items.append((i, end))
        i = _skip(text, end)
        if text[i] == "]":
            return items
        assert text[i] == ","
        i = _skip(text, i + 1)


def _source_value(text: str, cells_value: tuple[int, int], index: int) -> tuple[int, int]:
    start, _ = _items(text, cells_value[0])[index]
    return _members(text, start)["source"]


def splice_sources(notebook: Notebook, new_sources: dict[int, str]) -> str:
    """The JSON text with the `source` of the cells in `new_sources` (by index) replaced, nothing else."""
    text = notebook.text
    if not new_sources:
        return text
    cells_value = _members(text, _skip(text, 0))["cells"]
    ensure_ascii = text.isascii()  # a writer that escaped nothing wrote raw UTF-8; keep to its choice
    expected = copy.deepcopy(notebook.data)
    replacements: list[tuple[int, int, str]] = []
    for index, new in sorted(new_sources.items()):
        start, end = _source_value(text, cells_value, index)
        stored = expected["cells"][index]["source"]
        if isinstance(stored, str):
            value: str | list[str] = new
            rendered = json.dumps(new, ensure_ascii=ensure_ascii)
        else:
            value = new.splitlines(keepends=True)  # nbformat's convention for a list of lines
            rendered = _render_list(text, start, end, value, ensure_ascii)
        expected["cells"][index]["source"] = value
        replacements.append((start, end, rendered))
    pieces: list[str] = []
    last = 0
    for start, end, rendered in replacements:
        pieces += [text[last:start], rendered]
        last = end
    pieces.append(text[last:])
    new_text = "".join(pieces)
    if json.loads(new_text) != expected:
        raise _Unsafe("the notebook's JSON would not read back as expected")
    return new_text


def _render_list(text: str, start: int, end: int, lines: list[str], ensure_ascii: bool) -> str:
    """`lines` as a JSON array laid out like the array at text[start:end] (its whitespace around items)."""
    items = _items(text, start)
    if not items:
        return json.dumps(lines, ensure_ascii=ensure_ascii)
    opening = text[start + 1 : items[0][0]]
    closing = text[items[-1][1] : end - 1]
    separator = text[items[0][1] : items[1][0]] if len(items) > 1 else "," + opening
    rendered = separator.join(json.dumps(line, ensure_ascii=ensure_ascii) for line in lines)
    return "[" + opening + rendered + closing + "]"


# ---------------------------------------------------------------------- diff
def unified_diff(path: str, old: bytes, new: bytes) -> str:
    """`--diff` for a notebook: one unified diff per changed code cell, headed `a/nb.ipynb:cell N` (as ruff)."""
    import difflib

    before, after = load(old, path), load(new, path)
    if before is None or after is None:
        return ""
    display = path.replace("\\", "/").lstrip("/")
    out: list[str] = []
    for old_cell, new_cell in zip(before.cells, after.cells, strict=True):
        if old_cell.text == new_cell.text:
            continue
        out.extend(
            difflib.unified_diff(
                _diff_lines(old_cell.text),
                _diff_lines(new_cell.text),
                fromfile=f"a/{display}:cell {old_cell.number}",
                tofile=f"b/{display}:cell {new_cell.number}",
            )
        )
    return "".join(out)


def _diff_lines(text: str) -> list[str]:
    lines = _lines(text)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n\\ No newline at end of cell\n"
    return lines
