"""The file walker meets odd file systems: every path it cannot lint is named once, nothing hangs, and the
files around it are still processed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from test_reliability_support import FIXABLE, MENTION, assert_fixed, assert_one_error, changed, esper, snapshot


def test_missing_path(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(FIXABLE)
    proc = esper("--fix", "--no-cache", "missing.py", "good.py", cwd=tmp_path)
    assert_one_error(proc, "missing.py", "no such file")
    assert_fixed(tmp_path / "good.py")


def test_directory_named_like_a_module_is_walked(tmp_path: Path) -> None:
    (tmp_path / "x.py").mkdir()
    (tmp_path / "x.py" / "inner.py").write_text(FIXABLE)
    proc = esper("--no-cache", "x.py", cwd=tmp_path)
    assert proc.returncode == 1 and f"x.py{os.sep}inner.py:8:" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stderr == ""


def test_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    (tmp_path / "loop.py").symlink_to("loop.py")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to("..", target_is_directory=True)  # a folder loop: never followed
    (tmp_path / "sub" / "good.py").write_text(FIXABLE)
    proc = esper("--fix", "--no-cache", ".", "a", cwd=tmp_path, timeout=60)
    assert_one_error(proc, "loop.py", "loop")
    assert_one_error(proc, "a", "loop")
    assert_fixed(tmp_path / "sub" / "good.py")


def test_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "gone.py").symlink_to("nowhere.py")
    (tmp_path / "good.py").write_text(FIXABLE)
    proc = esper("--no-cache", ".", cwd=tmp_path)
    assert_one_error(proc, "gone.py", "broken symbolic link")
    assert "good.py:8:" in proc.stdout


def test_fifo_is_never_opened(tmp_path: Path) -> None:
    """Opening a FIFO blocks until a writer comes: the run would hang. Walked or named, it is reported."""
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "good.py").write_text(FIXABLE)
    walked = esper("--fix", "--no-cache", ".", cwd=tmp_path, timeout=60)
    assert_one_error(walked, "pipe.py", "FIFO")
    assert_fixed(tmp_path / "good.py")
    named = esper("--no-cache", "pipe.py", "good.py", cwd=tmp_path, timeout=60)
    assert_one_error(named, "pipe.py", "FIFO")


def test_device_file(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(FIXABLE)
    proc = esper("--no-cache", os.devnull, "good.py", cwd=tmp_path, timeout=60)
    assert_one_error(proc, os.devnull, "device")
    assert "good.py:8:" in proc.stdout


def test_unreadable_file_and_folder(tmp_path: Path) -> None:
    shared_dir = tmp_path
    (shared_dir / "secret.py").write_text(FIXABLE)
    (shared_dir / "secret.py").chmod(0)
    (shared_dir / "locked").mkdir()
    (shared_dir / "locked" / "hidden.py").write_text(FIXABLE)
    (shared_dir / "locked").chmod(0)
    (shared_dir / "good.py").write_text(FIXABLE)
    (shared_dir / "good.py").chmod(0o644)
    try:
        proc = esper("--no-cache", ".", cwd=shared_dir, unprivileged=True)
    finally:
        (shared_dir / "locked").chmod(0o755)
    assert_one_error(proc, "secret.py", "permission denied")
    assert_one_error(proc, "locked", "permission denied")
    assert "good.py:8:" in proc.stdout


def test_read_only_file_under_fix(tmp_path: Path) -> None:
    (tmp_path / "frozen.py").write_text(FIXABLE)
    (tmp_path / "frozen.py").chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    (tmp_path / "good.py").write_text(FIXABLE)
    proc = esper("--fix", "--no-cache", ".", cwd=tmp_path)
    assert_one_error(proc, "frozen.py", "read-only")
    assert (tmp_path / "frozen.py").read_text() == FIXABLE
    assert stat.S_IMODE((tmp_path / "frozen.py").stat().st_mode) == 0o444
    assert_fixed(tmp_path / "good.py")


def test_walk_order_is_sorted_and_excludes_hold(tmp_path: Path) -> None:
    for name in ("b.py", "a.py", "c/z.py", "c/a.py", "build/x.py", ".venv/y.py", "ignored/w.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(FIXABLE)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("ignored/\n")
    before = snapshot(tmp_path)
    proc = esper("--fix", "--no-cache", ".", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert changed(before, snapshot(tmp_path)) == {"a.py", "b.py", os.path.join("c", "a.py"), os.path.join("c", "z.py")}
    listed = esper("--no-cache", ".", cwd=tmp_path.parent / tmp_path.name)
    assert listed.returncode == 0


def test_mention_only_file_is_clean(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(MENTION)
    assert esper("--no-cache", ".", cwd=tmp_path).returncode == 0


def test_excluded_folder_named_explicitly_is_still_walked(tmp_path: Path) -> None:
    """As ruff: excludes prune the walk, but a folder the user names is checked (this repo's own
    `esper-lint fixtures/blueprints/` depends on it); --force-exclude applies them to named paths too."""
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nextend-exclude = ["fixtures"]\n')
    (tmp_path / "fixtures" / "blueprints").mkdir(parents=True)
    (tmp_path / "fixtures" / "blueprints" / "seed.py").write_text(FIXABLE)
    walked = esper("--no-cache", ".", cwd=tmp_path)
    assert walked.returncode == 0 and "seed.py" not in walked.stdout, walked.stdout + walked.stderr
    named = esper("--no-cache", "fixtures/blueprints", cwd=tmp_path)
    assert named.returncode == 1 and "seed.py:8:" in named.stdout, named.stdout + named.stderr
    for path in ("fixtures/blueprints", "fixtures/blueprints/seed.py"):
        forced = esper("--no-cache", "--force-exclude", path, cwd=tmp_path)
        assert forced.returncode == 0 and "seed.py" not in forced.stdout, forced.stdout + forced.stderr


def test_unreadable_file_named_explicitly_is_reported_and_the_others_checked(tmp_path: Path) -> None:
    """click's own path check used to stop the whole run with a usage error, checking nothing."""
    (tmp_path / "a.py").write_text(FIXABLE)
    (tmp_path / "a.py").chmod(0)
    (tmp_path / "ok.py").write_text(FIXABLE)
    proc = esper("--no-cache", "a.py", "ok.py", cwd=tmp_path, unprivileged=True)
    assert_one_error(proc, "a.py", "io error", "permission denied")
    assert "ok.py:8:30: ESP001" in proc.stdout


def test_gitignored_folder_named_explicitly_is_checked_unless_force_exclude(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("gen/\n")
    for name in ("gen/a.py", "gen/sub/b.py", "gen/skip.py", "other/c.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(FIXABLE)
    (tmp_path / "gen" / ".gitignore").write_text("skip.py\n")
    walked = esper("--no-cache", ".", cwd=tmp_path)
    assert "gen" not in walked.stdout and "other/c.py:8:" in walked.stdout, walked.stdout
    named = esper("--no-cache", "gen", cwd=tmp_path)
    # The folder is checked; its own .gitignore files still apply below it.
    assert named.returncode == 1 and (named.stdout.count(": ESP001 "), "skip.py" in named.stdout) == (2, False)
    file_named = esper("--no-cache", "gen/skip.py", cwd=tmp_path)
    assert file_named.returncode == 1 and "gen/skip.py:8:" in file_named.stdout
    for path in ("gen", "gen/a.py"):
        forced = esper("--no-cache", "--force-exclude", path, cwd=tmp_path)
        assert (forced.returncode, forced.stdout) == (0, "All checks passed.\n"), forced.stdout


def test_no_python_files_is_a_warning_not_a_silent_pass(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("create_block_mask\n")
    proc = esper("--no-cache", "docs", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stderr == "esper-lint: warning: No Python files found under the given path(s)\n"


def test_named_non_python_file_is_checked_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text(FIXABLE)
    (tmp_path / "script").write_text(FIXABLE)  # no suffix: a script, checked without a word (as ruff)
    proc = esper("--no-cache", "x.txt", "script", cwd=tmp_path)
    assert proc.stderr == "esper-lint: warning: x.txt: not a Python file name (.py, .pyi); checked as Python\n"
    assert "x.txt:8:30: ESP001" in proc.stdout and "script:8:30: ESP001" in proc.stdout
