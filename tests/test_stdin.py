"""`esper-lint -` with `--stdin-filename`: how editors lint (and fix) an unsaved buffer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NESTED


def esper(*args: str, cwd: Path, stdin: str | bytes) -> subprocess.CompletedProcess[bytes]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run(
        [sys.executable, "-m", "esper_lint", *args], cwd=cwd, input=data, capture_output=True, timeout=120
    )


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    """`strict/` has no configuration; `relaxed/` ignores ESP001 and excludes `generated/`."""
    (tmp_path / "strict").mkdir()
    relaxed = tmp_path / "relaxed"
    (relaxed / "generated").mkdir(parents=True)
    (relaxed / "pyproject.toml").write_text(
        '[tool.esper-lint]\nextend-exclude = ["generated"]\nper-file-ignores = { "legacy_*.py" = ["ESP001"] }\n'
    )
    return tmp_path


def test_findings_are_reported_under_the_stdin_filename(projects: Path) -> None:
    proc = esper("-", "--stdin-filename", "strict/model.py", "--output-format", "json", cwd=projects, stdin=NESTED)
    assert proc.returncode == 1, proc.stderr
    [finding] = json.loads(proc.stdout)
    where = (finding["path"], finding["line"], finding["column"], finding["code"])
    assert where == ("strict/model.py", 8, 30, "ESP001")


def test_without_a_filename_the_path_is_stdin(projects: Path) -> None:
    proc = esper("-", cwd=projects, stdin=NESTED)
    assert proc.returncode == 1
    assert proc.stdout.decode().startswith("<stdin>:8:30: ESP001 ")


def test_configuration_is_resolved_for_the_stdin_filename(projects: Path) -> None:
    # Run from a folder with no configuration: the config must come from the path the buffer stands for.
    ignored = esper("-", "--stdin-filename", str(projects / "relaxed" / "legacy_model.py"), cwd=projects, stdin=NESTED)
    assert ignored.returncode == 0, ignored.stdout + ignored.stderr
    assert b"ESP001" not in ignored.stdout
    flagged = esper("-", "--stdin-filename", str(projects / "relaxed" / "model.py"), cwd=projects, stdin=NESTED)
    assert flagged.returncode == 1
    # A file that does not exist yet (new buffer) in a folder that does not exist yet still finds its config.
    new = esper("-", "--stdin-filename", "relaxed/new/pkg/legacy_x.py", cwd=projects, stdin=NESTED)
    assert new.returncode == 0, new.stdout + new.stderr


def test_excluded_filename_is_skipped_only_with_force_exclude(projects: Path) -> None:
    path = "relaxed/generated/model.py"
    linted = esper("-", "--stdin-filename", path, cwd=projects, stdin=NESTED)
    assert linted.returncode == 1  # as ruff: a file given explicitly is checked unless --force-exclude
    skipped = esper("-", "--stdin-filename", path, "--force-exclude", cwd=projects, stdin=NESTED)
    assert (skipped.returncode, skipped.stdout) == (0, b"")


def test_fix_writes_the_fixed_source_to_stdout(projects: Path) -> None:
    proc = esper("-", "--stdin-filename", "strict/model.py", "--fix", cwd=projects, stdin=NESTED)
    assert proc.returncode == 0, proc.stderr
    fixed = proc.stdout.decode()
    assert fixed != NESTED
    assert fixed.index("def causal") < fixed.index("def build")  # hoisted to module level
    compile(fixed, "model.py", "exec")
    assert b"Fixed 1 finding" in proc.stderr  # the report goes to stderr so stdout is only source
    recheck = esper("-", "--stdin-filename", "strict/model.py", cwd=projects, stdin=fixed)
    assert recheck.returncode == 0, recheck.stdout


def test_fix_passes_excluded_source_through_unchanged(projects: Path) -> None:
    source = NESTED.replace("\n", "\r\n").encode()  # bytes, line endings included, must survive untouched
    proc = esper(
        "-", "--stdin-filename", "relaxed/generated/m.py", "--fix", "--force-exclude", cwd=projects, stdin=source
    )
    assert (proc.returncode, proc.stdout) == (0, source)


def test_fix_with_nothing_to_fix_echoes_the_source(projects: Path) -> None:
    source = "x = 1\n"
    proc = esper("-", "--stdin-filename", "strict/m.py", "--fix", cwd=projects, stdin=source)
    assert (proc.returncode, proc.stdout) == (0, source.encode())


def test_syntax_error_on_stdin_names_the_file(projects: Path) -> None:
    source = "from torch.nn.attention.flex_attention import create_block_mask\ndef f(:\n"
    proc = esper("-", "--stdin-filename", "strict/m.py", cwd=projects, stdin=source)
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith("strict/m.py:2:")
    assert b"Traceback" not in proc.stderr


def test_stdin_cannot_be_mixed_with_paths(projects: Path) -> None:
    proc = esper("-", "strict", cwd=projects, stdin=NESTED)
    assert proc.returncode == 2
    assert b"cannot be combined" in proc.stderr
