"""The plain `esper-lint [check] [FLAGS] PATHS...` run (pre-commit's, an editor's, most people's) without
importing click, which is most of a one-file run's start-up.

`parse` accepts only command lines it can read exactly as click reads them (cli.py): the check command's
flags, a few of its options with plain values, and paths that cannot be mistaken for anything else.
Anything else (help, a subcommand, `--`, `-`, `--opt=value`, a value that looks like an option, an option
this parser does not know, ...) returns None and the click command line takes the run, with its own errors.
`run` then behaves as click's standalone `main` around the `check` command. tests/test_plain_check.py
compares both paths' output and exit codes over many command lines.
"""

from __future__ import annotations

import errno
import sys
from typing import Any, NoReturn

# The check command's options with their defaults (as declared in cli.py), for the ones this path reads.
_FLAGS = {
    "--fix": "fix",
    "--diff": "diff",
    "--unsafe-fixes": "unsafe_fixes",
    "--add-noqa": "add_noqa",
    "--exit-zero": "exit_zero",
    "--statistics": "statistics",
    "--show-settings": "show_settings",
    "--show-files": "show_files",
    "--show-fixes": "show_fixes",
    "-q": "quiet",
    "--quiet": "quiet",
    "--no-cache": "no_cache",
}
_MULTIPLE = {"--select": "select", "--extend-select": "extend_select", "--ignore": "ignore"}
_OUTPUT_FORMATS = ("text", "json", "github", "sarif", "junit")
# Words that make click do something other than `check PATHS` when they come first.
_NOT_A_PLAIN_START = frozenset({"check", "rule", "sanitize", "server", "verify", "--help", "-h", "--version"})


def _defaults() -> dict[str, Any]:
    return {
        **{name: False for name in _FLAGS.values()},
        **{name: () for name in _MULTIPLE.values()},
        "config_file": None,
        "output_format": "text",
        "output_file": None,
        "stdin_filename": None,
        "exclude": (),
        "extend_exclude": (),
        "per_file_ignores": (),
        "force_exclude": None,
        "jobs": None,
    }


def parse(argv: list[str]) -> dict[str, Any] | None:
    """`check`'s keyword arguments for this command line, or None when click must read it."""
    args = argv[1:] if argv[:1] == ["check"] else argv
    if argv[:1] != ["check"] and args[:1] and args[0] in _NOT_A_PLAIN_START:
        return None
    opts = _defaults()
    multiple: dict[str, list[str]] = {}
    paths: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            paths.append(arg)
        elif arg in _FLAGS:
            opts[_FLAGS[arg]] = True
        elif arg in ("--force-exclude", "--no-force-exclude"):
            opts["force_exclude"] = arg == "--force-exclude"
        elif arg in _MULTIPLE or arg in ("--output-format", "-j", "--jobs"):
            if i == len(args) or args[i].startswith("-"):
                return None  # a missing value, or one click may read otherwise
            value = args[i]
            i += 1
            if arg in _MULTIPLE:
                multiple.setdefault(_MULTIPLE[arg], []).append(value)
            elif arg == "--output-format":
                if value not in _OUTPUT_FORMATS:
                    return None
                opts["output_format"] = value
            else:
                if not (value.isascii() and value.isdigit()) or int(value) < 1:
                    return None
                opts["jobs"] = int(value)
        else:
            return None
    for name, values in multiple.items():
        opts[name] = tuple(values)
    opts["paths"] = paths or ["."]
    return opts


def run(opts: dict[str, Any]) -> NoReturn:
    """Run the check as cli.entry_point runs click's standalone `main` around it."""
    from .check_command import EXIT_ERROR, echo, echo_error, run_check

    try:
        try:
            code = run_check(**opts)
        except (EOFError, KeyboardInterrupt):
            echo(err=True)  # click: a blank line closes the terminal's ^C, then "Aborted!", exit 1
            echo("Aborted!", err=True)
            sys.exit(1)
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            import click.utils

            # click's own wrapper (renamed between click versions): flushing a closed pipe stays silent
            wrapper: Any = getattr(click.utils, "_PacifyFlushWrapper", None) or click.utils.PacifyFlushWrapper
            sys.stdout = wrapper(sys.stdout)
            sys.stderr = wrapper(sys.stderr)
            sys.exit(1)
    except (EOFError, KeyboardInterrupt):
        sys.exit(1)
    except SystemExit:
        raise
    except Exception as exc:  # as cli.entry_point
        from .core.interrupts import Interrupted, was_interrupted

        if was_interrupted():
            raise Interrupted from None
        echo_error(f"internal error: {type(exc).__name__}: {exc} (please report this)")
        sys.exit(EXIT_ERROR)
    sys.exit(code)
