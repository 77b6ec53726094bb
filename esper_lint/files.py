"""The file walker: which files a run looks at.

Directories are walked in sorted order (output is deterministic), skipping the usual tool folders,
configured `exclude`/`extend-exclude` patterns and what `.gitignore` files name (matched with pathspec,
which implements git's own rules). Paths named on the command line are checked even when excluded or
ignored themselves (as ruff does), unless `--force-exclude`; nothing passes silently: a path with no
Python file, or a named file with another suffix, gives a warning. Symlinked directories are not
followed, so a symlink loop cannot trap the walk and `--fix` never writes outside the tree it was given.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from .config import Config
from .core.findings import FileError
from .core.records import NamedTuple

PYTHON_SUFFIXES = (".py", ".pyi")
NOTEBOOK_SUFFIX = ".ipynb"
WALKED_SUFFIXES = (*PYTHON_SUFFIXES, NOTEBOOK_SUFFIX)  # Jupyter notebooks too, as ruff (esper_lint/notebook/)


def is_notebook(path: str) -> bool:
    """Here, not in notebook/: telling a notebook by its name must not import the notebook machinery."""
    return path.endswith(NOTEBOOK_SUFFIX)


_SKIPPED = "it was skipped"


NO_PYTHON_FILES = "No Python files found under the given path(s)"


class Discovery(NamedTuple):
    files: list[str]
    errors: list[FileError]
    warnings: list[str]  # shown on stderr; they do not change the exit code


class _Excluder:
    """`exclude` + `extend-exclude`, compiled once into one regular expression (a large tree asks per entry).

    Like ruff, a pattern matches the path relative to the configuration root, or the entry's own name.
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._compiled = False
        self._regex_value: re.Pattern[str] | None = None
        self._root = str(config.root.resolve())

    @property
    def _regex(self) -> re.Pattern[str] | None:
        """Compiled on first use: a run on files named explicitly (pre-commit) never asks."""
        if not self._compiled:
            config = self._config
            patterns = [p.rstrip("/") for p in (*config.exclude, *config.extend_exclude) if p.strip("/")]
            joined = "|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)
            self._regex_value = re.compile(joined) if patterns else None
            self._compiled = True
        return self._regex_value

    def _relative(self, path: str, absolute: str | None = None) -> str:
        """`path` relative to the configuration's root (`absolute`: its `os.path.abspath`, when known)."""
        absolute = os.path.abspath(path) if absolute is None else absolute
        if absolute.startswith(self._root + os.sep):
            return absolute[len(self._root) + 1 :].replace(os.sep, "/")
        return "." if absolute == self._root else path.replace(os.sep, "/")

    def _matches(self, rel: str) -> bool:
        regex = self._regex
        return regex is not None and (regex.match(rel) is not None or regex.match(rel.rsplit("/", 1)[-1]) is not None)

    def excluded_entry(self, path: str, absolute: str) -> bool:
        """An entry met while walking (`absolute`: its absolute path): its folders were already checked on
        the way down."""
        return self._matches(self._relative(path, absolute))

    def excluded(self, path: str) -> bool:
        """A path named explicitly (--force-exclude): it, or any folder above it, may be excluded."""
        parts = self._relative(path).split("/")
        return any(self._matches("/".join(parts[: i + 1])) for i in range(len(parts)))


def force_excluded(path: str, config: Config) -> bool:
    """A path named on its own (`--stdin-filename`, an editor's buffer): excluded with `force-exclude` only."""
    return config.force_exclude and _Excluder(config).excluded(path)


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
    warnings: list[str] = []
    seen: set[str] = set()

    def add(path: str, real: str | None = None) -> None:
        key = os.path.realpath(path) if real is None else real
        if key not in seen:
            seen.add(key)
            files.append(path)

    for raw in paths:
        path = os.path.normpath(raw) if raw not in ("", ".") else "."
        try:
            st = os.stat(path)
        except OSError as exc:  # missing, broken or looping symlink, permission denied on a parent, ...
            errors.append(_stat_error(raw, exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            # Like ruff, a folder named on the command line is checked even if it is excluded or
            # git-ignored itself, unless --force-exclude; what lies below it is filtered as usual.
            ignored = _gitignored(path, config, gitignore, True)
            if config.force_exclude and (ignored or excluder.excluded(path)):
                continue
            ancestors = _git_ancestors(path) if config.respect_gitignore else []
            if ignored:
                ancestors = [os.path.abspath(path)]  # the files above it ignore it all: only its own apply
            for directory in ancestors:
                gitignore.load(directory)
            walked = _walk(path, excluder, gitignore if config.respect_gitignore else None, ancestors, errors)
            for found, real in walked:
                add(found, real)
        elif stat.S_ISREG(st.st_mode):
            # Files named explicitly are checked, unless --force-exclude says otherwise (pre-commit passes
            # staged files explicitly; the configured excludes must still hold).
            if config.force_exclude and (excluder.excluded(path) or _gitignored(path, config, gitignore)):
                continue
            if not path.endswith(WALKED_SUFFIXES) and Path(path).suffix:  # a notebook is read as one
                warnings.append(f"{raw}: not a Python file name ({', '.join(PYTHON_SUFFIXES)}); checked as Python")
            add(path)
        else:
            errors.append(_not_regular(raw, st.st_mode))
    if not files and not errors:
        warnings.append(NO_PYTHON_FILES)
    return Discovery(files, errors, warnings)


def _stat_error(path: str, exc: OSError) -> FileError:
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return FileError(path, f"broken symbolic link; {_SKIPPED}: fix or remove the link", kind="io-error")
        return FileError(path, f"no such file or directory; {_SKIPPED}: check the path", kind="io-error")
    if exc.errno == errno.ELOOP:
        return FileError(path, f"symbolic link loop; {_SKIPPED}: fix or remove the link", kind="io-error")
    if isinstance(exc, PermissionError):
        return FileError(path, f"permission denied; {_SKIPPED}: make it readable", kind="io-error")
    return FileError(path, f"{exc.strerror or exc}; {_SKIPPED}", kind="io-error")


def _not_regular(path: str, mode: int) -> FileError:
    """FIFOs, sockets and devices are never opened: reading one could block forever or never end."""
    what = (
        "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode))
        else "not a regular file"
    )
    return FileError(path, f"is {what}, not a Python source file; {_SKIPPED}: lint regular files only", kind="io-error")


def _gitignored(path: str, config: Config, gitignore: _GitIgnore, is_dir: bool = False) -> bool:
    """Whether git ignores `path` (git's rules also ignore everything below an ignored folder)."""
    if not config.respect_gitignore:
        return False
    absolute = os.path.abspath(path)
    ancestors = _git_ancestors(os.path.dirname(absolute))
    for d in ancestors:
        gitignore.load(d)
    return gitignore.ignored(absolute, is_dir, ancestors)


def _walk(
    root: str,
    excluder: _Excluder,
    gitignore: _GitIgnore | None,
    ancestors: list[str],
    errors: list[FileError],
    tree: str | None = None,
    absolute_root: str | None = None,
    real_root: str | None = None,
) -> Iterator[tuple[str, str]]:
    """Python files under `root`, sorted, each with its real path (what `discover` tells copies apart by);
    `tree` is the real path of the folder the walk started from; `absolute_root` and `real_root`, those of
    `root` when the caller knows them."""
    tree = tree if tree is not None else os.path.realpath(root)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or str(exc)
        errors.append(FileError(root, f"cannot list directory ({reason}); its files were not checked", kind="io-error"))
        return
    abs_root = absolute_root if absolute_root is not None else os.path.abspath(root)
    real = real_root if real_root is not None else tree
    chain = ancestors if ancestors and ancestors[-1] == abs_root else [*ancestors, abs_root]
    if gitignore is not None:
        gitignore.load(abs_root)
    # An entry's name holds no separator, and the walk follows no symlinked folder: an entry's absolute and
    # real paths are those of `root` and its name (`os.path.abspath` and `os.path.realpath` of its path,
    # without their cost for each of the thousands of entries of a large tree).
    prefix = _folder_prefix(abs_root)
    real_prefix = _folder_prefix(real)
    for entry in entries:
        path = os.path.join(root, entry.name) if root != "." else entry.name
        absolute = prefix + entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)  # symlinked folders are not followed: no loops
        except OSError:
            continue
        if excluder.excluded_entry(path, absolute):
            continue
        if gitignore is not None and gitignore.ignored(absolute, is_dir, chain):
            continue
        if is_dir:
            yield from _walk(path, excluder, gitignore, chain, errors, tree, absolute, real_prefix + entry.name)
        elif entry.name.endswith(WALKED_SUFFIXES):
            found = _python_entry(entry, path, tree, errors)
            if found is not None:
                yield found, os.path.realpath(path) if entry.is_symlink() else real_prefix + entry.name


def _folder_prefix(folder: str) -> str:
    """What a name inside `folder` is joined to: the folder and one separator."""
    return folder if folder.endswith(os.sep) else folder + os.sep


def _python_entry(entry: os.DirEntry[str], path: str, tree: str, errors: list[FileError]) -> str | None:
    """The path if this `*.py` entry is a file to lint; an error for one that cannot be (never silently clean)."""
    try:
        st = os.stat(path)  # follows a symlink to its target
    except OSError as exc:
        errors.append(_stat_error(path, exc))
        return None
    if not stat.S_ISREG(st.st_mode):
        errors.append(_not_regular(path, st.st_mode))
        return None
    # A symlinked file is linted (and so may be fixed) only if its target lies inside the walked tree;
    # links out of the tree are skipped, so --fix can never reach outside the paths it was given.
    if entry.is_symlink() and not os.path.realpath(path).startswith(tree + os.sep):
        return None
    return path
