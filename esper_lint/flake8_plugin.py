"""flake8 plugin: the same findings as `esper-lint check`, with the same codes, lines and columns.

Registered under the `ESP` prefix (`[project.entry-points."flake8.extension"]`). The rules that run are the
ones `[tool.esper-lint]` in the nearest pyproject.toml selects for the file, exactly as for the CLI, plus any
esper-lint code named in full in flake8's own `--select`/`--extend-select` (so `--extend-select ESP006`
turns the off-by-default rule on). flake8 then applies its own select, ignore and `# noqa` on top.

Columns: esper-lint's are 1-based; flake8 wants a 0-based offset and adds 1 when it prints, so the plugin
passes `column - 1` and `flake8` prints the same `line:col` as `esper-lint`.
"""

from __future__ import annotations

import ast
import io
import os
import tokenize
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from . import __version__

FLAKE8_PREFIX = "ESP"


@lru_cache(maxsize=64)
def _config_for(directory: str) -> Any:
    from .config import ConfigError, load_config

    try:
        return load_config(None, Path(directory))
    except ConfigError as exc:
        # flake8 shows a plugin's exception with the file it was checking: say what to fix.
        raise RuntimeError(f"esper-lint: {exc}. Fix the [tool.esper-lint] table and run flake8 again.") from None


@lru_cache(maxsize=16)
def _project_for(config: Any, root: Path) -> Any:
    """One index of the project's modules per configuration and root, for the whole flake8 run: a file
    is checked with the facts of the modules it imports, read from disk, as `esper-lint FILE` does."""
    from .project import ProjectIndex

    return ProjectIndex(config, [], root=root)


def _source_bytes(lines: Sequence[str]) -> bytes:
    """flake8 hands over decoded lines: encode them back with the file's own declared encoding."""
    text = "".join(lines)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(text.encode("utf-8", "surrogateescape")).readline)
        return text.encode(encoding, "surrogateescape")
    except (SyntaxError, LookupError, UnicodeEncodeError):
        return text.encode("utf-8", "surrogateescape")


class EsperLintChecker:
    name = "esper-lint"
    version = __version__
    # Full esper-lint codes named in flake8's --select / --extend-select (set by parse_options).
    extra_codes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, tree: ast.AST, filename: str, lines: Sequence[str]) -> None:
        # `tree` is requested so flake8 runs this as an AST plugin (only on files that parse); it is unused.
        self.filename = filename
        self.lines = lines

    @classmethod
    def parse_options(cls, options: Any) -> None:
        from .rules import RULES_BY_CODE

        named: set[str] = set()
        for attr in ("select", "extend_select"):
            for code in getattr(options, attr, None) or ():
                if code.strip().upper() in RULES_BY_CODE:
                    named.add(code.strip().upper())
        cls.extra_codes = frozenset(named)

    def run(self) -> Iterator[tuple[int, int, str, type[Any]]]:
        from .engine import lint_source

        stdin = self.filename in ("-", "stdin", "<stdin>")
        path = self.filename if not stdin else os.path.join(os.getcwd(), "stdin.py")
        config = _config_for(os.path.dirname(os.path.abspath(path)))
        if self.extra_codes - config.select:
            config = config.replace(select=config.select | self.extra_codes)
        from .project import project_root

        config = config.with_project(_project_for(config, project_root(config, [path])))
        result = lint_source(_source_bytes(self.lines), self.filename, config)
        for error in result.errors:
            # flake8 itself reports files it cannot parse (E999); anything else must not pass silently.
            if error.kind != "syntax-error":
                raise RuntimeError(f"esper-lint could not check {error}")
        for f in result.findings:
            yield f.span.line, f.span.column - 1, f"{f.code} {f.message}", type(self)
