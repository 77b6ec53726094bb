"""`--output-format github`: one GitHub Actions workflow command per finding, shown as a PR annotation.

Format: `::error file=F,line=L,col=C,endLine=EL,endColumn=EC,title=T::MESSAGE`. GitHub reads these from the
step's output; values are escaped as the Actions runner expects (`%`, CR and LF everywhere, plus `:` and `,`
inside properties), so a path or message can never end the command early or inject another one.
"""

from __future__ import annotations

from ..runner import RunResult
from . import ReportContext


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(level: str, message: str, **properties: object) -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{level} {props}::{escape_data(message)}" if props else f"::{level}::{escape_data(message)}"


def render(run: RunResult, ctx: ReportContext) -> str:
    lines: list[str] = []
    for f in run.findings:
        s = f.span
        lines.append(
            command(
                "error",
                # The location is repeated in the text so raw logs stay readable where annotations are not shown.
                f"{f.position}: {f.code} {f.message}",
                file=f.path,
                # A notebook's lines count in a cell, not in the file GitHub shows: annotate the file.
                line=s.line if f.cell is None else None,
                col=s.column if f.cell is None else None,
                endLine=s.end_line if f.cell is None else None,
                endColumn=s.end_column if f.cell is None else None,
                title=f"esper-lint ({f.code} {f.name})",
            )
        )
    for e in run.all_errors:
        # A file that could not be checked fails the run (exit 2); annotate it so the PR shows why.
        lines.append(
            command(
                "error",
                f"{e}. Fix the file (or exclude it) so esper-lint can check it.",
                file=e.path,
                line=e.line if e.cell is None else None,
                col=e.column if e.cell is None else None,
                title=f"esper-lint: {e.kind.replace('-', ' ')}",
            )
        )
    return "".join(line + "\n" for line in lines)
