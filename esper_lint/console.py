"""The `esper-lint` console script: Ctrl-C at any moment ends the run with one line and exit code 130.

Three phases, each with its own SIGINT handler (installed only when SIGINT has Python's default handler:
a shell starts background jobs with SIGINT ignored, and that choice is kept):
- start-up (importing the CLI, click, ...): nothing has been written yet, so the process exits at once;
- the run: the handler raises `Interrupted`, so `finally` blocks remove temporary files (a fix is written
  to a temporary file and renamed, never half-written). It is not a KeyboardInterrupt, which click would
  turn into `Aborted!` with exit code 1. It also sets a flag that the runner checks between files, so an
  interrupt swallowed where Python cannot raise (inside a `__del__`) still stops the run after one file,
  and whatever the run then raises or returns, it ends as interrupted. Inside `interrupts_deferred()` (the
  few lines that create a temporary file and rename it into place) Ctrl-C waits for the step to end. A
  second Ctrl-C meanwhile is ignored: stopping the worker pool halfway could leave workers behind;
- shutdown: the output has been flushed, so the process exits at once again.

This module imports only small standard modules, so the first phase starts early. Python's own start-up
(`site`, before any of esper-lint's code runs) reports an interrupt itself; that is out of reach.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType, TracebackType

EXIT_INTERRUPTED = 130
_MESSAGE = b"esper-lint: error: interrupted\n"


class Interrupted(BaseException):
    """Ctrl-C during a run (BaseException: `except Exception` handlers let it through)."""


_interrupted = False


def raise_if_interrupted() -> None:
    """Between two units of work: stop if Ctrl-C was pressed, even if its exception got lost."""
    if _interrupted:
        raise Interrupted


def _exit_now(signum: int, frame: FrameType | None) -> None:
    os.write(2, _MESSAGE)
    os._exit(EXIT_INTERRUPTED)


def was_interrupted() -> bool:
    return _interrupted


_deferring = 0


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write a report in UTF-8 through a temporary file renamed over `path` (folders made as needed): a
    reader never sees half of it, and Ctrl-C waits until it is written, or removed."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with interrupts_deferred():
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """A short step that must not stop halfway (create a temporary file and rename it over the original):
    Ctrl-C inside it takes effect when it ends."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    raise_if_interrupted()


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    if _interrupted:
        return  # a second Ctrl-C while unwinding: let the cleanup (temporary files, worker pool) finish
    _interrupted = True
    if not _deferring:
        raise Interrupted


def _install(handler: signal.Handlers | object) -> None:
    if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, _exit_now, _raise_interrupted):
        signal.signal(signal.SIGINT, handler)  # type: ignore[arg-type]


def _exit_interrupted() -> None:
    with contextlib.suppress(BaseException):  # a closed pipe or a second Ctrl-C: exit regardless
        sys.stdout.flush()  # what was already reported stays reported
    _exit_now(signal.SIGINT, None)


def _excepthook(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
    """An interrupt that escapes everything else (however late) is still one line and exit 130."""
    if issubclass(kind, (Interrupted, KeyboardInterrupt)):
        _exit_interrupted()
    sys.__excepthook__(kind, value, traceback)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (OSError), or a stream the command closed itself (ValueError: the language server
        # closes stdout when the editor says `exit`): nothing more can be shown.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def entry_point() -> None:
    _install(_exit_now)
    sys.excepthook = _excepthook
    from .plain_check import parse, run

    opts = parse(sys.argv[1:])  # a plain check runs without click (start-up time); None: click reads it
    if opts is None:
        from .cli import entry_point as run_cli
    _install(_raise_interrupted)
    try:
        if opts is None:
            run_cli()
        else:
            run(opts)
    finally:
        if _interrupted:  # however the run ended after Ctrl-C (an error raised while unwinding, ...)
            _exit_interrupted()
        _flush_output()  # then an interrupt while Python shuts down need not wait for anything
        _install(_exit_now)
