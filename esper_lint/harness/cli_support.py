"""`esper-lint verify`: run the harness with a progress bar, print the table, write JSON and plot."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from . import driver, report
from .options import VerifyOptions

EXIT_EQUIVALENT, EXIT_DIFFERENT = 0, 1


def run_verify(options: VerifyOptions, json_out: Path | None, plot_out: Path | None, quiet: bool) -> int:
    """Returns the exit code; raises HarnessError (exit 2) for anything that stops the run."""
    if plot_out is not None:
        report.check_plot_available()
    with contextlib.ExitStack() as stack:

        def on_phase(label: str, total: int) -> Any:
            if quiet or not sys.stderr.isatty():  # a progress bar is for a person watching, not for a log
                return None
            bar: Any = click.progressbar(length=total, label=label, file=sys.stderr)
            stack.enter_context(bar)
            state = {"done": 0}

            def update(done: int) -> None:
                bar.update(done - state["done"])
                state["done"] = done

            return update

        result = driver.run(options, on_phase)
    if json_out is not None:
        report.write_json(result, json_out)
    if plot_out is not None:
        report.write_plot(result, plot_out)
    if not quiet:
        click.echo(report.render_text(result), nl=False)
        for label, path in (("JSON report", json_out), ("memory plot", plot_out)):
            if path is not None:
                click.echo(f"{label} written to {path}")
    ok = result["equivalent"] and result["masks_consistent"]
    return EXIT_EQUIVALENT if ok else EXIT_DIFFERENT
