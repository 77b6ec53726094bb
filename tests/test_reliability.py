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
from collections.abc import Callable
from pathlib import Path

import pytest
from test_reliability_support import ESPER, FIXABLE, MENTION, assert_fixed, assert_one_error, changed, esper, snapshot

from esper_lint.config import Config
from esper_lint.engine import might_match
from esper_lint.fix.file_fixer import fix_source

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
    proc = esper("--fix", "--no-cache", ".", cwd=tmp_path, timeout=120)
    assert_one_error(proc, "huge.py", "time")  # the limit fired: LibCST alone needs ~40 s for this file
    assert_fixed(tmp_path / "zz_good.py")


def test_parallel_run_equals_serial(tmp_path: Path) -> None:
    write_corpus(tmp_path, count=40, seed=3, flex_share=0.9)
    (tmp_path / "broken.py").write_text(MENTION + "def f(:\n")
    serial = esper("-j", "1", "--no-cache", "--output-format", "json", ".", cwd=tmp_path)
    parallel = esper("-j", "2", "--no-cache", "--output-format", "json", ".", cwd=tmp_path)
    assert serial.returncode == parallel.returncode == 2
    assert serial.stdout == parallel.stdout and serial.stdout.count('"code"') > 10
    assert serial.stderr == parallel.stderr


def _default_sigint() -> None:
    """A shell starts background jobs with SIGINT ignored and children inherit that; esper-lint keeps an
    ignored SIGINT ignored (as it should), so a test run from such a job would wait for the whole run."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], limit: float = 60) -> None:
    """Send SIGINT as soon as `ready()` holds (polled); fail if it never does while the run is going."""
    deadline = time.monotonic() + limit
    while not ready():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "the run never reached the point to interrupt"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)


def _assert_interrupted(proc: subprocess.Popen[bytes]) -> None:
    """Exit 130 within seconds, one line on stderr. communicate() also waits for every process holding the
    output pipes, so a worker process that outlived the run would fail this too."""
    out, err = proc.communicate(timeout=20)
    assert (proc.returncode, err) == (130, b"esper-lint: error: interrupted\n"), (proc.returncode, err, out)


@pytest.mark.parametrize("files_done", [1, 3])
def test_interrupted_fix_leaves_each_file_old_or_new(tmp_path: Path, files_done: int) -> None:
    """Ctrl-C in the middle of `--fix` (right after a file was written): every file is old or fixed.
    Small files, so the moment to interrupt comes within seconds even on a loaded machine."""
    for i in range(40):
        (tmp_path / f"m{i:02}.py").write_text(FIXABLE.replace("causal", f"causal_{i}"))
    old = snapshot(tmp_path)
    proc = subprocess.Popen(
        [ESPER, "--fix", "--no-cache", "-j", "1", "."],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )
    _interrupt_when(proc, lambda: len(changed(old, snapshot(tmp_path))) >= files_done)
    _assert_interrupted(proc)
    after = snapshot(tmp_path)
    assert set(after) == set(old), "temporary files were left behind"
    config = Config(root=tmp_path)
    for rel in changed(old, after):
        source = old[rel]
        assert isinstance(source, bytes)
        fixed = fix_source(source, rel, config).new_source
        assert after[rel] == fixed, f"{rel} is neither the old nor the fixed file"


def test_interrupted_parallel_check_stops_its_workers(tmp_path: Path) -> None:
    """Ctrl-C (twice) while worker processes check: exit 130 at once, and no worker outlives the run."""
    write_corpus(tmp_path, count=150, seed=5, flex_share=0.9)
    proc = subprocess.Popen(
        [ESPER, "--no-cache", "-j", "2", "."],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )
    _interrupt_when(proc, lambda: len(_children(proc.pid)) >= 2)
    proc.send_signal(signal.SIGINT)  # an impatient second Ctrl-C must not cut the pool's shutdown short
    _assert_interrupted(proc)


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


# Interrupts at exact moments: SIGINT sent from inside the process when it imports a module. `click` is
# imported while the CLI starts (a traceback from inside the import, before); `plain_check` likewise for a
# command line read without click; `runner` once the command runs (click's `Aborted!` with exit 1, before);
# `libcst` in the middle of fixing a file.
_INTERRUPT_ON_IMPORT = """
import builtins, os, signal, sys
from esper_lint import console

real_import = builtins.__import__
target = sys.argv[1]

def interrupting_import(name, globals=None, locals=None, fromlist=(), level=0):
    if name == target:
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, globals, locals, fromlist, level)

builtins.__import__ = interrupting_import
sys.argv = ["esper-lint", *sys.argv[2:]]
console.entry_point()
"""


@pytest.mark.parametrize(
    ("module", "options"),
    [
        ("click", ["--output-format=text"]),  # `--opt=value`: read by click
        ("plain_check", []),
        ("runner", []),
        ("runner", ["--output-format=text"]),
        ("libcst", []),
    ],
)
def test_interrupt_at_any_phase_is_one_line_and_exit_130(tmp_path: Path, module: str, options: list[str]) -> None:
    (tmp_path / "a.py").write_text(FIXABLE)
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPT_ON_IMPORT, module, "--fix", "--no-cache", *options, "."],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )
    _assert_interrupted(proc)
    assert (tmp_path / "a.py").read_text() == FIXABLE
    assert [p.name for p in tmp_path.iterdir()] == ["a.py"]
