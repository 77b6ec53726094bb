"""Runs the engine over the files a walk found: read, lint (or fix), collect results in path order.

Checking is prefiltered, cached (`cache.py`) and parallel (`--jobs`), with a per-file time limit;
none of this changes the results, which come back in path order exactly as a serial run gives them.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Any

from .config import Config
from .core.findings import FileError, FileResult, Finding
from .core.interrupts import raise_if_interrupted
from .core.records import record_eq, record_repr
from .engine import lint_source, might_match
from .files import discover, is_notebook
from .project import ProjectIndex


class Mode(Enum):
    CHECK = "check"
    FIX = "fix"  # apply safe fixes and write files
    DIFF = "diff"  # compute fixes, write nothing


class RunResult:
    __slots__ = ("errors", "files", "warnings")
    _compared = ("files", "errors", "warnings")
    _shown = _compared
    __eq__ = record_eq
    __hash__ = None  # type: ignore[assignment]
    __repr__ = record_repr

    def __init__(
        self,
        files: list[FileResult] | None = None,
        errors: list[FileError] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.files: list[FileResult] = files if files is not None else []
        self.errors: list[FileError] = errors if errors is not None else []  # discovery errors (missing paths, ...)
        self.warnings: list[str] = warnings if warnings is not None else []  # discovery warnings (no Python files)

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
        return lint_any(source, path, config)
    if is_notebook(path):
        from .notebook import fix_notebook

        return fix_notebook(source, path, config, written=mode is Mode.FIX)
    from .fix.file_fixer import fix_source

    return fix_source(source, path, config, written=mode is Mode.FIX)


def lint_any(source: bytes, path: str, config: Config) -> FileResult:
    """Lint a Python file, or a Jupyter notebook's code cells (the `notebook` source adapter)."""
    if is_notebook(path):
        from .notebook import lint_notebook

        return lint_notebook(source, path, config)
    return lint_source(source, path, config)


def diff_text(path: str, old: bytes, new: bytes) -> str:
    """`--diff` output for one file: a unified diff, per cell for a notebook."""
    if is_notebook(path):
        from .notebook import unified_diff as notebook_diff

        return notebook_diff(path, old, new)
    from .fix.diff import unified_diff

    return unified_diff(path, old, new)


def _fixer(path: str) -> Callable[[str, bytes, Config], FileResult]:
    """`fix_file`, or `fix_notebook_file` for a notebook (imported only then: JSON and the cells' machinery)."""
    if is_notebook(path):
        from .notebook import fix_notebook_file

        return fix_notebook_file
    from .fix.file_fixer import fix_file

    return fix_file


def process_file(path: str, config: Config, mode: Mode) -> FileResult:
    """Lint (and in FIX/DIFF mode, fix) one file. Never raises for a bad file."""
    try:
        source = read_source(path)
    except OSError as exc:
        return FileResult(path, errors=[io_error(path, exc)])
    if mode is Mode.CHECK:
        return lint_any(source, path, config)
    try:
        # The fixer's write is atomic (temp file + rename, cleaned up on any exception), so the time
        # limit can never leave a half-written file.
        with time_limit(config.timeout):
            if mode is Mode.FIX:
                return _fixer(path)(path, source, config)
            return lint_or_fix_source(source, path, config, mode)
    except FileTimeout:
        return FileResult(path, errors=[timeout_error(path, config.timeout)], original_source=source)


def run(paths: Sequence[str], config: Config, mode: Mode = Mode.CHECK, use_cache: bool = True) -> RunResult:
    config = with_project(config, paths)  # the project's root comes from the paths as given
    discovery = discover(paths, config)
    result = RunResult(errors=discovery.errors, warnings=discovery.warnings)
    result.files = run_files(discovery.files, config, mode, use_cache=use_cache)
    return result


def run_files(
    files: Sequence[str], config: Config, mode: Mode, use_cache: bool = False, jobs: int | None = None
) -> list[FileResult]:
    """Results in the order of `files`, the same whatever `jobs` and whether the cache is used.

    Checking reads every file once here: files the prefilter rejects are done at once (a decode check),
    cached files are done after a digest; only the rest is analysed, in worker processes when there is
    enough of it. Workers re-read their file instead of receiving its bytes, so memory stays flat.
    Fixing (`--fix`/`--diff`) writes files and runs serially without the cache.

    Every file is checked with the facts of the project modules it imports (`project.py`), from one
    index per run: `config.project` if the caller gave one, else one made here for `files`.
    """
    if mode is not Mode.CHECK:
        config = with_project(config, files)
        fixed = []
        for path in files:
            raise_if_interrupted()
            if isinstance(config.project, ProjectIndex):
                config.project.refresh()  # files written so far may be modules the next one imports
            fixed.append(process_file(path, config, mode))
        return fixed
    cache = None
    if use_cache:  # hashlib and json only when the cache is used: a pre-commit run is mostly imports
        from .cache import ResultCache, digest

        cache = ResultCache(config)
    config = with_project(config, files)
    project = config.project
    if isinstance(project, ProjectIndex) and cache is not None:
        project.cache = cache
    project_index = project if isinstance(project, ProjectIndex) else None
    still_hold = project_index.still_hold if project_index is not None else None
    results: list[FileResult | None] = [None] * len(files)
    pending: list[tuple[int, str]] = []
    pending_bytes = 0
    for index, path in enumerate(files):
        raise_if_interrupted()
        try:
            source = read_source(path)
        except OSError as exc:
            results[index] = FileResult(path, errors=[io_error(path, exc)])
            continue
        matched = might_match(source, config)
        if project_index is not None:
            project_index.note(path, matched)
        if not matched:
            results[index] = lint_any(source, path, config)  # no parse: only the decode (or JSON) check
            continue
        if cache is not None:
            cached = cache.get(path, digest(source), still_hold and functools.partial(still_hold, path))
            if cached is not None:
                results[index] = cached
                continue
        pending.append((index, path))
        pending_bytes += len(source)
    workers = worker_count(jobs if jobs is not None else config.jobs, len(pending), pending_bytes)
    with_digest = cache is not None
    if workers > 1:
        outcomes = _check_parallel(pending, config, workers, with_digest)
    else:
        outcomes = _check_serial(pending, config, with_digest)
    for (index, _), (result, source_digest, used, computed) in zip(pending, outcomes, strict=True):
        results[index] = result
        if cache is not None and source_digest is not None:
            cache.put(result.path, source_digest, result, used)
        if cache is not None:
            for module, (module_digest, exports) in computed.items():
                cache.put_module(module, module_digest, exports)
    if cache is not None:
        if isinstance(project, ProjectIndex):  # modules read while validating cached results
            for module, (module_digest, exports) in project.take_computed().items():
                cache.put_module(module, module_digest, exports)
        cache.save()
    return [r for r in results if r is not None]


# Below this much source to analyse, starting worker processes costs more than it saves
# (measured: the fast backend checks about 1 MB of mask-heavy code per second per core).
PARALLEL_MIN_BYTES = 192 * 1024


def worker_count(jobs: int | None, files: int, total_bytes: int) -> int:
    if jobs is None:
        jobs = _cpu_count()
    if files < 2 or total_bytes < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(jobs, files))


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may use (containers, taskset)
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


# A file's result; the digest of the bytes checked (for the cache; None without `with_digest`); the
# questions about other project modules it rested on, with their answers' fingerprints; and what the
# modules read to answer them offer (computed in this process, for the cache: path -> (digest, exports)).
_Outcome = tuple[FileResult, "str | None", "dict[str, str]", "dict[str, tuple[str, Any]]"]


def with_project(config: Config, paths: Sequence[str]) -> Config:
    """`config` with an index of the project's modules (`project.py`) for `paths`, unless it has one."""
    if config.project is not None:
        return config
    return config.with_project(ProjectIndex(config, paths))


def check_file(path: str, config: Config, with_digest: bool = True) -> _Outcome:
    """Check one file within `config.timeout` (see `_Outcome`)."""
    project = config.project if isinstance(config.project, ProjectIndex) else None
    result, source = _check_file(path, config)
    used = project.used_by(path) if project is not None and with_digest else {}
    if project is not None and not with_digest:
        project.forget(path)  # no cache: the answers' fingerprints are not needed
    computed = project.take_computed() if project is not None else {}
    if not with_digest or source is None:
        return result, None, used, computed
    from .cache import digest

    return result, digest(source), used, computed


def _check_file(path: str, config: Config) -> tuple[FileResult, bytes | None]:
    """The file's result, and its bytes when the result is theirs (not a read error, timeout or bug)."""
    try:
        source = read_source(path)
    except OSError as exc:
        return FileResult(path, errors=[io_error(path, exc)]), None
    try:
        with time_limit(config.timeout):
            result = lint_any(source, path, config)
    except FileTimeout:
        return FileResult(path, errors=[timeout_error(path, config.timeout)]), None
    except Exception as exc:  # a bug must cost one file, not the run
        error = FileError(
            path,
            f"esper-lint failed on this file ({type(exc).__name__}: {exc}); other files were checked. "
            "Please report this with the file.",
            kind="internal-error",
        )
        return FileResult(path, errors=[error]), None
    for finding in result.findings:
        finding.target = None  # fixer-only, and not worth sending between processes
    return result, source


def timeout_error(path: str, seconds: float) -> FileError:
    return FileError(
        path,
        f"not checked: analysis took longer than {seconds:g} s. Raise `timeout` in [tool.esper-lint] "
        "or exclude the file.",
        kind="timeout",
    )


class FileTimeout(BaseException):
    """Raised inside the analysis when a file's time is up (BaseException: no handler swallows it)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the analysis after `seconds` with SIGALRM where it exists (main thread, POSIX).

    Python-level work is interrupted promptly; a hang inside C code is caught by the parallel
    runner's backstop instead, which replaces the stuck worker."""
    # Not imported yet means no thread was started (the server and the fixer import it): this is the main one.
    threading = sys.modules.get("threading")
    on_main = threading is None or threading.current_thread() is threading.main_thread()
    usable = hasattr(signal, "setitimer") and on_main
    if not usable:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise FileTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _check_serial(pending: Sequence[tuple[int, str]], config: Config, with_digest: bool) -> Iterator[_Outcome]:
    for _, path in pending:
        raise_if_interrupted()
        yield check_file(path, config, with_digest)


_worker_config: Config | None = None
_worker_digests = True


def _init_worker(config: Config, with_digest: bool) -> None:
    global _worker_config, _worker_digests
    _worker_config = config
    _worker_digests = with_digest
    # Ctrl-C goes to the whole process group: the parent alone handles it and terminates the pool.
    # SIGINT was blocked when this worker was forked (see _check_parallel): ignore it, then unblock.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _sigint_mask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _sigint_mask(how: int, signals: set[signal.Signals | int]) -> set[signal.Signals | int]:
    """pthread_sigmask where the platform has it (POSIX); elsewhere Ctrl-C is not held back."""
    if hasattr(signal, "pthread_sigmask"):
        return signal.pthread_sigmask(how, signals)
    return set()  # pragma: no cover - not POSIX


def _work(path: str) -> _Outcome:
    assert _worker_config is not None
    return check_file(path, _worker_config, _worker_digests)


def _check_parallel(
    pending: Sequence[tuple[int, str]], config: Config, workers: int, with_digest: bool
) -> Iterator[_Outcome]:
    """Check in worker processes, yielding in the order of `pending` (imap keeps order)."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    # fork starts a worker in milliseconds with everything imported; elsewhere use the platform default.
    context = multiprocessing.get_context("fork" if "fork" in methods and sys.platform == "linux" else None)
    # Backstop for a worker stuck where SIGALRM cannot reach (inside C code): give up on that file.
    backstop = config.timeout * 2 + 5
    remaining = [path for _, path in pending]
    while remaining:
        # Ctrl-C is held back while the pool starts: a worker interrupted before it ignores SIGINT, or a
        # pool created but not yet inside `with`, could outlive the run or leave the pool unable to stop.
        held = _sigint_mask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pool = context.Pool(min(workers, len(remaining)), _init_worker, (config, with_digest))
        except BaseException:
            _sigint_mask(signal.SIG_SETMASK, held)
            raise
        with pool:
            # `with` terminates the pool on the way out, also on Ctrl-C: no worker outlives the run.
            _sigint_mask(signal.SIG_SETMASK, held)
            results = pool.imap(_work, remaining, chunksize=1)
            for k, path in enumerate(remaining):
                raise_if_interrupted()
                try:
                    outcome = results.next(timeout=backstop)
                except multiprocessing.TimeoutError:
                    yield FileResult(path, errors=[timeout_error(path, config.timeout)]), None, {}, {}
                    remaining = remaining[k + 1 :]  # a fresh pool for the rest
                    break
                yield outcome
            else:
                remaining = []


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
