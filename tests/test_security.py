"""Linting never runs the code it reads, configuration is data, and --fix writes only the files it linted,
never through a symlink out of the tree, never outside the given paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_reliability_support import FIXABLE, assert_fixed, assert_one_error, changed, esper, snapshot


def _booby_trap(marker: Path) -> str:
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"


@pytest.mark.parametrize("mode", [[], ["--fix"], ["--diff"]])
def test_linted_code_is_never_executed_or_imported(tmp_path: Path, mode: list[str]) -> None:
    marker = tmp_path.parent / f"{tmp_path.name}-marker"
    trap = _booby_trap(marker)
    (tmp_path / "model.py").write_text(trap + FIXABLE + "import helpers\nhelpers.go()\n")
    (tmp_path / "helpers.py").write_text(trap)
    (tmp_path / "__init__.py").write_text(trap)
    (tmp_path / "conftest.py").write_text(trap)
    # Modules named like esper-lint's own dependencies, in the folder it runs in: never shadow them.
    for name in ("click", "libcst", "pathspec", "tomllib", "ast", "tokenize", "sitecustomize", "usercustomize"):
        (tmp_path / f"{name}.py").write_text(trap)
    (tmp_path / "pyproject.toml").write_text(
        "[tool.esper-lint]\n[[tool.esper-lint.mask-apis]]\nname = \"__import__('os').system('touch x').f\"\n"
    )
    proc = esper(*mode, "--no-cache", ".", cwd=tmp_path)
    assert not marker.exists(), "esper-lint executed code it was only meant to read"
    assert not (tmp_path / "x").exists()
    linted = "model.py" in proc.stdout or "def causal" not in (tmp_path / "model.py").read_text().split("def build")[1]
    assert proc.returncode in (0, 1, 2) and linted, "the booby-trapped file was still linted (and fixed)"


def test_fix_never_writes_through_a_symlink_out_of_the_tree(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    tree = tmp_path / "tree"
    outside.mkdir()
    tree.mkdir()
    (outside / "real.py").write_text(FIXABLE)
    (tree / "link.py").symlink_to(outside / "real.py")
    (tree / "linked_dir").symlink_to(outside, target_is_directory=True)
    (tree / "good.py").write_text(FIXABLE)
    before = snapshot(tmp_path)
    proc = esper("--fix", "--no-cache", ".", cwd=tree)
    assert proc.returncode in (0, 1), proc.stderr
    assert changed(before, snapshot(tmp_path)) == {"tree/good.py"}
    named = esper("--fix", "--no-cache", "link.py", cwd=tree)
    assert_one_error(named, "link.py", "symbolic link")
    assert (outside / "real.py").read_text() == FIXABLE and (tree / "link.py").is_symlink()


def test_fix_writes_only_the_files_it_linted(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("generated.py\n")
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nextend-exclude = ["vendored"]\n')
    for name in ("src/a.py", "src/b.py", "generated.py", "vendored/v.py", "notes.txt", "script"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(FIXABLE)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "c.py").write_text(FIXABLE)
    before = snapshot(tmp_path)
    proc = esper("--fix", "--no-cache", "src", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert changed(before, snapshot(tmp_path)) == {"src/a.py", "src/b.py"}, "wrote outside the given paths"
    for name in ("src/a.py", "src/b.py"):
        assert_fixed(tmp_path / name)
