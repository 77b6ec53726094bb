"""The notebook source adapter: a notebook's code cells go through the engine and the fixer as the one module
they make (cells.py), as a Python file does; findings come back to their cells, fixed cells go back into the
notebook's JSON (splice.py).

Checking is one analysis of the module. Fixing runs in rounds, each a `fix.file_fixer.fix_round` of the module (the
path `fix_source` takes for a file): a changed cell is taken only if it stays self-contained, and a round
starts from the analysis the previous one verified when the cells it took make up that very module, so each
round analyses its text once. The findings that remain are positioned in the fixed cells when the notebook
is written, else (`--diff`) in the cells on disk.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import TYPE_CHECKING

from ..core.findings import FileError, FileResult, Finding
from .cells import MARKER_LINE, CodeCell, Notebook, NotebookError, join, load, map_errors, map_findings, notebook_error
from .magics import lines, restore_magics
from .splice import CannotSplice, splice_sources

if TYPE_CHECKING:
    from ..config import Config
    from ..engine import Analysis


# ---------------------------------------------------------------------- lint
def lint_notebook(source: bytes, path: str, config: Config) -> FileResult:
    """Lint a notebook's code cells. Never raises for bad input: problems become FileErrors."""
    from ..engine import lint_source

    try:
        notebook = load(source, path)
    except NotebookError as exc:
        return FileResult(path, errors=[exc.error])
    if notebook is None:
        return FileResult(path)
    return _in_cells(notebook, path, config, lint_source(_module(notebook), path, config))


def _module(notebook: Notebook) -> bytes:
    return notebook.python.encode("utf-8")


def _in_cells(notebook: Notebook, path: str, config: Config, checked: FileResult) -> FileResult:
    """The module's lint result placed in the cells; for a module with a syntax error, the other cells'."""
    if any(e.kind == "syntax-error" for e in checked.errors):
        checked = _lint_other_cells(notebook, path, config) or checked
    return FileResult(path, map_findings(notebook, checked.findings), map_errors(notebook, checked.errors))


def _lint_other_cells(notebook: Notebook, path: str, config: Config) -> FileResult | None:
    """A syntax error in some cells: lint the others, each broken cell reported as a syntax error of its own
    (as ruff does). None when every cell is broken, or the others still do not parse together: then the
    notebook is reported as it is."""
    from ..engine import lint_source

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
        CodeCell(c.index, c.text, "\n" * len(lines(c.python)), {}) if c.index in broken else c for c in notebook.cells
    ]
    python, _ = join(cells)
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


def _analyse(notebook: Notebook, path: str, config: Config, known: Analysis | None = None) -> Analysis | FileResult:
    """`lint_source` on the notebook's module, keeping the analysis (`known`, when the caller has it): the
    Analysis, or the FileResult of a module that the prefilter rules out or that cannot be analysed."""
    from ..core.decoding import SourceError
    from ..engine import analyze_bytes, lint_source, might_match

    module = _module(notebook)
    if not might_match(module, config):
        return lint_source(module, path, config)  # only the decode check
    if known is not None:
        return known
    try:
        return analyze_bytes(module, path, config)
    except SourceError as exc:
        return FileResult(path, errors=[exc.error])


# ---------------------------------------------------------------------- fix
def fix_notebook(source: bytes, path: str, config: Config, written: bool = True) -> FileResult:
    """Apply every safe fix to the notebook's cells; `new_source` is the notebook's new JSON bytes. The
    findings that remain are positioned in the fixed cells when it is `written`, else (`--diff`) in `source`.

    The whole module is fixed at once, and each changed cell is taken only if it stays self-contained:
    the fixer shares one definition between identical functions, which across cells would make a later
    cell depend on an earlier one. Such a cell is left for the next round, where its function is hoisted
    into its own cell (under a fresh name, as the shared one now exists); rounds stop when nothing changes.
    """
    from ..engine import collector_paused

    with collector_paused():  # as `fix_source`: the trees stay alive while LibCST allocates
        return _fix_notebook(source, path, config, written)


def _fix_notebook(source: bytes, path: str, config: Config, written: bool) -> FileResult:
    from ..fix.file_fixer import fix_round, remaining_on_disk

    result = FileResult(path, original_source=source)
    try:
        original = load(source, path)
    except NotebookError as exc:
        result.errors.append(exc.error)
        return result
    if original is None:
        return result
    first = _analyse(original, path, config)
    if isinstance(first, FileResult):  # nothing to fix, or not checkable: reported as checking reports it
        unfixed = _in_cells(original, path, config, first)
        unfixed.original_source = source
        return unfixed
    if any(f.fixable for f in first.findings) and _awaits_at_top_level(original.python):
        message = "not fixed: a cell uses top-level `await`, which only IPython runs; move the functions by hand"
        return _unchanged(original, source, first, FileError(path, message, kind="fix-error"))
    current = original
    analysis: Analysis | None = first  # of `current`'s module, when a round already made it
    remaining: list[Finding] | None = None
    try:
        for attempt in range(len(current.cells) + 1):  # each round takes at least one more cell, or stops
            fixed_round = fix_round(_module(current), path, config, analysis)
            fixed = fixed_round.result
            if fixed.errors and attempt == 0:  # the notebook as read: report it as fix_source did
                placed = FileResult(path, map_findings(current, fixed.findings), map_errors(current, fixed.errors))
                placed.original_source = source
                return placed
            if fixed.errors:
                raise CannotSplice(f"a later pass failed: {fixed.errors[0].message}")
            if fixed.new_source is None:
                remaining = fixed.findings
                break
            before = fixed_round.analysis
            assert before is not None  # the module changed: it was analysed
            fixable_cells = {_cell_of(current, f) for f in before.findings if f.fixable}
            new_sources = _cells_to_update(current, fixed.new_source.decode("utf-8"), fixable_cells)
            if not new_sources:
                remaining = before.findings
                break
            updated = load(current.encode(splice_sources(current, new_sources)), path)
            assert updated is not None
            current = updated
            # The cells taken make up the very module this round verified: the next round starts from it.
            analysis = fixed_round.fixed if fixed.new_source == _module(current) else None
    except Exception as exc:  # CannotSplice, or a bug: it must cost this notebook's fix, never the file or the run
        reason = str(exc) if isinstance(exc, CannotSplice) else f"{type(exc).__name__}: {exc}"
        message = f"could not fix this notebook ({reason}); it was left unchanged. Please report this with the file."
        return _unchanged(original, source, first, FileError(path, message, kind="internal-error"))
    errors: list[FileError] = []
    if remaining is None:  # the rounds ran out: the last one's cells are checked as they stand
        last = _analyse(current, path, config, analysis)
        remaining, errors = (last.findings, last.errors) if isinstance(last, FileResult) else (last.findings, [])
    new_source = current.encode(current.text)
    result.new_source = new_source if new_source != source else None
    if not written and result.new_source is not None:  # as they stand in the notebook on disk
        on_disk = remaining_on_disk(remaining, current.python, first.findings, original.python)
        result.findings = map_findings(original, on_disk)
    else:
        result.findings = map_findings(current, remaining)
        result.errors = map_errors(current, errors)
    result.fixed = max(0, len(first.findings) - len(remaining)) if result.new_source is not None else 0
    return result


def _unchanged(notebook: Notebook, source: bytes, analysis: Analysis, error: FileError) -> FileResult:
    """The notebook left as it is (`source`), reported as checking reports it, with the reason."""
    return FileResult(notebook.path, map_findings(notebook, analysis.findings), [error], original_source=source)


def _cell_of(notebook: Notebook, finding: Finding) -> int | None:
    where = notebook.locate(finding.span.line)
    return finding.cell if where is None else where[0]


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


def fix_notebook_file(path: str, source: bytes, config: Config) -> FileResult:
    """fix_notebook, then write the new JSON in place (atomically, as for Python files)."""
    from ..fix.writer import WriteRefused, write_atomic

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


# ---------------------------------------------------------------------- fixed module -> cells
def _split(notebook: Notebook, fixed_python: str) -> list[str]:
    """The fixed module cut back into the code cells at the markers (placeholders still in)."""
    pieces: list[list[str]] = [[]]
    expected = [cell.number for cell in notebook.cells[1:]]
    for line in lines(fixed_python):
        match = MARKER_LINE.match(line)
        if match is not None:
            if not expected or int(match.group(1)) != expected[0]:
                raise CannotSplice("a cell boundary moved")
            expected.pop(0)
            pieces.append([])
            continue
        pieces[-1].append(line)
    if expected or len(pieces) != len(notebook.cells):
        raise CannotSplice("a cell boundary was lost")
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
            raise CannotSplice(f"the fix would change cell {cell.number}, which has nothing to fix")
        python = _like(cell.python, python)
        try:
            compile(python, f"cell {cell.number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            raise CannotSplice(f"cell {cell.number} would not compile on its own ({exc})") from None
        if _free_names(python) - _free_names(cell.python) - imported_before:
            continue  # it would use a function now defined in another cell: left for the next round
        restored = restore_magics(python, cell.magics)
        if restored is None:
            raise CannotSplice(f"the IPython magics of cell {cell.number} could not be put back")
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
    endings = {line[len(line.rstrip("\r\n")) :] for line in lines(original)} - {""}
    if endings == {"\r\n"}:  # a CRLF cell in a notebook whose joined module starts LF: new lines follow the cell
        new = re.sub(r"(?<!\r)\n", "\r\n", new)
    if not original.endswith(("\n", "\r")) and new.endswith("\n"):
        new = new[:-2] if new.endswith("\r\n") else new[:-1]
    return new


# ---------------------------------------------------------------------- --add-noqa
def add_noqa(source: bytes, path: str, config: Config) -> tuple[bytes, int, list[str]]:
    """`# noqa: CODES` on each cell line with a finding, spliced into the notebook's JSON as `--fix` splices
    (only the `source` of the changed cells); the new bytes, how many lines got one, and the places
    (`cell 3:2`) that cannot take one. Raises NotebookError for an unreadable notebook."""
    from ..core.noqa import add_noqa as insert_noqa
    from ..engine import lint_source

    notebook = load(source, path)
    if notebook is None:
        return source, 0, []
    by_cell: dict[int, dict[int, set[str]]] = {}
    for finding in lint_source(_module(notebook), path, config).findings:
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
        restored = restore_magics(python, cell.magics)
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
    except CannotSplice as exc:
        raise notebook_error(path, f"no `# noqa` added: {exc}") from None
    return notebook.encode(text), added, skipped


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
    cell_lines = lines(text)
    if cell_lines and not cell_lines[-1].endswith(("\n", "\r")):
        cell_lines[-1] += "\n\\ No newline at end of cell\n"
    return cell_lines
