"""The file walker: which files a run looks at.

Directories are walked in sorted order (output is deterministic), skipping the usual tool folders,
configured `exclude`/`extend-exclude` patterns and what `.gitignore` files name (matched with pathspec,
which implements git's own rules). Symlinked directories are not followed, so a symlink loop cannot
trap the walk and `--fix` never writes outside the tree it was given.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import Config, _glob_match, _relative
from .findings import FileError

PYTHON_SUFFIXES = (".py", ".pyi")


@dataclass
class Discovery:
    files: list[str]
    errors: list[FileError]


class _Excluder:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.patterns = tuple(config.exclude) + tuple(config.extend_exclude)

    def excluded(self, path: str) -> bool:
        rel = _relative(path, self.config.root)
        parts = rel.split("/")
        # The path or any folder above it (as ruff), so --force-exclude holds for files named one by one.
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(_glob_match(c, p) for c in candidates for p in self.patterns)


class _GitIgnore:
    """Stack of .gitignore specs from the walk root down (nested files refine their directory)."""

    def __init__(self) -> None:
        self._specs: dict[str, object] = {}

    def load(self, directory: str) -> None:
        if directory in self._specs:
            return
        gitignore = os.path.join(directory, ".gitignore")
        spec = None
        if os.path.isfile(gitignore):
            import pathspec  # imported only when a .gitignore exists: keeps clean runs light

            try:
                with open(gitignore, encoding="utf-8", errors="replace") as fh:
                    spec = pathspec.GitIgnoreSpec.from_lines(fh)
            except OSError:
                spec = None
        self._specs[directory] = spec

    def ignored(self, path: str, is_dir: bool, ancestors: Sequence[str]) -> bool:
        for directory in ancestors:
            spec = self._specs.get(directory)
            if spec is None:
                continue
            rel = os.path.relpath(path, directory).replace(os.sep, "/")
            if is_dir:
                rel += "/"
            if spec.match_file(rel):  # type: ignore[attr-defined]
                return True
        return False


def _git_ancestors(start: str) -> list[str]:
    """Directories from the enclosing git work tree (if any) down to `start`, whose .gitignore apply."""
    chain = []
    current = os.path.abspath(start)
    while True:
        chain.append(current)
        if os.path.exists(os.path.join(current, ".git")):
            return list(reversed(chain))
        parent = os.path.dirname(current)
        if parent == current:
            return [os.path.abspath(start)]  # not in a repository: only the walk's own .gitignore files
        current = parent


def discover(paths: Sequence[str], config: Config) -> Discovery:
    excluder = _Excluder(config)
    gitignore = _GitIgnore()
    files: list[str] = []
    errors: list[FileError] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for raw in paths:
        path = os.path.normpath(raw) if raw not in ("", ".") else "."
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if os.path.islink(path):
                errors.append(FileError(raw, "broken symbolic link", kind="io-error"))
            else:
                errors.append(FileError(raw, "no such file or directory", kind="io-error"))
            continue
        except OSError as exc:  # symlink loop, permission denied on a parent, ...
            errors.append(FileError(raw, exc.strerror or str(exc), kind="io-error"))
            continue
        if stat.S_ISDIR(st.st_mode):
            if config.force_exclude and excluder.excluded(path):
                continue
            ancestors = _git_ancestors(path) if config.respect_gitignore else []
            for directory in ancestors:
                gitignore.load(directory)
            for found in _walk(path, excluder, gitignore if config.respect_gitignore else None, ancestors, errors):
                add(found)
        elif stat.S_ISREG(st.st_mode):
            # Files named explicitly are linted whatever their suffix, unless --force-exclude says otherwise
            # (pre-commit passes staged files explicitly; the configured excludes must still hold).
            if config.force_exclude and (excluder.excluded(path) or _gitignored(path, config, gitignore)):
                continue
            add(path)
        else:
            errors.append(FileError(raw, "not a regular file or directory", kind="io-error"))
    return Discovery(files, errors)


def _gitignored(path: str, config: Config, gitignore: _GitIgnore) -> bool:
    if not config.respect_gitignore:
        return False
    directory = os.path.dirname(os.path.abspath(path))
    ancestors = _git_ancestors(directory)
    for d in ancestors:
        gitignore.load(d)
    return gitignore.ignored(os.path.abspath(path), False, ancestors)


def _walk(
    root: str,
    excluder: _Excluder,
    gitignore: _GitIgnore | None,
    ancestors: list[str],
    errors: list[FileError],
) -> Iterator[str]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        errors.append(FileError(root, f"cannot list directory: {exc.strerror or exc}", kind="io-error"))
        return
    abs_root = os.path.abspath(root)
    chain = ancestors if ancestors and ancestors[-1] == abs_root else [*ancestors, abs_root]
    if gitignore is not None:
        gitignore.load(abs_root)
    for entry in entries:
        path = os.path.join(root, entry.name) if root != "." else entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file(follow_symlinks=True)
        except OSError:
            continue
        if excluder.excluded(path):
            continue
        if gitignore is not None and gitignore.ignored(os.path.join(abs_root, entry.name), is_dir, chain):
            continue
        if is_dir:
            yield from _walk(path, excluder, gitignore, chain, errors)
        elif is_file and not entry.is_symlink() and entry.name.endswith(PYTHON_SUFFIXES):
            yield path
        elif entry.is_symlink() and is_file and entry.name.endswith(PYTHON_SUFFIXES):
            # A symlinked file inside the tree is linted only if its target is inside the tree too.
            target = os.path.realpath(path)
            if target.startswith(os.path.realpath(root) + os.sep):
                yield path


def is_python_path(path: str) -> bool:
    return Path(path).suffix in PYTHON_SUFFIXES
