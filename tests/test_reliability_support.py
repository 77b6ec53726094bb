"""Helpers shared by the reliability tests (bad input, walker, security, sweeps): run the installed CLI in a
subprocess, as a user or a commit hook would, and check the promises every run keeps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The console script: unlike `python -m`, it never puts the current folder on sys.path.
ESPER = str(Path(sys.executable).with_name("esper-lint"))

# A fixable ESP001 finding: `--fix` hoists `causal` to module level.
FIXABLE = (
    "from torch.nn.attention.flex_attention import create_block_mask\n"
    "\n"
    "\n"
    "def build(n):\n"
    "    def causal(b, h, q_idx, kv_idx):\n"
    "        return q_idx >= kv_idx\n"
    "\n"
    "    return create_block_mask(causal, None, None, n, n)\n"
)
# Mentions the API (passes the text prefilter), so the file is really parsed.
MENTION = "# create_block_mask\n"


def esper(
    *args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None, unprivileged: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run `esper-lint ARGS` in `cwd`; no cache, so runs are independent. `unprivileged`: see below."""
    proc = subprocess.run(
        [ESPER, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        preexec_fn=_drop_file_privileges if unprivileged else None,
    )
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


def _drop_file_privileges() -> None:
    """Root ignores permission bits through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH: drop both from the
    bounding set before exec, so the CLI meets permissions as any user does (CI runs tests as root)."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for cap in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop capability")


def error_lines(proc: subprocess.CompletedProcess[str], name: str) -> list[str]:
    """stderr lines naming `name` (a path as shown, relative to the run's folder)."""
    return [line for line in proc.stderr.splitlines() if line.startswith(f"{name}:") or line.startswith(f"{name} ")]


def assert_one_error(proc: subprocess.CompletedProcess[str], name: str, *words: str) -> str:
    """Exactly one clear line names `name`, says what went wrong (`words`), and the run exits 2."""
    lines = error_lines(proc, name)
    assert len(lines) == 1, proc.stderr
    assert "internal error" not in lines[0], "a known limit is not a bug: say what it is and what to do"
    assert all(w.lower() in lines[0].lower() for w in words), lines[0]
    assert len(lines[0]) > len(name) + 10, lines[0]
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under `root`: file bytes, or the target of a symlink (never followed)."""
    state: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                state[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                state[rel] = path.read_bytes()
    return state


def changed(before: dict[str, bytes | str], after: dict[str, bytes | str]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def assert_fixed(path: Path) -> None:
    """The fixable file was processed: hoisted, and still valid Python."""
    text = path.read_text()
    assert text != FIXABLE and "\ndef causal(" in text, text
    compile(text, str(path), "exec")
