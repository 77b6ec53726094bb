"""The hoisting codemod: golden files, fix safety, atomic writes and the CLI paths (no torch needed)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from esper_lint.config import Config
from esper_lint.engine import lint_source
from esper_lint.fix.diff import unified_diff
from esper_lint.fix.file_fixer import fix_file, fix_source

ROOT = Path(__file__).resolve().parent.parent
FIX_DIR = ROOT / "fixtures" / "fix"
BLUEPRINT = ROOT / "fixtures" / "blueprints" / "transformer_seed.py"
CONFIG = Config(root=ROOT)


def golden_cases() -> list[tuple[Path, Path | None]]:
    cases: list[tuple[Path, Path | None]] = [(BLUEPRINT, FIX_DIR / "blueprint.out.py")]
    for source in sorted(FIX_DIR.glob("*.in.py")):
        out = source.with_name(source.name.replace(".in.py", ".out.py"))
        cases.append((source, out if out.exists() else None))
    return cases


CASES = golden_cases()


@pytest.mark.parametrize(("source", "expected"), CASES, ids=[c[0].name for c in CASES])
def test_golden(source: Path, expected: Path | None) -> None:
    data = source.read_bytes()
    result = fix_source(data, str(source), CONFIG)
    assert not result.errors
    assert result.original_source == data
    if expected is None:  # nothing fixable: the file must not change at all
        assert result.new_source is None
        assert result.fixed == 0
        return
    assert result.new_source == expected.read_bytes()
    assert result.fixed > 0
    # Fixed point: the output has nothing left to fix, and linting it agrees with what fix_source reported.
    again = fix_source(result.new_source, str(source), CONFIG)
    assert again.new_source is None and again.fixed == 0
    relinted = lint_source(result.new_source, str(source), CONFIG)
    assert [(f.code, f.span) for f in relinted.findings] == [(f.code, f.span) for f in result.findings]
    compile(result.new_source, str(expected), "exec", dont_inherit=True)


def test_every_input_has_a_decision() -> None:
    """Each *.out.py has its *.in.py; inputs without output are the unfixable cases (checked unchanged)."""
    for out in FIX_DIR.glob("*.out.py"):
        if out.name == "blueprint.out.py":
            continue
        assert out.with_name(out.name.replace(".out.py", ".in.py")).exists(), out
    assert [c for c in CASES if c[1] is None] == [(FIX_DIR / "unfixable.in.py", None)]


def test_fixed_counts_findings_removed() -> None:
    before = lint_source((FIX_DIR / "lambdas.in.py").read_bytes(), "lambdas.py", CONFIG)
    result = fix_source((FIX_DIR / "lambdas.in.py").read_bytes(), "lambdas.py", CONFIG)
    assert result.fixed == len([f for f in before.findings if f.fixable]) == 5
    assert result.findings == []


def test_blueprint_causal_moves_to_module_level() -> None:
    result = fix_source(BLUEPRINT.read_bytes(), str(BLUEPRINT), CONFIG)
    assert result.new_source is not None
    text = result.new_source.decode()
    assert "\ndef causal(b, h, q_idx, kv_idx):" in text  # column 0: module level
    assert "        def causal" not in text
    assert text.index("def causal") < text.index("def make_transformer_seed")


def test_preserves_bytes_outside_the_moved_function() -> None:
    for name in ("crlf", "bom", "tabs", "latin1"):
        source = (FIX_DIR / f"{name}.in.py").read_bytes()
        fixed = (FIX_DIR / f"{name}.out.py").read_bytes()
        if name == "crlf":
            assert fixed.count(b"\n") == fixed.count(b"\r\n")
        if name == "bom":
            assert fixed.startswith(b"\xef\xbb\xbf# -*- coding: utf-8 -*-")
        if name == "latin1":
            assert "café".encode("latin-1") in fixed
        if name == "tabs":
            assert (
                b"import torch   \n" in fixed and b"N = 64\t\n" in fixed and b"\tallowed = q_idx >= kv_idx  \n" in fixed
            )
        # Lines only move (dedented with their function) or become blank-line changes: nothing else differs.
        lost = Counter(source.splitlines(keepends=True)) - Counter(fixed.splitlines(keepends=True))
        kept = {line.lstrip(b" \t") for line in fixed.splitlines(keepends=True)}
        for line in lost:
            assert line.lstrip(b" \t") in kept, (name, line)


def test_module_blockers_explain_and_clear_fixable() -> None:
    result = fix_source((FIX_DIR / "decorators.in.py").read_bytes(), "decorators.py", CONFIG)
    assert result.fixed == 1
    messages = {f.message for f in result.findings}
    assert all(not f.fixable for f in result.findings)
    assert any("read local `deco`" in m for m in messages)
    assert any("it is decorated (a decorator would run once at import" in m and "by hand" in m for m in messages)


SOURCES_NOT_FIXED = {
    "class attribute": """
from torch.nn.attention.flex_attention import create_block_mask

def factory(n):
    class M:
        def causal(b, h, q, kv):
            return q >= kv
        mask = create_block_mask(causal, None, None, n, n)
    return M
""",
    "super": """
from torch.nn.attention.flex_attention import create_block_mask

class M(Base):
    def mask(self, n):
        def causal(b, h, q, kv):
            return super().allowed(q, kv)
        return create_block_mask(causal, None, None, n, n)
""",
    "del": """
from torch.nn.attention.flex_attention import create_block_mask

def build(n):
    def causal(b, h, q, kv):
        return q >= kv
    mask = create_block_mask(causal, None, None, n, n)
    del causal
    return mask
""",
    "default bound below": """
from torch.nn.attention.flex_attention import create_block_mask

def build(n):
    def causal(b, h, q, kv, offset=LATE):
        return q + offset >= kv
    return create_block_mask(causal, None, None, n, n)

LATE = 0
""",
    "bound again later": """
from torch.nn.attention.flex_attention import create_block_mask

def build(n):
    def causal(b, h, q, kv):
        return q >= kv
    mask = create_block_mask(causal, None, None, n, n)
    causal = None
    return mask, causal
""",
    "string annotation": """
from torch.nn.attention.flex_attention import create_block_mask

def build(n):
    def causal(b, h, q, kv):
        return q >= kv
    keep: "type[causal]" = None
    return create_block_mask(causal, None, None, n, n), keep
""",
    "star import read by a default": """
from torch.nn.attention.flex_attention import create_block_mask
from somewhere import *

def build(n):
    def causal(b, h, q, kv, offset=OFFSET):
        return q + offset >= kv
    return create_block_mask(causal, None, None, n, n)
""",
    # CPython accepts a form feed in indentation; LibCST's tokenizer cannot parse it (found by hypothesmith).
    "form feed in the indentation": """
from torch.nn.attention.flex_attention import create_block_mask

def build(n):
    \x0c    def causal(b, h, q, kv):
        return q >= kv
    return create_block_mask(causal, None, None, n, n)
""",
}


@pytest.mark.parametrize("case", sorted(SOURCES_NOT_FIXED))
def test_unsafe_cases_are_not_fixed(case: str) -> None:
    source = SOURCES_NOT_FIXED[case].encode()
    result = fix_source(source, "case.py", CONFIG)
    assert result.new_source is None and result.fixed == 0 and not result.errors
    esp = [f for f in result.findings if f.code in ("ESP001", "ESP002")]
    assert esp, "the finding itself must remain"
    assert all(not f.fixable and "no automatic fix because" in f.message for f in esp)


@pytest.mark.parametrize("case", sorted(SOURCES_NOT_FIXED))
def test_check_mode_agrees_with_the_fixer(case: str) -> None:
    """The analysis records these blockers, so plain checking does not promise a fix --fix declines."""
    source = SOURCES_NOT_FIXED[case].encode()
    checked = lint_source(source, "case.py", CONFIG).findings
    fixed = fix_source(source, "case.py", CONFIG).findings
    assert checked and [(f.code, f.fixable, f.message) for f in checked] == [
        (f.code, f.fixable, f.message) for f in fixed
    ]


def test_renamed_function_keeps_every_use() -> None:
    source = b"""
from torch.nn.attention.flex_attention import create_block_mask
causal = 1

def build(n):
    def causal(b, h, q, kv):
        return q >= kv
    def alias(*args):
        return causal(*args)
    return create_block_mask(causal, None, None, n, n), causal(0, 0, 1, 0), alias
"""
    result = fix_source(source, "m.py", CONFIG)
    assert result.new_source is not None
    text = result.new_source.decode()
    assert "def causal_2(b, h, q, kv):" in text
    assert "return causal_2(*args)" in text and "create_block_mask(causal_2," in text and "causal_2(0, 0, 1, 0)" in text
    assert "\ncausal = 1\n" in text


def test_broken_output_leaves_file_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    import ast

    from esper_lint.fix import hoist

    def broken(text: str, tree: ast.Module, hoists: list[hoist.Hoist], taken: frozenset[str]) -> str:
        return "return 1\n"  # parses, but `return` outside a function does not compile

    monkeypatch.setattr(hoist, "apply_hoists", broken)
    source = BLUEPRINT.read_bytes()
    result = fix_source(source, "seed.py", CONFIG)
    assert result.new_source is None and result.fixed == 0
    [error] = result.errors
    assert error.kind == "internal-error" and error.path == "seed.py" and "left unchanged" in error.message
    assert [f.code for f in result.findings] == ["ESP001"]


def test_bad_input_becomes_file_error() -> None:
    result = fix_source(b"from torch.nn.attention.flex_attention import create_block_mask\ndef f(:\n", "bad.py", CONFIG)
    assert result.new_source is None and result.errors and result.errors[0].kind == "syntax-error"


# ---------------------------------------------------------------------- writing files
def _copy(tmp_path: Path, source: Path, name: str = "seed.py") -> Path:
    target = tmp_path / name
    target.write_bytes(source.read_bytes())
    return target


def test_fix_file_writes_atomically_and_keeps_mode(tmp_path: Path) -> None:
    target = _copy(tmp_path, BLUEPRINT)
    os.chmod(target, 0o640)
    result = fix_file(str(target), target.read_bytes(), CONFIG)
    assert not result.errors and result.fixed == 1
    assert target.read_bytes() == (FIX_DIR / "blueprint.out.py").read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed.py"]  # no temporary file left behind


def test_file_without_fix_is_not_rewritten(tmp_path: Path) -> None:
    target = _copy(tmp_path, FIX_DIR / "blueprint.out.py")
    os.utime(target, (1_000_000, 1_000_000))
    result = fix_file(str(target), target.read_bytes(), CONFIG)
    assert result.new_source is None and not result.errors
    assert target.stat().st_mtime == 1_000_000


def test_symlink_is_not_written_through(tmp_path: Path) -> None:
    real = _copy(tmp_path, BLUEPRINT, "real.py")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    result = fix_file(str(link), link.read_bytes(), CONFIG)
    assert real.read_bytes() == BLUEPRINT.read_bytes() and link.is_symlink()
    [error] = result.errors
    assert "symbolic link" in error.message and result.fixed == 0 and result.new_source is None
    assert [f.code for f in result.findings] == ["ESP001"]


def test_read_only_file_is_refused(tmp_path: Path) -> None:
    target = _copy(tmp_path, BLUEPRINT)
    os.chmod(target, 0o444)
    result = fix_file(str(target), target.read_bytes(), CONFIG)
    assert target.read_bytes() == BLUEPRINT.read_bytes()
    [error] = result.errors
    assert "read-only" in error.message and result.fixed == 0


def test_file_changed_since_read_is_refused(tmp_path: Path) -> None:
    target = _copy(tmp_path, BLUEPRINT)
    stale = target.read_bytes()
    target.write_bytes(stale + b"\n# edited meanwhile\n")
    result = fix_file(str(target), stale, CONFIG)
    assert target.read_bytes() == stale + b"\n# edited meanwhile\n"
    [error] = result.errors
    assert "changed on disk" in error.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed.py"]


def test_unified_diff_headers_and_newlines() -> None:
    diff = unified_diff("src/m.py", b"a = 1\r\nb = 2\r\n", b"a = 1\r\nb = 3\r\n")
    assert diff.startswith("--- a/src/m.py\n+++ b/src/m.py\n")
    assert "-b = 2\r\n+b = 3\r\n" in diff
    assert unified_diff("m.py", b"x", b"y").endswith("+y\n\\ No newline at end of file\n")
    assert unified_diff("m.py", b"same\n", b"same\n") == ""


# ---------------------------------------------------------------------- the command line
def _cli(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "esper_lint", "--no-cache", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def test_cli_fix_diff_and_stdin(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    seed = _copy(src, BLUEPRINT)
    (src / "clean.py").write_text("x = 1\n")
    expected = (FIX_DIR / "blueprint.out.py").read_bytes()

    diff = _cli("--diff", "src", cwd=tmp_path)
    assert diff.returncode == 1, diff.stderr
    assert diff.stdout.decode().startswith("--- a/src/seed.py\n+++ b/src/seed.py\n")
    assert seed.read_bytes() == BLUEPRINT.read_bytes()  # --diff writes nothing

    stdin = _cli("-", "--stdin-filename", "src/seed.py", "--fix", cwd=tmp_path, stdin=BLUEPRINT.read_bytes())
    assert stdin.returncode == 0, stdin.stderr
    assert stdin.stdout == expected

    fixed = _cli("--fix", "src", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert "Fixed 1 finding in 1 file." in fixed.stdout.decode()
    assert seed.read_bytes() == expected

    again = _cli("--fix", "src", cwd=tmp_path)
    assert again.returncode == 0 and seed.read_bytes() == expected
    assert "Fixed" not in again.stdout.decode()


def test_cli_fix_reports_what_remains(tmp_path: Path) -> None:
    _copy(tmp_path, FIX_DIR / "decorators.in.py", "decorators.py")
    result = _cli("--fix", "decorators.py", cwd=tmp_path)
    out = result.stdout.decode()
    assert result.returncode == 1
    assert "Fixed 1 finding in 1 file." in out and out.count("ESP001") == 3
