"""The `esper-lint` command line.

`esper-lint [PATHS]` and `esper-lint --fix src/` check (and fix) files; `esper-lint rule CODE` documents a
rule; `esper-lint verify FILE` runs the runtime harness. Checking is the default command, so the first
two forms work exactly as written (`esper-lint check ...` is the explicit spelling, e.g. for a folder
named like a subcommand).

Exit codes: 0 nothing found, 1 findings remain (or `--diff` has changes), 2 usage, configuration or
file errors. No Python traceback reaches the user.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from . import __version__

if TYPE_CHECKING:
    from .config import Config
    from .runner import Mode, RunResult

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


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
    esper-lint server               language server for editors (needs the [server] extra)

    Checking is the default command: `esper-lint check --help` lists its options (--select, --ignore,
    --output-format, --config, --jobs, ...). Exit codes: 0 clean, 1 findings, 2 errors.
    """


def _error(message: str) -> None:
    click.echo(f"esper-lint: error: {message}", err=True)


def _warning(message: str) -> None:
    click.echo(f"esper-lint: warning: {message}", err=True)


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
    code = _check(
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


def _check(**opts: Any) -> int:
    from .config import ConfigError, apply_cli, load_config
    from .runner import Mode

    if opts["fix"] and opts["diff"]:
        _error("--fix and --diff cannot be used together (--diff shows what --fix would do)")
        return EXIT_ERROR
    if opts["statistics"] and opts["output_format"] not in ("text", "json"):
        _error(f"--statistics is written as text or json, not {opts['output_format']} (as in ruff)")
        return EXIT_ERROR
    actions = ("fix", "diff", "add_noqa", "show_settings", "show_files")
    chosen = [f"--{name.replace('_', '-')}" for name in actions if opts[name]]
    if len(chosen) > 1:
        _error(f"{' and '.join(chosen)} cannot be used together")
        return EXIT_ERROR
    mode = Mode.FIX if opts["fix"] else Mode.DIFF if opts["diff"] else Mode.CHECK
    paths: list[str] = opts["paths"]
    use_stdin = paths == ["-"]
    if "-" in paths and not use_stdin:
        _error("`-` (stdin) cannot be combined with other paths")
        return EXIT_ERROR
    start = Path(opts["stdin_filename"] or ".") if use_stdin else Path(paths[0])
    try:
        config = load_config(Path(opts["config_file"]) if opts["config_file"] else None, _existing_parent(start))
        config = apply_cli(
            config,
            select=opts["select"],
            extend_select=opts["extend_select"],
            ignore=opts["ignore"],
            extend_exclude=opts["extend_exclude"],
            force_exclude=opts["force_exclude"],
            jobs=opts["jobs"],
            unsafe_fixes=opts["unsafe_fixes"] or None,
            exclude=opts["exclude"],
            per_file_ignores=opts["per_file_ignores"],
        )
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_ERROR
    for warning in config.warnings:
        _warning(warning)
    if opts["show_settings"]:
        from .config import describe

        click.echo(describe(config), nl=False)
        return EXIT_OK

    if use_stdin:
        if opts["add_noqa"] or opts["show_files"]:
            _error("--add-noqa and --show-files work on files, not stdin")
            return EXIT_ERROR
        return _check_stdin(config, mode, opts)

    from .runner import run

    if opts["show_files"]:
        return _show_files(paths, config)
    if opts["add_noqa"]:
        return _add_noqa(paths, config, opts)

    try:
        result = run(paths, config, mode, use_cache=not opts["no_cache"])
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    if opts["output_format"] != "sarif":
        return _report(result, mode, opts)
    if mode is Mode.CHECK:
        _attach_fixes(result, config)
    return _report(result, mode, opts, root=project_root(config, start))


def _attach_fixes(result: RunResult, config: Config) -> None:
    """SARIF can carry each safe fix as an edit: compute each fixable finding's own fix (in memory)."""
    from .fix import fixes_by_finding
    from .notebook import is_notebook
    from .runner import read_source

    for file_result in result.files:
        if not any(f.fixable for f in file_result.findings):
            continue
        try:
            source = read_source(file_result.path)
        except OSError:
            continue
        if is_notebook(file_result.path):
            continue  # a notebook's fix is a JSON splice (notebook.py): SARIF carries none for it
        fixes = fixes_by_finding(source, file_result.path, config)
        file_result.original_source = source
        for finding in file_result.findings:
            finding.fixed_source = fixes.get((finding.code, finding.span))


def project_root(config: Config, start: Path) -> Path:
    """Where SARIF paths start: the configuration's folder, else the nearest folder above `start` with a
    pyproject.toml, else the current folder."""
    if config.source is not None:
        return config.root
    current = _existing_parent(start)
    for directory in (current, *current.parents):
        if (directory / "pyproject.toml").is_file():
            return directory
    return Path.cwd()


def _show_files(paths: list[str], config: Config) -> int:
    from .files import discover

    discovery = discover(paths, config)
    for warning in discovery.warnings:
        _warning(warning)
    for error in discovery.errors:
        click.echo(str(error), err=True)
    for path in discovery.files:
        click.echo(path)
    return EXIT_ERROR if discovery.errors else EXIT_OK


def _add_noqa(paths: list[str], config: Config, opts: dict[str, Any]) -> int:
    """Write `# noqa: CODE` on each line with a finding (atomically, refusing files changed meanwhile)."""
    import io
    import tokenize

    from .engine import SourceError, check_decodable, lint_source
    from .fix.writer import WriteRefused, write_atomic
    from .noqa import add_noqa as insert_noqa
    from .notebook import NotebookError, is_notebook
    from .notebook import add_noqa as notebook_add_noqa
    from .runner import read_source, run

    result = run(paths, config, use_cache=not opts["no_cache"])
    for warning in result.warnings:
        _warning(warning)
    for error in result.all_errors:
        click.echo(str(error), err=True)
    added = 0
    failed = bool(result.all_errors)
    for file_result in result.files:
        if not file_result.findings:
            continue
        path = file_result.path
        try:
            source = read_source(path)
            if is_notebook(path):  # the comments go into the cells' `source`, the JSON is kept as it is
                new_source, added_here, skipped = notebook_add_noqa(source, path, config)
                if new_source != source:
                    write_atomic(path, source, new_source)
                added += added_here
            else:
                text = check_decodable(source, path)
                # The lines come from these very bytes (the file may have changed since the run read it).
                by_line: dict[int, set[str]] = {}
                for finding in lint_source(source, path, config).findings:
                    by_line.setdefault(finding.span.line, set()).add(finding.code)
                new_text, skipped_lines = insert_noqa(text, by_line)
                encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)  # a BOM is kept: utf-8-sig
                if new_text != text:
                    write_atomic(path, source, new_text.encode(encoding))
                skipped = [str(line) for line in skipped_lines]
                added += len(by_line) - len(skipped)
        except (SourceError, WriteRefused, NotebookError) as exc:
            click.echo(str(exc.error), err=True)
            failed = True
            continue
        except OSError as exc:
            click.echo(f"{path}: io error: cannot write: {exc.strerror or exc}; it was left unchanged", err=True)
            failed = True
            continue
        for place in skipped:
            _warning(f"{path}:{place}: no `# noqa` added: the line ends inside a string or continues with `\\`")
    if not opts["quiet"]:
        click.echo(f"Added {added} noqa directive{'' if added == 1 else 's'}.")
    return EXIT_ERROR if failed else EXIT_OK


def _existing_parent(path: Path) -> Path:
    current = path if path.is_absolute() else Path.cwd() / path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _check_stdin(config: Config, mode: Mode, opts: dict[str, Any]) -> int:
    from .files import _Excluder
    from .runner import Mode, RunResult, lint_or_fix_source

    filename = opts["stdin_filename"] or "<stdin>"
    source = sys.stdin.buffer.read()
    if opts["stdin_filename"] and _Excluder(config).excluded(filename) and config.force_exclude:
        # Excluded: pass the source through unchanged so editors keep working.
        if mode is Mode.FIX:
            sys.stdout.buffer.write(source)
        return EXIT_OK
    file_result = lint_or_fix_source(source, filename, config, mode)
    result = RunResult(files=[file_result])
    if mode is Mode.FIX:
        # Editors read the fixed source from stdout; the report goes to stderr.
        sys.stdout.buffer.write(file_result.new_source if file_result.new_source is not None else source)
        sys.stdout.buffer.flush()
        return _report(result, mode, opts, stream=sys.stderr)
    return _report(result, mode, opts)


def _report(
    result: RunResult, mode: Mode, opts: dict[str, Any], stream: IO[str] | None = None, root: Path | None = None
) -> int:
    from .reporters import ReportContext, get_reporter
    from .runner import Mode

    for warning in result.warnings:
        _warning(warning)
    for error in result.all_errors:
        click.echo(str(error), err=True)
    if mode is Mode.DIFF:
        from .fix import unified_diff_bytes
        from .notebook import is_notebook
        from .runner import diff_text

        out = sys.stdout if stream is None else stream
        raw = getattr(out, "buffer", None)  # bytes in each file's own encoding, so `patch` applies them
        out.flush()
        for r in result.files:
            if r.new_source is not None:
                old = r.original_source or b""
                if raw is not None and not is_notebook(r.path):
                    raw.write(unified_diff_bytes(r.path, old, r.new_source))
                else:
                    out.write(diff_text(r.path, old, r.new_source))
        if raw is not None:
            raw.flush()
    ctx = ReportContext(
        mode=mode, statistics=opts["statistics"], show_fixes=opts["show_fixes"], quiet=opts["quiet"], root=root
    )
    text = get_reporter(opts["output_format"])(result, ctx)
    if opts["output_file"]:
        try:
            _write_report(opts["output_file"], text)
        except OSError as exc:
            _error(f"{opts['output_file']}: cannot write report: {exc.strerror or exc}")
            return EXIT_ERROR
    elif mode is Mode.DIFF and opts["output_format"] == "text" and not opts["quiet"]:
        # The diff is the output; the summary goes to stderr so the diff can be piped to `patch`.
        click.echo(text, nl=False, err=True)
    else:
        click.echo(text, nl=False, file=stream)
    code = result.exit_code(opts["exit_zero"])
    if mode is Mode.DIFF and code != EXIT_ERROR:
        # As ruff: --diff exits 1 when there is a diff, whatever remains for a human to fix.
        has_diff = any(r.new_source is not None for r in result.files)
        code = EXIT_FINDINGS if has_diff and not opts["exit_zero"] else EXIT_OK
    return code


def _write_report(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    from .console import interrupts_deferred

    tmp = f"{path}.tmp{os.getpid()}"
    with interrupts_deferred():  # Ctrl-C waits for the report to be written (or removed)
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


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
        from .console import Interrupted, was_interrupted

        if was_interrupted():  # Ctrl-C unwound into an error in some cleanup: it is still an interrupt
            raise Interrupted from None
        _error(f"internal error: {type(exc).__name__}: {exc} (please report this)")
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    entry_point()
