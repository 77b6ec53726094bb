"""The runtime harness behind `esper-lint verify`: run a module before and after `--fix` and measure.

Importing this package never imports torch: the parent process only plans the run and reads results;
each variant is imported and driven in its own worker subprocess (`esper_lint.harness.worker`).

    from esper_lint.harness import verify
    report = verify("src/model/attention.py", factory="make_block", kwargs={"dim": 64}, device="cpu")
    assert report.equivalent and report.masks_consistent
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .options import HarnessError, VerifyOptions

if TYPE_CHECKING:
    from .api import VerifyReport, verify

__all__ = ["HarnessError", "VerifyOptions", "VerifyReport", "verify"]


def __getattr__(name: str) -> Any:
    # The pytest plugin and the worker import this package: the driver, reports and statistics behind
    # `verify` load only when it is asked for (about 30 ms of imports otherwise paid by every pytest run).
    if name in ("verify", "VerifyReport"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
