"""The `esper-lint` command line.

`esper-lint [PATHS]` and `esper-lint --fix src/` check (and fix) files; `esper-lint rule CODE` documents a
rule; `esper-lint verify FILE` runs the runtime harness. Checking is the default command, so the first
two forms work exactly as written (`esper-lint check ...` is the explicit spelling, e.g. for a folder
named like a subcommand).

Exit codes: 0 nothing found, 1 findings remain (or `--diff` has changes), 2 usage, configuration or
file errors. No Python traceback reaches the user.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .check_command import EXIT_ERROR, EXIT_OK, run_check
from .check_command import echo_error as _error


class _DefaultGroup(click.Group):
    """A group whose default subcommand is `check`, so `esper-lint src/` needs no verb."""

    default_command = "check"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="esper-lint", message="%(prog)s %(version)s")
def main() -> None:
    """Find FlexAttention mask functions that are re-created, leak, or bind late, and fix the safe ones.

    \b
    esper-lint [PATHS]...           check files and folders (default: .)
    esper-lint --fix src/           apply safe fixes, then report what remains
    esper-lint --diff src/          show what --fix would change
    esper-lint --add-noqa src/      add `# noqa: CODE` where findings are (adopt now, fix later)
    esper-lint rule ESP001          a rule's documentation
    esper-lint verify FILE --factory NAME   runtime harness (needs the [harness] extra)
    esper-lint sanitize -- python train.py  run a program with FlexAttention's run-time checks
    esper-lint server               language server for editors (needs the [server] extra)

    Checking is the default command: `esper-lint check --help` lists its options (--select, --ignore,
    --output-format, --config, --jobs, ...). Exit codes: 0 clean, 1 findings, 2 errors.
    """


@main.command("check")
# readable=False: an unreadable file is reported (`a.py: io error: permission denied`) and the others are
# still checked, instead of click stopping the whole run with a usage error.
@click.argument("paths", nargs=-1, type=click.Path(readable=False))
@click.option("--fix", is_flag=True, help="Apply safe fixes in place, then report what remains.")
@click.option("--diff", is_flag=True, help="Print a unified diff of what --fix would change; write nothing.")
@click.option(
    "--unsafe-fixes", is_flag=True, help="With --fix/--diff, also apply fixes that may change behaviour (review them)."
)
@click.option("--select", multiple=True, metavar="CODES", help="Only these rule codes (comma-separated, prefixes ok).")
@click.option("--extend-select", multiple=True, metavar="CODES", help="Add rule codes to the selection (e.g. ESP006).")
@click.option("--ignore", multiple=True, metavar="CODES", help="Rule codes to ignore.")
@click.option("--add-noqa", is_flag=True, help="Add `# noqa: CODE` to each line with a finding (adopt now, fix later).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings remain (errors still exit 2).")
@click.option("--config", "config_file", type=click.Path(), help="Configuration file (pyproject.toml or a TOML table).")
@click.option(
    "--output-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json", "github", "sarif", "junit"]),
    help="How findings are written.",
)
@click.option("-o", "--output-file", type=click.Path(), help="Write the report to this file instead of stdout.")
@click.option("--stdin-filename", type=click.Path(), help="Path to use for source read from stdin (`-`).")
@click.option("--exclude", multiple=True, metavar="PATTERNS", help="Paths/globs to exclude, replacing `exclude`.")
@click.option("--extend-exclude", multiple=True, metavar="PATTERNS", help="More paths/globs to exclude.")
@click.option(
    "--per-file-ignores",
    multiple=True,
    metavar="PATTERN:CODES",
    help="Codes to ignore in matching files (e.g. 'tests/*:ESP001'); replaces `per-file-ignores`.",
)
@click.option(
    "--force-exclude/--no-force-exclude", default=None, help="Apply excludes to files named on the command line too."
)
@click.option("--statistics", is_flag=True, help="Show counts per rule code instead of each finding.")
@click.option(
    "--show-settings", is_flag=True, help="Show the effective settings and where each came from; check nothing."
)
@click.option("--show-files", is_flag=True, help="List the files that would be checked; check nothing.")
@click.option("--show-fixes", is_flag=True, help="List the fixes applied per file.")
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, no summary.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes (default: CPU count).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the result cache.")
def check(
    paths: tuple[str, ...],
    fix: bool,
    diff: bool,
    unsafe_fixes: bool,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    add_noqa: bool,
    exit_zero: bool,
    config_file: str | None,
    output_format: str,
    output_file: str | None,
    stdin_filename: str | None,
    exclude: tuple[str, ...],
    extend_exclude: tuple[str, ...],
    per_file_ignores: tuple[str, ...],
    force_exclude: bool | None,
    statistics: bool,
    show_settings: bool,
    show_files: bool,
    show_fixes: bool,
    quiet: bool,
    jobs: int | None,
    no_cache: bool,
) -> None:
    """Check PATHS (files or folders; default: the current folder). `-` reads stdin."""
    code = run_check(
        # Like ruff: --stdin-filename without paths means the source comes from stdin.
        paths=list(paths) or (["-"] if stdin_filename else ["."]),
        fix=fix,
        diff=diff,
        unsafe_fixes=unsafe_fixes,
        select=select,
        extend_select=extend_select,
        ignore=ignore,
        add_noqa=add_noqa,
        exit_zero=exit_zero,
        config_file=config_file,
        output_format=output_format,
        output_file=output_file,
        stdin_filename=stdin_filename,
        exclude=exclude,
        extend_exclude=extend_exclude,
        per_file_ignores=per_file_ignores,
        force_exclude=force_exclude,
        statistics=statistics,
        show_settings=show_settings,
        show_files=show_files,
        show_fixes=show_fixes,
        quiet=quiet,
        jobs=jobs,
        no_cache=no_cache,
    )
    sys.exit(code)


@main.command("rule")
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="List every rule with its default state and fix availability.")
@click.option("--output-format", default="text", type=click.Choice(["text", "json"]), show_default=True)
def rule(code: str | None, show_all: bool, output_format: str) -> None:
    """Show a rule's documentation (`esper-lint rule ESP001`), or list them all (`--all`)."""
    import json

    from .rules import ALL_RULES, get_rule

    if show_all and code is not None:
        _error(f"give a rule code or --all, not both (`esper-lint rule {code}` or `esper-lint rule --all`)")
        sys.exit(EXIT_ERROR)
    if show_all or code is None:
        rows = [
            {
                "code": r.code,
                "name": r.name,
                "summary": r.summary,
                "default": r.default_enabled,
                "fix": r.fix,
            }
            for r in ALL_RULES
        ]
        if output_format == "json":
            click.echo(json.dumps(rows, indent=2))
        else:
            table = [("Code", "Default", "Fix", "Name", "Summary")] + [
                (
                    str(row["code"]),
                    "on" if row["default"] else "off",
                    str(row["fix"]) if row["fix"] in ("safe", "unsafe") else "-",
                    str(row["name"]),
                    str(row["summary"]),
                )
                for row in rows
            ]
            widths = [max(len(line[i]) for line in table) for i in range(4)]  # columns as wide as their text
            for line in table:
                click.echo(
                    "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[4]
                )
            click.echo("\n`esper-lint rule CODE` shows a rule's documentation.")
        sys.exit(EXIT_OK)
    found = get_rule(code)
    if found is None:
        _error(f"unknown rule {code!r}; `esper-lint rule --all` lists them")
        sys.exit(EXIT_ERROR)
    if output_format == "json":
        click.echo(
            json.dumps(
                {
                    "code": found.code,
                    "name": found.name,
                    "summary": found.summary,
                    "default": found.default_enabled,
                    "fix": found.fix,
                    "documentation": found.documentation(),
                },
                indent=2,
            )
        )
    else:
        click.echo(found.documentation(), nl=False)
    sys.exit(EXIT_OK)


@main.command("server")
def server() -> None:
    """Language server over stdio, for editors (needs the [server] extra; see docs/editors.md)."""
    from .server import main as serve

    sys.exit(serve())


@main.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--factory", required=True, help="Name in FILE of the nn.Module class or of a factory returning one.")
@click.option("--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments for the factory, as a JSON object.")
@click.option("--input-shape", default="2,T,64", show_default=True, help="Input shape; T takes each sequence length.")
@click.option(
    "--seq-lens",
    default="16,32,48,64,80,96,112,128,144,160",
    show_default=True,
    help="Sequence lengths to cycle through; more than the module's mask cache holds forces evictions.",
)
# Defaults as in esper_lint.harness.options (a test keeps them equal): what the ticket asks, in under a
# minute on a 2-core CPU; longer runs on request.
@click.option("--iterations", default=120, show_default=True, type=click.IntRange(min=1), help="Long-run forwards.")
@click.option(
    "--latency-rounds", default=16, show_default=True, type=click.IntRange(min=1), help="Timed pairs (interleaved)."
)
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "float16", "bfloat16"]))
@click.option("--atol", default=0.0, show_default=True, type=click.FloatRange(min=0), help="Allowed output difference.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for weights and inputs (same for both).")
@click.option("--compile", "use_compile", is_flag=True, help="Also count torch.compile recompiles and graph breaks.")
@click.option("--compile-backend", default="inductor", show_default=True, help="torch.compile backend for --compile.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the full report as JSON here.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), help="Write a memory-over-iterations PNG here.")
@click.option("-q", "--quiet", is_flag=True, help="No table and no progress bar; the exit code and files only.")
def verify(
    file: str,
    factory: str,
    kwargs_json: str | None,
    input_shape: str,
    seq_lens: str,
    iterations: int,
    latency_rounds: int,
    device: str,
    dtype: str,
    atol: float,
    seed: int,
    use_compile: bool,
    compile_backend: str,
    json_out: str | None,
    plot_out: str | None,
    quiet: bool,
) -> None:
    """Run FILE's module as written and after `--fix`, and measure what changed (needs torch).

    Exit codes: 0 equivalent (and every mask behaves as built), 1 not, 2 errors. FILE is never modified.
    """
    from .harness import HarnessError, VerifyOptions
    from .harness.options import parse_input_shape, parse_kwargs, parse_seq_lens

    try:
        options = VerifyOptions(
            path=Path(file),
            factory=factory,
            kwargs=parse_kwargs(kwargs_json),
            input_shape=parse_input_shape(input_shape),
            seq_lens=parse_seq_lens(seq_lens),
            iterations=iterations,
            latency_rounds=latency_rounds,
            device=device,
            dtype=dtype,
            atol=atol,
            seed=seed,
            compile=use_compile,
            compile_backend=compile_backend,
        )
        from .harness.cli_support import run_verify

        code = run_verify(options, Path(json_out) if json_out else None, Path(plot_out) if plot_out else None, quiet)
    except HarnessError as exc:
        _error(str(exc))
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _error("interrupted")
        sys.exit(130)
    sys.exit(code)


@main.command("sanitize", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--strict", is_flag=True, help="Exit 1 when anything is found; refuse calls that would crash.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), help="Write the findings as JSON here.")
@click.argument("program", nargs=-1, type=click.UNPROCESSED)
def sanitize(strict: bool, report_file: str | None, program: tuple[str, ...]) -> None:
    """Run a program with FlexAttention's run-time checks (needs torch; see docs/sanitize.md).

    \b
    esper-lint sanitize -- python train.py ARGS
    esper-lint sanitize --strict --report found.json -- -m package.module ARGS

    Findings go to stderr as they happen. Exit status: the program's; with --strict, 1 when the program
    exited 0 but something was found; 2 when the program could not be started.
    """
    from .sanitizer.command import UsageError, run

    try:
        code = run(list(program), strict, report_file)
    except UsageError as exc:
        _error(str(exc))
        sys.exit(EXIT_ERROR)
    sys.exit(code)


def entry_point() -> None:
    """Console-script entry: turn any escaped exception into a one-line message and exit code 2."""
    try:
        main(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        _error("interrupted")
        sys.exit(130)
    except Exception as exc:  # last line of defence: never show a traceback
        from .core.interrupts import Interrupted, was_interrupted

        if was_interrupted():  # Ctrl-C unwound into an error in some cleanup: it is still an interrupt
            raise Interrupted from None
        _error(f"internal error: {type(exc).__name__}: {exc} (please report this)")
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    entry_point()
