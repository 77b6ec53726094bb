"""`esper-lint sanitize`: FlexAttention's mistakes checked at run time, in the program's own runs and tests.

    import esper_lint

    with esper_lint.sanitize() as found:
        train_one_step()
    for finding in found:
        print(finding.render())

    @esper_lint.sanitize(strict=True)  # raises SanitizerError at the end when anything was found
    def test_attention(): ...

Also `esper-lint sanitize -- python train.py ARGS` (command.py) and `pytest --esper-sanitize`
(pytest_support.py). Importing this package does not import torch; entering a sanitized block does.
See docs/sanitize.md for the checks, what each proves, the supported torch versions and the costs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

from .records import RuntimeFinding, SanitizerError, fails_strict
from .session import STATE, Session

__all__ = ["RuntimeFinding", "Sanitize", "SanitizerError", "sanitize"]

F = TypeVar("F", bound=Callable[..., Any])


class Sanitize(contextlib.ContextDecorator):
    """The checks for the duration of a block (or of each call of a decorated function). `found`, returned
    by `with ... as found`, fills as findings arrive; under strict=True a block that ends with a finding
    (hints aside) raises SanitizerError, and a BlockMask whose batch/head counts could crash the compiled
    kernel (ESP019/ESP028) is refused before the call."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.found: list[RuntimeFinding] = []
        self._sessions: list[Session] = []

    def __enter__(self) -> list[RuntimeFinding]:
        from .install import install

        session = Session(self.strict, listener=self._collect)
        with STATE.lock:
            STATE.sessions.append(session)
        try:
            install()
        except BaseException:
            with STATE.lock:
                STATE.sessions.remove(session)
            raise
        self._sessions.append(session)
        return self.found

    def _collect(self, finding: RuntimeFinding, first: bool) -> None:
        if first:
            self.found.append(finding)

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        import sys

        from .install import uninstall

        calls = sys.modules.get(__name__ + ".calls")
        if calls is not None:
            calls.flush()  # the final eager-path counts
        session = self._sessions.pop()
        with STATE.lock:
            STATE.sessions.remove(session)
        uninstall()
        found = session.all()
        if self.strict and kind is None and fails_strict(found):
            raise SanitizerError(
                "esper-lint sanitize (strict): "
                + "; ".join(f"{f.code} at {f.where}" for f in found if f.severity != "hint")
                + "\n"
                + "\n".join(f.render() for f in found),
                found,
            )


@overload
def sanitize(strict: F) -> F: ...
@overload
def sanitize(strict: bool = False) -> Sanitize: ...
def sanitize(strict: Any = False) -> Any:
    """`with sanitize(strict=False) as found:` / `@sanitize()` / `@sanitize`: see `Sanitize`."""
    if callable(strict):  # used as a bare decorator
        return Sanitize()(strict)
    return Sanitize(bool(strict))
