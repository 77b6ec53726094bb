"""What the language server asks of esper-lint, without any LSP: configuration, findings, fixes.

Everything goes through the public entry points the command line uses (`lint_source`, `fix_source`,
`load_config`), so a buffer gets exactly the findings and the fixed text that `esper-lint` and
`esper-lint --fix` give for the same bytes on disk. LibCST is imported only by `fix_source`.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, ConfigError, load_config
from ..core.findings import FileError, FileResult, Finding
from ..core.noqa import noqa_pattern
from ..engine import lint_source
from ..project import ProjectIndex, project_root
from .text import Buffer, BufferEncodingError, split_lines

StatStamp = tuple[tuple[str, int, int] | None, ...]


class ConfigCache:
    """The nearest `[tool.esper-lint]` for each folder, as the CLI finds it, re-read when a candidate
    pyproject.toml appears, changes or disappears (checked by stat on every lookup: a few
    microseconds per folder level, and no file watcher needed for correctness)."""

    def __init__(self) -> None:
        self._by_folder: dict[Path, tuple[StatStamp, Config | ConfigError]] = {}
        self._projects: dict[tuple[Config, Path], ProjectIndex] = {}

    def for_file(self, path: Path) -> Config:
        """The configuration for `path` (raises ConfigError, in one line, for a broken pyproject.toml),
        with the index of its project's modules: as the CLI, a buffer is checked against the other
        modules as saved on disk (re-read when they change; open buffers of them are not used)."""
        config = self._config_for(path)
        root = project_root(config, [str(path)])
        project = self._projects.get((config, root))
        if project is None:
            project = self._projects[(config, root)] = ProjectIndex(config, [str(path)])
        project.refresh()
        return config.with_project(project)

    def _config_for(self, path: Path) -> Config:
        folder = path.parent
        stamp = _stamp(folder)
        cached = self._by_folder.get(folder)
        if cached is None or cached[0] != stamp:
            try:
                loaded: Config | ConfigError = load_config(None, folder)
            except ConfigError as exc:
                loaded = exc
            cached = (stamp, loaded)
            self._by_folder[folder] = cached
        if isinstance(cached[1], ConfigError):
            raise cached[1]
        return cached[1]

    def clear(self) -> None:
        self._by_folder.clear()
        self._projects.clear()


def _stamp(folder: Path) -> StatStamp:
    """mtime, size and inode of every pyproject.toml that config discovery could read for `folder`."""
    entries: list[tuple[str, int, int] | None] = []
    for directory in (folder, *folder.parents):
        try:
            info = os.stat(directory / "pyproject.toml")
        except OSError:
            entries.append(None)
            continue
        entries.append((str(info.st_mtime_ns), info.st_size, info.st_ino))
    return tuple(entries)


def excluded(path: str, config: Config) -> bool:
    """As for `--stdin-filename`, the way editors run the CLI: excludes apply with `force-exclude` only."""
    from ..files import force_excluded

    return force_excluded(path, config)


def lint_buffer(buffer: Buffer, path: str, config: Config) -> FileResult:
    """The CLI's findings for the buffer's bytes; never raises (a failure becomes an internal-error).

    The engine asks LibCST about a file that CPython cannot parse (LibCST may accept syntax newer than
    the running Python). An editor buffer is often half-typed, and the server must not pay for LibCST
    before a fix is asked for: until then, such a buffer is reported as CPython's syntax error.
    """
    if excluded(path, config):
        return FileResult(path)
    return _checked(path, buffer.text, lambda: lint_source(buffer.source, path, config))


def _checked(path: str, python: str, lint: Callable[[], FileResult]) -> FileResult:
    """`lint()` with LibCST kept unloaded (see lint_buffer); `python` is the code it checks."""
    try:
        try:
            with _without_libcst():
                return lint()
        except _NeedsLibcst:
            error = _syntax_error(python, path)
            if error is not None:
                return FileResult(path, errors=[error])
            return lint()  # valid but beyond the fast path: rare
    except Exception as exc:  # a bug in a rule must cost this buffer's findings, not the server
        return FileResult(path, errors=[internal_error(path, "check", exc)])


# ---------------------------------------------------------------------- notebooks
# A notebook open in an editor is its cells: (is a code cell, text), in order, markdown cells included so
# that cell numbers are Jupyter's. esper-lint reads notebooks as nbformat 4 JSON: build just that.
Cells = Sequence[tuple[bool, str]]


def notebook_json(cells: Cells) -> bytes:
    def cell(code: bool, text: str) -> dict[str, object]:
        if code:
            return {"cell_type": "code", "metadata": {}, "source": text, "outputs": [], "execution_count": None}
        return {"cell_type": "markdown", "metadata": {}, "source": text}

    document = {"cells": [cell(code, text) for code, text in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def lint_cells(cells: Cells, path: str, config: Config) -> FileResult:
    """`esper-lint` on the notebook the cells make up; findings carry their 1-based `cell`."""
    from ..notebook import lint_notebook

    if excluded(path, config):
        return FileResult(path)
    python = "\n".join(text for code, text in cells if code)  # only to word a syntax error
    return _checked(path, python, lambda: lint_notebook(notebook_json(cells), path, config))


def fix_cells(cells: Cells, path: str, config: Config, code: str | None = None) -> tuple[list[str] | None, int]:
    """`esper-lint --fix` (or `--fix --select CODE`) on the notebook: every cell's new text, or None."""
    from ..notebook import fix_notebook

    if excluded(path, config):
        return None, 0
    if code is not None:
        config = config.replace(select=frozenset({code}))
    try:
        result = fix_notebook(notebook_json(cells), path, config)
    except Exception:  # fix_notebook guards its own work; nothing around it may stop the server
        return None, 0
    if result.new_source is None:
        return None, 0
    fixed = json.loads(result.new_source)["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in fixed], result.fixed


class _NeedsLibcst(Exception):
    """The engine reached for LibCST while the server was keeping it unloaded."""


@contextmanager
def _without_libcst() -> Iterator[None]:
    """Make `import libcst` fail fast (None in sys.modules) unless a fix has already loaded it.

    The server lints on one thread (the event loop), so nothing else imports in the meantime.
    """
    if "libcst" in sys.modules:
        yield
        return
    sys.modules["libcst"] = None  # type: ignore[assignment]
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "libcst":
            raise _NeedsLibcst from None
        raise
    finally:
        if "libcst" in sys.modules and sys.modules["libcst"] is None:
            del sys.modules["libcst"]


def internal_error(path: str, what: str, exc: Exception) -> FileError:
    message = f"esper-lint failed to {what} this file ({type(exc).__name__}: {exc}); please report it with the file"
    return FileError(path, message, kind="internal-error")


def _syntax_error(text: str, path: str) -> FileError | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings are not ours to report
            compile(text, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        return FileError(path, exc.msg, exc.lineno or 1, exc.offset or 1, "syntax-error")
    except (ValueError, RecursionError, MemoryError):
        return None  # NUL bytes, absurd nesting: the engine words these itself
    return None


@dataclass(frozen=True)
class FixOutcome:
    """A fix computed for a buffer: the new text (None when nothing changes) and how many findings it fixes."""

    new_text: str | None
    fixed: int
    error: FileError | None = None
    remaining: tuple[Finding, ...] = ()  # what the fixer left (its messages say why a fix was ruled out)


def fix_buffer(buffer: Buffer, path: str, config: Config, code: str | None = None) -> FixOutcome:
    """`esper-lint --fix` on the buffer's bytes; with `code`, the same fix restricted to that one rule
    (`--fix --select CODE`). The fix API has no per-finding entry point, so a quick fix for one
    diagnostic applies its rule's fix to every finding of that rule in the file, as `--fix` would."""
    from ..fix.file_fixer import fix_source

    if excluded(path, config):
        return FixOutcome(None, 0)
    if code is not None:
        config = config.replace(select=frozenset({code}))
    try:
        result = fix_source(buffer.source, path, config)
    except Exception as exc:  # fix_source guards its own codemod; this is for anything around it
        return FixOutcome(None, 0, internal_error(path, "fix", exc))
    if result.new_source is None:
        return FixOutcome(None, 0, result.errors[0] if result.errors else None, tuple(result.findings))
    return FixOutcome(buffer.decode(result.new_source), result.fixed)


def add_noqa(buffer: Buffer, path: str, config: Config, finding: Finding) -> str | None:
    """The buffer with `# noqa: CODE` on the finding's line, or None when no comment there silences it
    (the line ends inside a string, or after a backslash). Each candidate is linted again to prove it."""
    lines = split_lines(buffer.text)
    index = finding.span.line - 1
    if not 0 <= index < len(lines):
        return None
    line = lines[index]
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    candidates = []
    existing = noqa_pattern().search(body)
    if existing is not None and existing.group("codes"):
        cut = existing.end("codes")
        candidates.append(f"{body[:cut]}, {finding.code}{body[cut:]}")
    candidates.append(f"{body}  # noqa: {finding.code}")
    for candidate in candidates:
        new_text = "".join([*lines[:index], candidate + ending, *lines[index + 1 :]])
        try:
            new_buffer = Buffer.from_text(new_text)
        except BufferEncodingError:
            return None
        result = lint_buffer(new_buffer, path, config)
        if not result.errors and not any(
            f.code == finding.code and f.span.line == finding.span.line for f in result.findings
        ):
            return new_text
    return None
