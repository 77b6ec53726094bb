"""Rule base class and registry.

One class per rule (as in Fixit): its code, name, documentation and its own VALID/INVALID examples,
which the test suite runs. A rule only looks at the facts a backend extracted (`MaskUse`), never at
syntax, so every backend is held to the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from ..analysis.model import MASK_MOD, FunctionKind, MaskFunction, MaskUse, ModuleFacts
from ..core.findings import Finding
from ..core.fixes import Fix
from ..core.span import Span


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]  # one line, used in listings and SARIF shortDescription
    default_enabled: ClassVar[bool] = True
    fix: ClassVar[str] = "none"  # "safe" / "unsafe" (applied only with --unsafe-fixes) / "none"
    # The uses `check` sees, by the role of their function argument (analysis/model.py: MASK_MOD, SCORE_MOD).
    roles: ClassVar[frozenset[str]] = frozenset({MASK_MOD})
    # False for the rules about a function's body alone: they also see functions no call passes, known by
    # their parameters (`ModuleFacts.signature_uses`). A rule whose claim depends on the call keeps True.
    needs_call: ClassVar[bool] = True
    # Documentation, ruff style.
    what_it_does: ClassVar[str]
    why_bad: ClassVar[str]
    example: ClassVar[str]
    use_instead: ClassVar[str]
    fix_safety: ClassVar[str]
    references: ClassVar[tuple[str, ...]] = (
        "https://pytorch.org/docs/stable/nn.attention.flex_attention.html",
        "https://pytorch.org/blog/flexattention/",
    )
    # Fixit-style examples: each VALID must produce no finding of this rule, each INVALID at least one.
    VALID: ClassVar[tuple[str, ...]] = ()
    INVALID: ClassVar[tuple[str, ...]] = ()

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        """Findings for one use of a function argument (called for the uses whose role is in `roles`)."""
        return iter(())

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        """Findings that need more than one use (e.g. every `flex_attention` call); called once per module."""
        return iter(())

    def finding(
        self, path: str, use: MaskUse, message: str, fixable: bool = False, target: MaskFunction | None = None
    ) -> Finding:
        """A finding at the use's argument; at the lambda itself when the argument holds it among others
        (`(lambda ...) if c else (lambda ...)`: one finding each, each with its own place and fix)."""
        span = use.arg_span
        if (
            target is not None
            and target.kind is FunctionKind.LAMBDA
            and target.defined_in is None  # a span in another file
            and _within(target.span, span)
        ):
            span = target.span
        return Finding(path, span, self.code, self.name, message, fixable, target)

    def finding_at(self, path: str, span: Span, message: str, fix: Fix | None = None) -> Finding:
        """A finding at `span` carrying its text edits (fix/edits.py); fixable when the fix is safe."""
        fixable = fix is not None and fix.safe
        return Finding(path, span, self.code, self.name, message, fixable, edits=fix)

    @classmethod
    def documentation(cls) -> str:
        """The rule's page, as printed by `esper-lint rule CODE` and written to docs/rules/."""
        refs = "\n".join(f"- {r}" for r in cls.references)
        state = "on by default" if cls.default_enabled else "off by default (opt in with `--extend-select`)"
        fix = {
            "safe": "safe fix available (`--fix`)",
            "unsafe": "unsafe fix available (`--fix --unsafe-fixes`)",
        }.get(cls.fix, "no automatic fix")
        return (
            f"# {cls.code} {cls.name}\n\n"
            f"{cls.summary}\n\n"
            f"Status: {state}; {fix}.\n\n"
            f"## What it does\n{cls.what_it_does}\n\n"
            f"## Why is this bad?\n{cls.why_bad}\n\n"
            f"## Example\n```python\n{cls.example.strip()}\n```\n\n"
            f"Use instead:\n```python\n{cls.use_instead.strip()}\n```\n\n"
            f"## Fix safety\n{cls.fix_safety}\n\n"
            f"## References\n{refs}\n"
        )


def _within(inner: Span, outer: Span) -> bool:
    """`inner` lies inside `outer` and is not all of it."""
    starts_in = (inner.line, inner.column) >= (outer.line, outer.column)
    ends_in = (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column)
    return starts_in and ends_in and inner != outer


def where(fn: MaskFunction, use: MaskUse | None = None) -> str:
    """`causal` (line 12 in `Seed._mask`) — the words every message uses to name the function, with how
    the mask got to the call when not by name (`via `and_masks(*masks)` at line 97`: the use's own route
    when given, else the function's first)."""
    label = "lambda" if fn.name == "<lambda>" else f"`{fn.name}`"
    inside = f" in `{fn.enclosing}`" if fn.enclosing else ""
    route = use.routes.get(id(fn)) if use is not None else None
    route = route or fn.route
    then = f", {route}" if route else ""
    if fn.defined_in is not None:  # another module of the project
        return f"{label} (defined in {fn.defined_in}{inside}{then})"
    return f"{label} (line {fn.span.line}{inside}{then})"


def passed_by(use: MaskUse) -> str:
    """` (passed by `make_block_mask`, defined in mypkg/attn.py:30)` for an argument another module's
    helper passes: where the value a message quotes is written."""
    if use.via_helper is None or use.via_helper_defined_in is None:
        return ""
    return f" (passed by `{use.via_helper}`, defined in {use.via_helper_defined_in})"


def names(items: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in items)
