"""Output formats. Each reporter turns a finished run into text; the CLI writes it to stdout or `-o FILE`.

File errors (unreadable, unparseable files) always go to stderr as one line each, whatever the format,
so machine-readable output on stdout stays parseable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..core.records import NamedTuple
from ..runner import Mode, RunResult


class ReportContext(NamedTuple):
    mode: Mode = Mode.CHECK
    statistics: bool = False
    show_fixes: bool = False
    quiet: bool = False
    root: Path | None = None  # the project root: SARIF paths are relative to it (default: the current folder)


Reporter = Callable[[RunResult, ReportContext], str]


def statistics(run: RunResult) -> list[dict[str, object]]:
    """`--statistics`: one row per rule code, most frequent first (ruff's order and JSON keys)."""
    from collections import Counter

    from ..rules import RULES_BY_CODE

    counts = Counter(f.code for f in run.findings)
    fixable = {f.code for f in run.findings if f.fixable}
    return [
        {"code": code, "name": RULES_BY_CODE[code].name, "count": count, "fixable": code in fixable}
        for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


# Output format -> module in this package; only the one a run asks for is imported.
_MODULES = {"text": "text", "json": "json_format", "github": "github", "sarif": "sarif", "junit": "junit"}


def get_reporter(name: str) -> Reporter:
    import importlib

    module = importlib.import_module(f".{_MODULES[name]}", __name__)
    render: Reporter = module.render
    return render


def formats() -> list[str]:
    return list(_MODULES)
