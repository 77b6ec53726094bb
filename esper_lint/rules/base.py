"""Rule base class and registry.

One class per rule (as in Fixit): its code, name, documentation and its own VALID/INVALID examples,
which the test suite runs. A rule only looks at the facts a backend extracted (`MaskUse`), never at
syntax, so every backend is held to the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from ..analysis.model import MaskFunction, MaskUse
from ..findings import Finding


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]  # one line, used in listings and SARIF shortDescription
    default_enabled: ClassVar[bool] = True
    fix: ClassVar[str] = "none"  # "safe" when a safe fix can be offered, else "none"
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
        raise NotImplementedError

    def finding(
        self, path: str, use: MaskUse, message: str, fixable: bool = False, target: MaskFunction | None = None
    ) -> Finding:
        return Finding(path, use.arg_span, self.code, self.name, message, fixable, target)

    @classmethod
    def documentation(cls) -> str:
        """The rule's page, as printed by `esper-lint rule CODE` and written to docs/rules/."""
        refs = "\n".join(f"- {r}" for r in cls.references)
        state = "on by default" if cls.default_enabled else "off by default (opt in with `--extend-select`)"
        fix = "safe fix available (`--fix`)" if cls.fix == "safe" else "no automatic fix"
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


def where(fn: MaskFunction) -> str:
    """`causal` (line 12 in `Seed._mask`) — the words every message uses to name the function."""
    label = "lambda" if fn.name == "<lambda>" else f"`{fn.name}`"
    inside = f" in `{fn.enclosing}`" if fn.enclosing else ""
    return f"{label} (line {fn.span.line}{inside})"


def names(items: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in items)
