"""Real code at scale and resource bounds: the stdlib and a generated FlexAttention corpus under --fix,
one file's failure never fatal, per-file time limit, parallel == serial, and Ctrl-C during --fix."""

from __future__ import annotations

import ast
import json
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import warnings
from pathlib import Path

import pytest
from test_reliability_support import ESPER, FIXABLE, MENTION, assert_fixed, assert_one_error, changed, esper, snapshot

from esper_lint.config import Config
from esper_lint.engine import might_match

sys.path.insert(0, str(Path(__file__).parent))
from corpus import write_corpus


def _unparseable(root: Path) -> set[str]:
    """Files esper-lint analyses (they spell a mask API's name) that this interpreter cannot parse.

    Files the text prefilter rejects are never parsed, by design (docs/benchmarks.md, README): esper-lint
    is not a syntax checker, and parsing every file would cost more than ruff's whole run.
    """
    bad = set()
    config = Config(root=root)
    for path in root.rglob("*.py"):
        if path.is_file() and not path.is_symlink() and might_match(path.read_bytes(), config):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ast.parse(path.read_bytes())
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                bad.add(str(path.relative_to(root)))
    return bad


@pytest.mark.slow
def test_stdlib_sweep_with_fix(tmp_path: Path) -> None:
    root = tmp_path / "stdlib"
    ignore = shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc")
    shutil.copytree(sysconfig.get_paths()["stdlib"], root, symlinks=True, ignore=ignore)
    before = snapshot(root)
    check = esper("--no-cache", "--output-format", "json", ".", cwd=root, timeout=900)
    with_findings = {f["path"] for f in json.loads(check.stdout)}
    proc = esper("--fix", "--no-cache", ".", cwd=root, timeout=900)
    touched = changed(before, snapshot(root))
    assert touched <= with_findings, f"files without a finding were modified: {sorted(touched - with_findings)}"
    for rel in touched:  # a file changed only by a successful fix: it still compiles
        assert rel.endswith(".py") and rel in before, rel
        compile((root / rel).read_bytes(), rel, "exec")
    reported = {line.split(":", 1)[0] for line in proc.stderr.splitlines()}
    missing = _unparseable(root) - reported
    assert not missing, f"unparseable files not reported: {sorted(missing)}"
    assert proc.returncode == 2 if reported else proc.returncode in (0, 1)


@pytest.mark.slow
def test_generated_corpus_sweep_fixes_and_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write_corpus(root, count=120, seed=7, flex_share=0.9)
    before = snapshot(root)
    proc = esper("--fix", "--no-cache", ".", cwd=root, timeout=900)
    assert proc.returncode in (0, 1), proc.stderr
    after = snapshot(root)
    fixed = changed(before, after)
    assert fixed, "the corpus has fixable findings"
    for rel in fixed:
        compile(after[rel], rel, "exec")
    again = esper("--fix", "--no-cache", ".", cwd=root, timeout=900)
    assert snapshot(root) == after, "a second --fix changed files again"
    assert "Fixed" not in again.stdout


def test_one_hard_file_is_never_fatal(tmp_path: Path) -> None:
    """pydoc_data/topics.py (huge strings) once broke LibCST's metadata in Fixit: here it is linted or reported."""
    topics = Path(sysconfig.get_paths()["stdlib"]) / "pydoc_data" / "topics.py"
    (tmp_path / "topics.py").write_bytes(topics.read_bytes() + MENTION.encode())
    (tmp_path / "strings.py").write_text(MENTION + "x = (\n" + '    "abc"\n' * 30000 + ")\n")
    (tmp_path / "zz_good.py").write_text(FIXABLE)
    for mode in ([], ["--fix"]):
        proc = esper(*mode, "--no-cache", ".", cwd=tmp_path, timeout=300)
        assert proc.returncode in (0, 1, 2)
        for line in proc.stderr.splitlines():
            assert "internal error" not in line, line
    assert_fixed(tmp_path / "zz_good.py")


def test_per_file_timeout_is_a_reported_error(tmp_path: Path) -> None:
    """A file the fixer needs most of a minute for (3 MB of code) becomes a timeout error; the others are fixed."""
    chunk = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n\n" for i in range(1000))
    (tmp_path / "huge.py").write_text(chunk * 70 + FIXABLE)  # ~3 MB: LibCST needs ~40 s
    (tmp_path / "zz_good.py").write_text(FIXABLE)
    (tmp_path / "pyproject.toml").write_text("[tool.esper-lint]\ntimeout = 2\n")
    start = time.monotonic()
    proc = esper("--fix", "--no-cache", ".", cwd=tmp_path, timeout=60)
    assert time.monotonic() - start < 30
    assert_one_error(proc, "huge.py", "time")
    assert_fixed(tmp_path / "zz_good.py")


def test_parallel_run_equals_serial(tmp_path: Path) -> None:
    write_corpus(tmp_path, count=40, seed=3, flex_share=0.9)
    (tmp_path / "broken.py").write_text(MENTION + "def f(:\n")
    serial = esper("-j", "1", "--no-cache", "--output-format", "json", ".", cwd=tmp_path)
    parallel = esper("-j", "2", "--no-cache", "--output-format", "json", ".", cwd=tmp_path)
    assert serial.returncode == parallel.returncode == 2
    assert serial.stdout == parallel.stdout and serial.stdout.count('"code"') > 10
    assert serial.stderr == parallel.stderr


@pytest.mark.parametrize("delay", [0.8, 2.0])
def test_interrupted_fix_leaves_each_file_old_or_new(tmp_path: Path, delay: float) -> None:
    reference = tmp_path / "reference"
    work = tmp_path / "work"
    write_corpus(reference, count=40, seed=11, flex_share=0.9)
    shutil.copytree(reference, work)
    old = snapshot(reference)
    esper("--fix", "--no-cache", "-j", "1", ".", cwd=reference, timeout=600)
    new = snapshot(reference)
    proc = subprocess.Popen(
        [ESPER, "--fix", "--no-cache", "-j", "1", "."], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err
    after = snapshot(work)
    assert set(after) == set(old), "temporary files were left behind"
    for rel, data in after.items():
        assert data in (old[rel], new[rel]), f"{rel} is neither the old nor the new file"
    if proc.returncode not in (0, 1):  # interrupted before the end (a finished run exits 0, or 1 for findings left)
        assert proc.returncode == 130 and b"interrupted" in err
