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


def _registry() -> dict[str, Reporter]:
    from . import github, json_format, junit, sarif, text

    reporters: dict[str, Reporter] = {
        "text": text.render,
        "json": json_format.render,
        "github": github.render,
        "sarif": sarif.render,
        "junit": junit.render,
    }
    return reporters


def get_reporter(name: str) -> Reporter:
    return _registry()[name]


def formats() -> list[str]:
    return list(_registry())
