"""Ctrl-C during a run: the state every layer consults, and the handler the console script installs.

The handler raises `Interrupted` (not KeyboardInterrupt, which click turns into `Aborted!` with exit 1), so
`finally` blocks remove temporary files. It also sets a flag that the runner checks between files, so an
interrupt swallowed where Python cannot raise (inside a `__del__`) still stops the run after one file.
Inside `interrupts_deferred()` (the few lines that create a temporary file and rename it into place)
Ctrl-C waits for the step to end. A second Ctrl-C meanwhile is ignored: stopping the worker pool halfway
could leave workers behind. The console script (`esper_lint/console.py`) decides when it is installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import FrameType


class Interrupted(BaseException):
    """Ctrl-C during a run (BaseException: `except Exception` handlers let it through)."""


_interrupted = False
_deferring = 0


def raise_if_interrupted() -> None:
    """Between two units of work: stop if Ctrl-C was pressed, even if its exception got lost."""
    if _interrupted:
        raise Interrupted


def was_interrupted() -> bool:
    return _interrupted


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


def raise_interrupted(signum: int, frame: FrameType | None) -> None:
    """The SIGINT handler during a run."""
    global _interrupted
    if _interrupted:
        return  # a second Ctrl-C while unwinding: let the cleanup (temporary files, worker pool) finish
    _interrupted = True
    if not _deferring:
        raise Interrupted
