"""`--output-format json`: a JSON array of findings, one object each (stable keys, 1-based positions)."""

from __future__ import annotations

import json

from ..runner import RunResult
from . import ReportContext


def render(run: RunResult, ctx: ReportContext) -> str:
    return json.dumps([f.to_dict() for f in run.findings], indent=2) + "\n"
