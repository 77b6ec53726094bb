"""The language server in a real editor: headless Neovim applies esper-lint's quick fixes to every fixture.

Needs Neovim 0.7 or later (`apt-get install -y neovim`); without it the test is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RunCli

pytest.importorskip("pygls", reason="the language server needs the [server] extra: pip install 'esper-lint[server]'")

HERE = Path(__file__).resolve().parent
FIX_INPUTS = sorted((HERE.parent / "fixtures" / "fix").glob("*.in.py"))
NVIM = shutil.which("nvim")


@pytest.mark.skipif(NVIM is None, reason="Neovim is not installed (CI: apt-get install -y neovim)")
def test_neovim_quick_fixes_write_what_cli_fix_writes(tmp_path: Path, run_cli: RunCli) -> None:
    editor, cli = tmp_path / "editor", tmp_path / "cli"
    editor.mkdir()
    cli.mkdir()
    names = [fixture.name.replace(".in.py", ".py") for fixture in FIX_INPUTS]
    for fixture, name in zip(FIX_INPUTS, names, strict=True):
        shutil.copyfile(fixture, editor / name)
        shutil.copyfile(fixture, cli / name)
    run_cli("--fix", "--no-cache", ".", cwd=cli)

    report = tmp_path / "report.txt"
    env = {
        **os.environ,
        "ESPER_PYTHON": sys.executable,
        "ESPER_FILES": "\n".join(str(editor / name) for name in names),
        "ESPER_REPORT": str(report),
    }
    assert NVIM is not None
    completed = subprocess.run(
        [NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {HERE / 'test_server_nvim.lua'}"],
        cwd=editor,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = report.read_text().splitlines() if report.exists() else []
    assert completed.returncode == 0, (lines, completed.stdout[-2000:], completed.stderr[-2000:])
    applied = {line.split()[1]: int(line.split()[2]) for line in lines if line.startswith("ok ")}
    assert sorted(applied) == sorted(str(editor / name) for name in names)

    changed = 0
    for fixture, name in zip(FIX_INPUTS, names, strict=True):
        expected = (cli / name).read_bytes()
        assert (editor / name).read_bytes() == expected, name
        # A file the CLI changed took at least one quick fix in the editor, and one it left alone took none.
        assert (applied[str(editor / name)] > 0) == (expected != fixture.read_bytes()), name
        changed += expected != fixture.read_bytes()
    assert changed >= 10
