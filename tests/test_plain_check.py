"""The plain command line (esper_lint/plain_check.py, no click) against click's (cli.py): the same bytes on
stdout and stderr, the same exit code and the same files afterwards, for every command line the plain
path accepts; and click for everything else."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from esper_lint import plain_check
from tests.corpus import write_corpus

_ENTRY = "from esper_lint import console, plain_check\n{force}console.entry_point()\n"
_FORCE_CLICK = "plain_check.parse = lambda argv: None\n"

_SYNTAX_ERROR = "def broken(:\n    pass\n"
_NOT_UTF8 = b"x = '\xff'\n"
_MASKS = sorted((Path(__file__).parent.parent / "fixtures" / "lint").glob("*.py"))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plain-template")
    write_corpus(root / "pkg", count=6, seed=3, flex_share=0.8)
    for i, fixture in enumerate(_MASKS[:4]):
        shutil.copyfile(fixture, root / f"fixture_{i}.py")
    (root / "broken.py").write_text(_SYNTAX_ERROR)
    (root / "latin1.py").write_bytes(_NOT_UTF8)
    # A path with an ANSI escape: click strips it when the output is not a terminal; the plain path must too.
    shutil.copyfile(_MASKS[0], root / "\x1b[31mred.py")
    (root / "rule").write_text("x = 1\n")  # a file named like a subcommand
    return root


def _run(template: Path, tmp_path: Path, name: str, args: list[str], force_click: bool) -> tuple[object, ...]:
    work = tmp_path / name
    shutil.copytree(template, work)
    code = _ENTRY.format(force=_FORCE_CLICK if force_click else "")
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=work, capture_output=True, timeout=120)
    files = {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*.py")) if p.is_file()}
    root = str(work).encode()
    return done.returncode, done.stdout.replace(root, b"<ROOT>"), done.stderr.replace(root, b"<ROOT>"), files


PLAIN = [
    [],
    ["--no-cache"],
    ["check", "--force-exclude", "--no-cache", "fixture_0.py", "fixture_1.py"],
    ["check", "rule"],
    ["fixture_0.py", "-q"],
    ["--quiet", "--exit-zero", "pkg"],
    ["--statistics", "--no-cache"],
    ["--statistics", "--output-format", "json"],
    ["--statistics", "--output-format", "sarif"],
    ["--show-fixes", "--fix", "--no-cache"],
    ["--fix", "--unsafe-fixes", "pkg", "fixture_2.py"],
    ["--diff", "--no-cache"],
    ["--diff", "-q", "fixture_0.py"],
    ["--fix", "--diff"],
    ["--add-noqa", "--no-cache", "pkg"],
    ["--show-files", "--diff"],
    ["--show-files"],
    ["--show-settings", "--select", "ESP001", "--ignore", "ESP0"],
    *[["--output-format", fmt, "--no-cache"] for fmt in ("text", "json", "github", "sarif", "junit")],
    ["--select", "ESP001", "--select", "ESP002,ESP003"],
    ["--extend-select", "ESP006", "--ignore", "ESP001"],
    ["--select", "BOGUS"],
    ["-j", "1", "pkg"],
    ["--jobs", "2", "--no-cache", "pkg"],
    ["--force-exclude", "--no-force-exclude", "broken.py"],
    ["missing.py", "fixture_0.py"],
    ["broken.py", "latin1.py", "-q"],
    ["\x1b[31mred.py", "--no-cache"],
    [""],
]


@pytest.mark.parametrize("args", PLAIN, ids=repr)
def test_plain_path_matches_click(template: Path, tmp_path: Path, args: list[str]) -> None:
    assert plain_check.parse(args) is not None, "this command line should take the plain path"
    assert _run(template, tmp_path, "plain", args, False) == _run(template, tmp_path, "click", args, True)


CLICK_ONLY = [
    ["--help"],
    ["-h"],
    ["--version"],
    ["rule", "ESP001"],
    ["check", "--help"],
    ["-"],
    ["--", "fixture_0.py"],
    ["--select=ESP001"],
    ["--select"],
    ["--select", "-q"],
    ["-j", "0"],
    ["-j", "x"],
    ["-qj1"],
    ["--output-format", "xml"],
    ["--config", "pyproject.toml"],
    ["--no-such-option"],
    ["--stdin-filename", "a.py"],
]


@pytest.mark.parametrize("args", CLICK_ONLY, ids=repr)
def test_other_command_lines_go_to_click(template: Path, tmp_path: Path, args: list[str]) -> None:
    assert plain_check.parse(args) is None
    assert _run(template, tmp_path, "plain", args, False) == _run(template, tmp_path, "click", args, True)


def test_plain_check_does_not_import_click(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    code = _ENTRY.format(force="") + ""
    probe = "import atexit, sys\natexit.register(lambda: print('click' in sys.modules))\n" + code
    done = subprocess.run([sys.executable, "-c", probe, "--no-cache", "a.py"], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == ["All checks passed.", "False"]


# What a pre-commit run (`esper-lint --no-cache FILE`) must not import: the cost of one file is start-up.
_NOT_FOR_ONE_FILE = (
    "click",
    "libcst",
    "hashlib",
    "json",
    "threading",
    "dataclasses",
    "inspect",
    "esper_lint.cache",
    "esper_lint.notebook",
)


def test_checking_one_mask_file_imports_only_what_it_needs(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "from torch.nn.attention.flex_attention import create_block_mask\n\n\n"
        "def build(n):\n"
        "    def causal(b, h, q, kv):\n"
        "        return q >= kv\n"
        "    return create_block_mask(causal, None, None, n, n)  # noqa: ESP001\n"
    )
    code = _ENTRY.format(force="")
    report = f"print(sorted(m for m in {_NOT_FOR_ONE_FILE!r} if m in sys.modules))"
    probe = f"import atexit, sys\natexit.register(lambda: {report})\n" + code
    done = subprocess.run([sys.executable, "-c", probe, "--no-cache", "a.py"], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == ["All checks passed.", "[]"]


def test_closed_stdout_ends_as_click_does(tmp_path: Path, template: Path) -> None:
    """A reader that goes away (`esper-lint ... | head -0`): the same exit code and messages either way."""
    results = []
    for force in ("", _FORCE_CLICK):
        code = "import os, sys\nos.close(1)\n" + _ENTRY.format(force=force)
        done = subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=template, capture_output=True)
        results.append((done.returncode, done.stderr))
    assert results[0] == results[1]
