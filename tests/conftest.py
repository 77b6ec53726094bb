"""Shared pytest helpers: run the real CLI in-process, and lint a snippet."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper_lint.cli import main
from esper_lint.config import Config, apply_cli
from esper_lint.core.findings import Finding
from esper_lint.engine import analyze_fast

BACKENDS = ("ast",)  # one analysis since issue 14 (the LibCST backend is gone)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(tmp_path: Path) -> Iterator[RunCli]:
    """`run_cli("src", "--select", "ESP001")` runs `esper-lint` in `tmp_path` (or `cwd=`), in-process."""

    def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> CliResult:
        runner = CliRunner()
        previous = os.getcwd()
        os.chdir(cwd or tmp_path)
        try:
            result = runner.invoke(main, list(args), input=stdin, catch_exceptions=False)
        finally:
            os.chdir(previous)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    yield run


def lint_snippet(source: str, backend: str = "ast", *codes: str, path: str = "snippet.py") -> list[Finding]:
    """Findings for dedented `source`; `codes` are added to the default selection."""
    import ast

    assert backend in BACKENDS
    text = textwrap.dedent(source)
    config = apply_cli(Config(root=Path.cwd()), extend_select=list(codes))
    return analyze_fast(ast.parse(text), text, path, config)


# The smallest module with one fixable finding (ESP001 at 8:30), shared by the CLI-level tests.
NESTED = """\
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    return create_block_mask(causal, None, None, n, n)
"""


def write(root: Path, files: dict[str, str]) -> None:
    """Create files (dedented) under `root`, making folders as needed."""
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(content), encoding="utf-8")
