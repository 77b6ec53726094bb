"""Which findings the hoisting codemod (hoist.py) fixes: asked before anything imports LibCST."""

from __future__ import annotations

from ..analysis.model import MaskFunction
from ..core.findings import Finding

FIXABLE_CODES = frozenset({"ESP001", "ESP002"})


class RewriteError(Exception):
    """The hoist's rewrite (hoist.py) could not match the analysis' facts to the code: nothing is written."""


def hoistable(finding: Finding) -> bool:
    """A finding the hoisting codemod (hoist.py) fixes: asked here first, so that a file with none
    never imports LibCST."""
    fn = hoist_target(finding)
    return finding.code in FIXABLE_CODES and finding.fixable and fn is not None and fn.site is not None


def hoist_target(finding: Finding) -> MaskFunction | None:
    """The function a hoist would move: the analysis' fact the finding carries (opaque to core values)."""
    target = finding.target
    return target if isinstance(target, MaskFunction) else None
