"""`esper-lint check`: everything after the command line is parsed (by click in cli.py, or by the plain
path in plain_check.py for the common case).

This module does not import click: a plain check starts faster without it (click is most of a one-file
run's start-up). `echo` writes exactly what `click.echo` would.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .runner import Mode, RunResult

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def echo(message: str = "", *, nl: bool = True, err: bool = False, file: IO[str] | None = None) -> None:
    """`click.echo(message, file=file, nl=nl, err=err)`, without importing click when it is not loaded yet.

    Once click is loaded (the click command line, tests with CliRunner), click.echo itself writes. Without it,
    the common case is written directly: a plain text stream (click would use it as it is) and no ANSI escape
    (click strips those when the stream is not a terminal). Anything else goes through click.
    """
    if "click" not in sys.modules:
        stream = file if file is not None else sys.stderr if err else sys.stdout
        out = message + "\n" if nl else message
        if stream is None:
            return  # click writes nothing when there is no stream either
        if "\x1b" not in out and (file is not None or _plain_text_stream(stream)):
            if out:
                stream.write(out)
            stream.flush()
            return
    import click

    click.echo(message, file=file, nl=nl, err=err)


def _plain_text_stream(stream: IO[str]) -> bool:
    """Whether click's `get_text_stdout`/`get_text_stderr` would return this stream unchanged."""
    encoding = getattr(stream, "encoding", None)
    if not isinstance(stream, io.TextIOWrapper) or encoding is None or getattr(stream, "errors", None) is None:
        return False
    import codecs

    try:
        return codecs.lookup(encoding).name != "ascii"  # click re-wraps an ASCII stream as UTF-8
    except LookupError:
        return True


def echo_error(message: str) -> None:
    echo(f"esper-lint: error: {message}", err=True)


def echo_warning(message: str) -> None:
    echo(f"esper-lint: warning: {message}", err=True)


def run_check(**opts: Any) -> int:
    """`esper-lint check` with its options as keyword arguments (the defaults are click's, see cli.py)."""
    from .config import ConfigError, apply_cli, load_config
    from .runner import Mode

    if opts["fix"] and opts["diff"]:
        echo_error("--fix and --diff cannot be used together (--diff shows what --fix would do)")
        return EXIT_ERROR
    if opts["statistics"] and opts["output_format"] not in ("text", "json"):
        echo_error(f"--statistics is written as text or json, not {opts['output_format']} (as in ruff)")
        return EXIT_ERROR
    actions = ("fix", "diff", "add_noqa", "show_settings", "show_files")
    chosen = [f"--{name.replace('_', '-')}" for name in actions if opts[name]]
    if len(chosen) > 1:
        echo_error(f"{' and '.join(chosen)} cannot be used together")
        return EXIT_ERROR
    mode = Mode.FIX if opts["fix"] else Mode.DIFF if opts["diff"] else Mode.CHECK
    paths: list[str] = opts["paths"]
    use_stdin = paths == ["-"]
    if "-" in paths and not use_stdin:
        echo_error("`-` (stdin) cannot be combined with other paths")
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
        echo_error(str(exc))
        return EXIT_ERROR
    for warning in config.warnings:
        echo_warning(warning)
    if opts["show_settings"]:
        from .config import describe

        echo(describe(config), nl=False)
        return EXIT_OK

    if use_stdin:
        if opts["add_noqa"] or opts["show_files"]:
            echo_error("--add-noqa and --show-files work on files, not stdin")
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
        echo_error("interrupted")
        return 130
    if opts["output_format"] != "sarif":
        return _report(result, mode, opts)
    if mode is Mode.CHECK:
        _attach_fixes(result, config)
    return _report(result, mode, opts, root=project_root(config, start))


def _attach_fixes(result: RunResult, config: Config) -> None:
    """SARIF can carry each safe fix as an edit: compute each fixable finding's own fix (in memory)."""
    from .files import is_notebook
    from .fix.file_fixer import fixes_by_finding
    from .runner import read_source

    for file_result in result.files:
        if not any(f.fixable for f in file_result.findings):
            continue
        try:
            source = read_source(file_result.path)
        except OSError:
            continue
        if is_notebook(file_result.path):
            continue  # a notebook's fix is a JSON splice (notebook/splice.py): SARIF carries none for it
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
        echo_warning(warning)
    for error in discovery.errors:
        echo(str(error), err=True)
    for path in discovery.files:
        echo(path)
    return EXIT_ERROR if discovery.errors else EXIT_OK


def _add_noqa(paths: list[str], config: Config, opts: dict[str, Any]) -> int:
    """Write `# noqa: CODE` on each line with a finding (atomically, refusing files changed meanwhile)."""
    import io
    import tokenize

    from .core.decoding import SourceError, check_decodable
    from .core.noqa import add_noqa as insert_noqa
    from .engine import lint_source
    from .files import is_notebook
    from .fix.writer import WriteRefused, write_atomic
    from .notebook import NotebookError
    from .notebook import add_noqa as notebook_add_noqa
    from .runner import read_source, run, with_project

    config = with_project(config, paths)  # the same project facts for the run and the lines found here
    result = run(paths, config, use_cache=not opts["no_cache"])
    for warning in result.warnings:
        echo_warning(warning)
    for error in result.all_errors:
        echo(str(error), err=True)
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
            echo(str(exc.error), err=True)
            failed = True
            continue
        except OSError as exc:
            echo(f"{path}: io error: cannot write: {exc.strerror or exc}; it was left unchanged", err=True)
            failed = True
            continue
        for place in skipped:
            echo_warning(f"{path}:{place}: no `# noqa` added: the line ends inside a string or continues with `\\`")
    if not opts["quiet"]:
        echo(f"Added {added} noqa directive{'' if added == 1 else 's'}.")
    return EXIT_ERROR if failed else EXIT_OK


def _existing_parent(path: Path) -> Path:
    current = path if path.is_absolute() else Path.cwd() / path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _check_stdin(config: Config, mode: Mode, opts: dict[str, Any]) -> int:
    from .files import force_excluded
    from .runner import Mode, RunResult, lint_or_fix_source, with_project

    filename = opts["stdin_filename"] or "<stdin>"
    # Imports are resolved from --stdin-filename's folder (the project's other files as on disk); without
    # it, absolute imports only, from the project root above the current folder.
    config = with_project(config, [filename])
    source = sys.stdin.buffer.read()
    if opts["stdin_filename"] and force_excluded(filename, config):
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
        echo_warning(warning)
    for error in result.all_errors:
        echo(str(error), err=True)
    if mode is Mode.DIFF:
        from .files import is_notebook
        from .fix.diff import unified_diff_bytes
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
            from .core.atomic_files import write_text_atomic

            write_text_atomic(opts["output_file"], text)
        except OSError as exc:
            echo_error(f"{opts['output_file']}: cannot write report: {exc.strerror or exc}")
            return EXIT_ERROR
    elif mode is Mode.DIFF and opts["output_format"] == "text" and not opts["quiet"]:
        # The diff is the output; the summary goes to stderr so the diff can be piped to `patch`.
        echo(text, nl=False, err=True)
    else:
        echo(text, nl=False, file=stream)
    code = result.exit_code(opts["exit_zero"])
    if mode is Mode.DIFF and code != EXIT_ERROR:
        # As ruff: --diff exits 1 when there is a diff, whatever remains for a human to fix.
        has_diff = any(r.new_source is not None for r in result.files)
        code = EXIT_FINDINGS if has_diff and not opts["exit_zero"] else EXIT_OK
    return code
