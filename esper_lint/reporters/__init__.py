"""Output formats. Each reporter turns a finished run into text; the CLI writes it to stdout or `-o FILE`.

File errors (unreadable, unparseable files) always go to stderr as one line each, whatever the format,
so machine-readable output on stdout stays parseable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..runner import Mode, RunResult


@dataclass(frozen=True)
class ReportContext:
    mode: Mode = Mode.CHECK
    statistics: bool = False
    show_fixes: bool = False
    quiet: bool = False


Reporter = Callable[[RunResult, ReportContext], str]


# Output format -> module in this package; only the one a run asks for is imported.
_MODULES = {"text": "text", "json": "json_format", "github": "github", "sarif": "sarif", "junit": "junit"}


def get_reporter(name: str) -> Reporter:
    import importlib

    module = importlib.import_module(f".{_MODULES[name]}", __name__)
    render: Reporter = module.render
    return render


def formats() -> list[str]:
    return list(_MODULES)
