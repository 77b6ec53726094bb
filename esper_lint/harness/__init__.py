"""The runtime harness behind `esper-lint verify`: run a module before and after `--fix` and measure.

Importing this package never imports torch: the parent process only plans the run and reads results;
each variant is imported and driven in its own worker subprocess (`esper_lint.harness.worker`).

    from esper_lint.harness import verify
    report = verify("src/model/attention.py", factory="make_block", kwargs={"dim": 64}, device="cpu")
    assert report.equivalent and report.masks_consistent
"""

from __future__ import annotations

from .api import VerifyReport, verify
from .options import HarnessError, VerifyOptions

__all__ = ["HarnessError", "VerifyOptions", "VerifyReport", "verify"]
