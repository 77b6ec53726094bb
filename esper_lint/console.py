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
from types import FrameType, TracebackType

from .core.interrupts import Interrupted, raise_interrupted, was_interrupted

EXIT_INTERRUPTED = 130
_MESSAGE = b"esper-lint: error: interrupted\n"


def _exit_now(signum: int, frame: FrameType | None) -> None:
    os.write(2, _MESSAGE)
    os._exit(EXIT_INTERRUPTED)


def _install(handler: signal.Handlers | object) -> None:
    if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, _exit_now, raise_interrupted):
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


def _load_check() -> None:
    """Import what a check runs (configuration, rules, runner, analysis: most of a one-file run's start-up)
    with the cyclic collector paused, then leave those objects out of its later passes (`gc.freeze`): they
    live as long as the process, and the collector's passes over them would find nothing."""
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        from . import config, runner  # noqa: F401
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def entry_point() -> None:
    _install(_exit_now)
    sys.excepthook = _excepthook
    from .plain_check import parse, run

    opts = parse(sys.argv[1:])  # a plain check runs without click (start-up time); None: click reads it
    if opts is None:
        from .cli import entry_point as run_cli
    else:
        _load_check()
    _install(raise_interrupted)
    try:
        if opts is None:
            run_cli()
        else:
            run(opts)
    finally:
        if was_interrupted():  # however the run ended after Ctrl-C (an error raised while unwinding, ...)
            _exit_interrupted()
        _flush_output()  # then an interrupt while Python shuts down need not wait for anything
        _install(_exit_now)
