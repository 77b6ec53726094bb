"""Runs the engine over the files a walk found: read, lint (or fix), collect results in path order."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from .config import Config
from .engine import lint_source
from .findings import FileError, FileResult, Finding
from .files import discover


class Mode(Enum):
    CHECK = "check"
    FIX = "fix"  # apply safe fixes and write files
    DIFF = "diff"  # compute fixes, write nothing


@dataclass
class RunResult:
    files: list[FileResult] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)  # discovery errors (missing paths, ...)

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.files for f in r.findings]

    @property
    def all_errors(self) -> list[FileError]:
        return [*self.errors, *(e for r in self.files for e in r.errors)]

    @property
    def fixed(self) -> int:
        return sum(r.fixed for r in self.files)

    @property
    def files_fixed(self) -> int:
        return sum(1 for r in self.files if r.fixed)

    def exit_code(self, exit_zero: bool = False) -> int:
        if self.all_errors:
            return 2
        if self.findings and not exit_zero:
            return 1
        return 0


def read_source(path: str) -> bytes:
    """Read a file's bytes; OSError is turned into a FileError by the caller."""
    with open(path, "rb") as fh:
        return fh.read()


def io_error(path: str, exc: OSError) -> FileError:
    if isinstance(exc, IsADirectoryError):
        reason = "is a directory"
    elif isinstance(exc, PermissionError):
        reason = "permission denied"
    else:
        reason = exc.strerror or str(exc)
    return FileError(path, reason, kind="io-error")


def lint_or_fix_source(source: bytes, path: str, config: Config, mode: Mode) -> FileResult:
    """In CHECK mode lint; in FIX/DIFF mode compute the fixed source (nothing is written here)."""
    if mode is Mode.CHECK:
        return lint_source(source, path, config)
    from .fix import fix_source

    return fix_source(source, path, config)


def process_file(path: str, config: Config, mode: Mode) -> FileResult:
    """Lint (and in FIX/DIFF mode, fix) one file. Never raises for a bad file."""
    try:
        source = read_source(path)
    except OSError as exc:
        return FileResult(path, errors=[io_error(path, exc)])
    if mode is Mode.FIX:
        from .fix import fix_file

        return fix_file(path, source, config)
    return lint_or_fix_source(source, path, config, mode)


def run(paths: Sequence[str], config: Config, mode: Mode = Mode.CHECK, use_cache: bool = True) -> RunResult:
    discovery = discover(paths, config)
    result = RunResult(errors=discovery.errors)
    result.files = run_files(discovery.files, config, mode)
    return result


def run_files(files: Sequence[str], config: Config, mode: Mode) -> list[FileResult]:
    """Process files in order. (Parallelism and caching plug in here without changing results.)"""
    return [process_file(path, config, mode) for path in files]


def display_path(path: str) -> str:
    """Paths are shown as given, relative when under the current directory."""
    if os.path.isabs(path):
        try:
            rel = os.path.relpath(path)
            if not rel.startswith(".."):
                return rel
        except ValueError:
            pass
    return path
