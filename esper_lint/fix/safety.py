"""When is hoisting a nested mask function provably safe? Rules and the fixer share this answer."""

from __future__ import annotations

from ..analysis.model import MaskFunction


def hoist_blockers(fn: MaskFunction) -> list[str]:
    """Why a capture-free nested function still cannot be moved mechanically (empty: it can)."""
    reasons = list(fn.unfixable_reasons)
    if fn.definition_time_refs:
        refs = ", ".join(f"`{n}`" for n in fn.definition_time_refs)
        reasons.append(f"its decorators or annotations read local {refs}")
    return reasons
