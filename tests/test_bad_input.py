"""Bad input, one case each: a clear one-line message naming the path, exit code 2, the other files still
processed (a fixable neighbour gets fixed), and no file modified except by a successful fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_reliability_support import (
    FIXABLE,
    MENTION,
    assert_fixed,
    assert_one_error,
    changed,
    error_lines,
    esper,
    snapshot,
)

# name -> (bytes, words the one error line must contain)
BAD_FILES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "syntax_error.py": (MENTION.encode() + b"def f(:\n    pass\n", ("syntax error",)),
    "python2.py": (MENTION.encode() + b'print "hello"\nexec "x = 1"\n', ("syntax error", "print")),
    "undecodable.py": (MENTION.encode() + b'x = "\xff\xfe"\n', ("decode error", "utf-8")),
    "wrong_cookie.py": (b"# -*- coding: ascii -*-\n" + MENTION.encode() + "x = 'café'\n".encode(), ("ascii",)),
    "unknown_cookie.py": (b"# coding: klingon\n" + MENTION.encode(), ("klingon",)),
    "bom_and_cookie.py": (b"\xef\xbb\xbf# coding: latin-1\n" + MENTION.encode(), ("byte-order mark",)),
    "nul_bytes.py": (MENTION.encode() + b"x = 1\x00\n", ("null",)),
}


@pytest.mark.parametrize("mode", ["check", "fix"])
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_reported_and_the_run_goes_on(tmp_path: Path, name: str, mode: str) -> None:
    content, words = BAD_FILES[name]
    (tmp_path / name).write_bytes(content)
    (tmp_path / "zz_good.py").write_text(FIXABLE)
    before = snapshot(tmp_path)
    proc = esper(*(["--fix"] if mode == "fix" else []), "--no-cache", ".", cwd=tmp_path)
    assert_one_error(proc, name, *words)
    assert (tmp_path / name).read_bytes() == content
    if mode == "fix":
        assert_fixed(tmp_path / "zz_good.py")
        assert changed(before, snapshot(tmp_path)) == {"zz_good.py"}
    else:
        assert "zz_good.py:8:" in proc.stdout and "ESP001" in proc.stdout
        assert snapshot(tmp_path) == before


# Hundreds of levels: LibCST's metadata recursion fails from ~400, Python's own parser from ~3000; deeper
# still, LibCST's native parser overflowed the C stack (a segfault) before esper-lint guarded it.
DEEP_FILES: dict[str, bytes] = {
    "deep_binop.py": b"x = " + b" + ".join([b"1"] * 600) + b"\n",
    "deep_attributes.py": b"x = a" + b".b" * 1500 + b"\n",
    "deep_lambdas.py": b"x = " + b"lambda: " * 4000 + b"1\n",
    "deep_subscripts.py": b"x = a" + b"[0]" * 20000 + b"\n",
}


@pytest.mark.parametrize("mode", ["check", "fix"])
@pytest.mark.parametrize("name", sorted(DEEP_FILES))
def test_deeply_nested_code_never_crashes_the_run(tmp_path: Path, name: str, mode: str) -> None:
    """Linted if the tools can, else one clear line (a known limit, not an "internal error")."""
    content = MENTION.encode() + DEEP_FILES[name]
    (tmp_path / name).write_bytes(content)
    (tmp_path / "zz_good.py").write_text(FIXABLE)
    proc = esper(*(["--fix"] if mode == "fix" else []), "--no-cache", ".", cwd=tmp_path)
    assert proc.returncode in (0, 1, 2) and (tmp_path / name).read_bytes() == content
    if error_lines(proc, name):
        assert_one_error(proc, name, "nested")
    if mode == "fix":
        assert_fixed(tmp_path / "zz_good.py")
    else:
        assert "zz_good.py:8:" in proc.stdout


def test_empty_file_is_clean(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_bytes(b"")
    proc = esper("--fix", "--no-cache", "empty.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "empty.py").read_bytes() == b""


@pytest.mark.parametrize(
    ("name", "transform"),
    [
        ("bom.py", lambda s: b"\xef\xbb\xbf" + s),
        ("crlf.py", lambda s: s.replace(b"\n", b"\r\n")),
        ("latin1.py", lambda s: b"# coding: latin-1\n# caf\xe9\n" + s),
    ],
)
def test_encoding_and_line_endings_survive_a_fix(tmp_path: Path, name: str, transform: object) -> None:
    assert callable(transform)
    original: bytes = transform(FIXABLE.encode())
    (tmp_path / name).write_bytes(original)
    proc = esper("--fix", "--no-cache", name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fixed = (tmp_path / name).read_bytes()
    assert fixed != original and b"\ndef causal(" in fixed.replace(b"\r\n", b"\n")
    compile(fixed, name, "exec")
    if name == "bom.py":
        assert fixed.startswith(b"\xef\xbb\xbf") and fixed.count(b"\xef\xbb\xbf") == 1
    if name == "crlf.py":
        assert fixed.count(b"\n") == fixed.count(b"\r\n"), "a fix must keep the file's line endings"
    if name == "latin1.py":
        assert b"caf\xe9" in fixed


def test_mixed_line_endings(tmp_path: Path) -> None:
    lines = FIXABLE.encode().split(b"\n")
    mixed = b"".join(line + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(lines[:-1]))
    (tmp_path / "mixed.py").write_bytes(mixed)
    proc = esper("--fix", "--no-cache", "mixed.py", cwd=tmp_path)
    fixed = (tmp_path / "mixed.py").read_bytes()
    compile(fixed, "mixed.py", "exec")
    if fixed == mixed:  # declining to fix is fine, but then the finding must be reported
        assert "ESP001" in proc.stdout
    else:
        assert proc.returncode == 0, proc.stderr
        again = esper("--fix", "--no-cache", "mixed.py", cwd=tmp_path)
        assert again.returncode == 0 and (tmp_path / "mixed.py").read_bytes() == fixed


def test_ten_megabyte_file_is_linted(tmp_path: Path) -> None:
    """A 10 MB module of plain code with one mask function at the end: found, and the neighbour too."""
    chunk = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n\n" for i in range(1000))
    body = chunk * (10_000_000 // len(chunk) + 1)
    (tmp_path / "big.py").write_text(body + FIXABLE)
    assert os.path.getsize(tmp_path / "big.py") > 10_000_000
    (tmp_path / "good.py").write_text(FIXABLE)
    proc = esper("--no-cache", ".", cwd=tmp_path, timeout=300)
    assert proc.returncode in (1, 2), proc.stderr
    assert "good.py:8:" in proc.stdout
    big_found = [line for line in proc.stdout.splitlines() if line.startswith("big.py:") and "ESP001" in line]
    if not big_found:  # only acceptable answer otherwise: the configured per-file time limit, reported
        assert_one_error(proc, "big.py", "time")


@pytest.mark.parametrize(
    ("pyproject", "words"),
    [
        ("[tool.esper-lint\nselect = [", ("invalid TOML",)),
        ('[tool.esper-lint]\nselect = ["ESP999"]\n', ("ESP999",)),
        ('[tool.esper-lint]\nselect = "ESP001"\n', ("select",)),
        ("[tool.esper-lint]\nsurprise = 1\n", ("surprise",)),
        ('tool = "esper-lint"\n', ("tool",)),
        ("[tool.esper-lint]\ntimeout = nan\n", ("timeout",)),
        ("[tool.esper-lint]\ntimeout = -1\n", ("timeout",)),
        ('[tool.esper-lint]\ncache-dir = "a\\u0000b"\n', ("cache-dir",)),
        ("[tool.esper-lint]\nx = " + "[" * 5000 + "]" * 5000 + "\n", ("pyproject.toml",)),
    ],
)
def test_bad_configuration(tmp_path: Path, pyproject: str, words: tuple[str, ...]) -> None:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "good.py").write_text(FIXABLE)
    proc = esper("--fix", "--no-cache", ".", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pyproject.toml" in lines[0], proc.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert (tmp_path / "good.py").read_text() == FIXABLE, "nothing is fixed under a configuration that failed"


def test_undecodable_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.esper-lint]\n# \xff\xfe\n")
    proc = esper("--no-cache", ".", cwd=tmp_path)
    assert proc.returncode == 2 and "pyproject.toml" in proc.stderr and "UTF-8" in proc.stderr


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select"])
def test_unknown_rule_codes(tmp_path: Path, option: str) -> None:
    (tmp_path / "good.py").write_text(FIXABLE)
    proc = esper(option, "ESP001,NOPE42", "--fix", "--no-cache", ".", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "NOPE42" in proc.stderr and option in proc.stderr
    assert (tmp_path / "good.py").read_text() == FIXABLE


def test_file_changed_between_read_and_write(tmp_path: Path) -> None:
    """An editor saves while --fix works: the new contents win, and the run says the fix was not written."""
    (tmp_path / "pyproject.toml").write_text("[tool.esper-lint]\n")
    (tmp_path / "edited.py").write_text(FIXABLE)
    (tmp_path / "good.py").write_text(FIXABLE)
    # Simulate the race deterministically: rewrite the file the moment the fixer reads it for the last time.
    hook = tmp_path / "sitecustomize.py"
    hook.write_text(
        "import builtins, os\n"
        "_open = builtins.open\n"
        "_reads = {}\n"
        "def _patched(file, mode='r', *a, **k):\n"
        "    if str(file).endswith('edited.py') and 'r' in mode and 'b' in mode:\n"
        "        _reads[file] = _reads.get(file, 0) + 1\n"
        "        if _reads[file] == 2:\n"
        "            with _open(file, 'w') as fh:\n"
        "                fh.write('# saved by an editor\\n')\n"
        "    return _open(file, mode, *a, **k)\n"
        "builtins.open = _patched\n"
    )
    proc = esper("--fix", "--no-cache", ".", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert (tmp_path / "edited.py").read_text() == "# saved by an editor\n"
    assert_one_error(proc, "edited.py", "changed")
    assert_fixed(tmp_path / "good.py")
