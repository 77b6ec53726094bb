"""When is hoisting a nested mask function provably safe? Rules and the fixer share this answer.

`hoist_blockers(fn)` decides from the facts the analysis recorded on the `MaskFunction` (and its own
LibCST node): rules use it to set `fixable` and to say why no fix is offered. The fixer applies exactly
the fixes it allows, apart from the rare cases only the whole module can decide (the planner in
`esper_lint/fix/hoist.py`), which it reports the same way.
"""

from __future__ import annotations

from typing import Any

from ..analysis.model import MaskFunction


def hoist_blockers(fn: MaskFunction) -> list[str]:
    """Why a capture-free nested function still cannot be moved mechanically (empty: it can)."""
    reasons = list(fn.unfixable_reasons)
    if fn.definition_time_refs:
        refs = ", ".join(f"`{n}`" for n in fn.definition_time_refs)
        reasons.append(f"its decorators or annotations read local {refs}")
    if fn.node is not None and _uses_class_cell(fn.node):
        # Zero-argument super() and __class__ read the enclosing class's cell, which module level lacks.
        reasons.append("it uses `super()` or `__class__`, which need the enclosing class")
    return reasons


def _uses_class_cell(node: Any) -> bool:
    import libcst as cst

    class _Finder(cst.CSTVisitor):
        found = False

        def visit_Name(self, name: cst.Name) -> None:
            if name.value == "__class__":
                self.found = True

        def visit_Call(self, call: cst.Call) -> None:
            if isinstance(call.func, cst.Name) and call.func.value == "super" and not call.args:
                self.found = True

    if not isinstance(node, cst.CSTNode):
        return False
    finder = _Finder()
    node.visit(finder)
    return finder.found
