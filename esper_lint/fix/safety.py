"""When is hoisting a nested mask function provably safe? Rules and the fixer share this answer.

`hoist_blockers(fn)` decides from the facts the analysis recorded on the `MaskFunction` (both
backends record the same facts, so checking and fixing agree): rules use it to set `fixable` and to say
why no fix is offered. The fixer applies exactly the fixes it allows, apart from the rare cases only the
whole module can decide (the planner in `esper_lint/fix/hoist.py`), which it reports the same way.
"""

from __future__ import annotations

from ..analysis.model import MaskFunction


def hoist_blockers(fn: MaskFunction) -> list[str]:
    """Why a capture-free nested function still cannot be moved mechanically (empty: it can)."""
    reasons = list(fn.unfixable_reasons)
    if fn.definition_time_refs:
        refs = ", ".join(f"`{n}`" for n in fn.definition_time_refs)
        reasons.append(f"its decorators or annotations read local {refs}")
    return reasons
