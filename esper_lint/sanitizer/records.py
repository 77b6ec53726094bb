"""What the sanitizer reports: one `RuntimeFinding` per (check, mask definition, call site).

Torch-free: the CLI's parent process and the pytest controller read findings back from JSON with this.
The JSON shape is the linter's (`Finding.to_dict`: path, line, column, end_line, end_column, code, name,
message, fixable) plus what only a run can know: the mask's definition, the call site, the evidence, how
often it happened and, under pytest, the tests that triggered it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Rule names as the linter's registry spells them (the static rules these checks prove at run time).
RULE_NAMES = {
    "ESP007": "mask-reads-broadcast-dim",
    "ESP008": "mask-python-control-flow",
    "ESP011": "score-mod-in-place",
    "ESP012": "score-mod-returns-mask",
    "ESP015": "captured-scalar-recompiles",
    "ESP016": "flex-attention-eager",
    "ESP019": "mask-heads-from-kv",
    "ESP020": "sliced-block-mask",
    "ESP021": "python-data-in-mask",
    "ESP025": "mask-returns-non-bool",
    "ESP026": "masking-in-score-mod",
    "ESP028": "block-mask-fixed-batch",
    "ESP029": "block-mask-fixed-length",
    "ESP030": "create-block-mask-eager",
}

ERROR = "error"
HINT = "hint"  # reported, never fails --strict (ESP026: same output, only slower)


@dataclass
class Location:
    path: str
    line: int
    column: int = 1
    function: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "column": self.column, "function": self.function}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Location | None:
        if data is None:
            return None
        return cls(data["path"], data["line"], data.get("column", 1), data.get("function", ""))


@dataclass
class RuntimeFinding:
    code: str
    message: str
    # Where the mistake is written: the mask/score function's `def` (from its code object), if any.
    definition: Location | None
    # The first frame outside torch and esper-lint that made the call.
    call_site: Location | None
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: str = ERROR
    # The position reported as path/line: the definition for a mistake in a function's body, the call site
    # for a mistake in the call's arguments.
    at_definition: bool = True
    count: int = 1
    tests: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return RULE_NAMES.get(self.code, self.code)

    @property
    def key(self) -> tuple[str, str, str]:
        """Reported once per (check, definition, call site)."""
        return (self.code, str(self.definition or ""), str(self.call_site or ""))

    @property
    def where(self) -> Location:
        primary = self.definition if self.at_definition else self.call_site
        return primary or self.call_site or self.definition or Location("<unknown>", 1)

    def to_dict(self) -> dict[str, Any]:
        where = self.where
        return {
            "path": where.path,
            "line": where.line,
            "column": where.column,
            "end_line": where.line,
            "end_column": where.column,
            "code": self.code,
            "name": self.name,
            "message": self.message,
            "fixable": False,
            "severity": self.severity,
            "definition": self.definition.to_dict() if self.definition else None,
            "call_site": self.call_site.to_dict() if self.call_site else None,
            "evidence": self.evidence,
            "count": self.count,
            "tests": list(self.tests),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeFinding:
        definition = Location.from_dict(data.get("definition"))
        call_site = Location.from_dict(data.get("call_site"))
        at_definition = definition is not None and (data["path"], data["line"]) == (definition.path, definition.line)
        return cls(
            data["code"],
            data["message"],
            definition,
            call_site,
            dict(data.get("evidence") or {}),
            data.get("severity", ERROR),
            at_definition,
            data.get("count", 1),
            list(data.get("tests") or []),
        )

    def render(self) -> str:
        """The text report's block: the position and message, then where the function is defined and called."""
        where = self.where
        label = f" [{self.severity}]" if self.severity == HINT else ""
        lines = [f"{where.path}:{where.line}:{where.column}: {self.code}{label} {self.message}"]
        if self.definition is not None:
            lines.append(
                f"    defined at {self.definition}"
                + (f" ({self.definition.function})" if self.definition.function else "")
            )
        if self.call_site is not None:
            lines.append(
                f"    called at {self.call_site}"
                + (f" in {self.call_site.function}" if self.call_site.function else "")
            )
        if self.count > 1:
            lines.append(f"    seen {self.count} times")
        if self.tests:
            shown = ", ".join(self.tests[:3]) + (f" and {len(self.tests) - 3} more" if len(self.tests) > 3 else "")
            lines.append(f"    in {shown}")
        return "\n".join(lines)


def summary_line(findings: list[RuntimeFinding]) -> str:
    errors = sum(1 for f in findings if f.severity != HINT)
    hints = len(findings) - errors
    if not findings:
        return "esper-lint sanitize: no FlexAttention mistakes found"
    parts = [f"{errors} finding{'s' if errors != 1 else ''}"]
    if hints:
        parts.append(f"{hints} hint{'s' if hints != 1 else ''}")
    return "esper-lint sanitize: " + ", ".join(parts)


def fails_strict(findings: list[RuntimeFinding]) -> bool:
    return any(f.severity != HINT for f in findings)


class SanitizerError(RuntimeError):
    """Raised under strict mode: before a call whose BlockMask counts could crash the compiled kernel
    (ESP019/ESP028), and when a strict `with sanitize(strict=True):` block ends with findings."""

    def __init__(self, message: str, findings: list[RuntimeFinding] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []
