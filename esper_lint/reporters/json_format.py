"""`--output-format json`: a JSON array of findings, one object each (stable keys, 1-based positions); with
`--statistics`, one object per rule code instead (`code`, `name`, `count`, `fixable`), as ruff writes it."""

from __future__ import annotations

import json

from ..runner import RunResult
from . import ReportContext, statistics


def render(run: RunResult, ctx: ReportContext) -> str:
    if ctx.statistics:
        return json.dumps(statistics(run), indent=2) + "\n"
    return json.dumps([f.to_dict() for f in run.findings], indent=2) + "\n"
