"""Human output: `path:line:col: CODE message`, then a summary line (ruff-like)."""

from __future__ import annotations

from ..runner import Mode, RunResult
from . import ReportContext, statistics


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render(run: RunResult, ctx: ReportContext) -> str:
    lines: list[str] = []
    findings = run.findings
    if ctx.statistics:
        # As ruff: the table replaces the listing, and -q keeps it.
        rows = statistics(run)
        width = max((len(str(row["count"])) for row in rows), default=1)
        for row in rows:
            mark = "[*] " if row["fixable"] else ""
            lines.append(f"{row['count']:>{width}}\t{row['code']}\t{mark}{row['name']}")
    else:
        for f in findings:
            lines.append(f"{f.position}: {f.code} {f.message}")
    if ctx.quiet:
        return "\n".join(lines) + ("\n" if lines else "")
    if ctx.show_fixes and run.fixed:
        if lines:
            lines.append("")
        lines.append("Fixed:")
        for r in run.files:
            if r.fixed:
                lines.append(f"  {r.path}: {_plural(r.fixed, 'finding')}")
    summary: list[str] = []
    if ctx.mode is Mode.FIX and run.fixed:
        summary.append(f"Fixed {_plural(run.fixed, 'finding')} in {_plural(run.files_fixed, 'file')}.")
    if ctx.mode is Mode.DIFF:
        would = sum(1 for r in run.files if r.new_source is not None)
        if would or not run.all_errors:  # beside an error, "no fixes" would speak for files never checked
            summary.append(f"Would fix findings in {_plural(would, 'file')}." if would else "No fixes available.")
    if findings:
        n_fix = sum(1 for f in findings if f.fixable)
        hint = f" ({n_fix} fixable with --fix)" if ctx.mode is Mode.CHECK else ""
        if ctx.mode is not Mode.CHECK:
            summary.append(f"Found {_plural(len(findings), 'finding')} that remain{'s' if len(findings) == 1 else ''}.")
        else:
            summary.append(f"Found {_plural(len(findings), 'finding')}{hint}.")
    elif not run.all_errors and ctx.mode in (Mode.CHECK, Mode.FIX):
        summary.append("All checks passed.")
    errors = len(run.all_errors)
    if errors:
        summary.append(f"{_plural(errors, 'file')} could not be checked (see above).")
    if lines and summary:
        lines.append("")
    lines.extend(summary)
    return "\n".join(lines) + "\n"
