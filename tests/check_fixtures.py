"""Run the real `esper-lint` command on fixtures/lint and compare with the `.expected` files beside them.

Usage: python tests/check_fixtures.py   (exit 0: all match; 1: a unified diff of what differs; 2: could not run)
The expectation format is described in fixtures/lint/README.md.
"""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "lint"


def read_expected(path: Path) -> list[str]:
    """The `LINE:COL: CODE` lines of one `.expected` file (comments and blank lines dropped)."""
    lines = (raw.strip() for raw in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def esper_lint_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m esper_lint`."""
    script = Path(sys.executable).with_name("esper-lint")
    if script.exists():
        return [str(script)]
    found = shutil.which("esper-lint")
    return [found] if found else [sys.executable, "-m", "esper_lint"]


def actual_by_file() -> dict[str, list[str]]:
    """Findings of one CLI run over the whole folder, grouped by fixture file name."""
    command = [
        *esper_lint_command(),
        "--config",
        str(FIXTURES / "esper-lint.toml"),
        "--output-format",
        "json",
        "--exit-zero",
        "--no-cache",
        str(FIXTURES),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {proc.returncode}:\n{proc.stderr}")
    found: dict[str, list[str]] = defaultdict(list)
    for finding in json.loads(proc.stdout):
        found[Path(finding["path"]).name].append(f"{finding['line']}:{finding['column']}: {finding['code']}")
    return found


def main() -> int:
    fixtures = sorted(FIXTURES.glob("*.py"))
    if not fixtures:
        print(f"no fixtures found in {FIXTURES}", file=sys.stderr)
        return 2
    try:
        actual = actual_by_file()
    except (RuntimeError, OSError, json.JSONDecodeError) as exc:
        print(f"check_fixtures: cannot run esper-lint: {exc}", file=sys.stderr)
        return 2
    failures = 0
    for fixture in fixtures:
        expected_file = fixture.with_suffix(".expected")
        if not expected_file.exists():
            print(f"{fixture.relative_to(ROOT)}: no {expected_file.name} beside it; add one (empty: no findings)")
            failures += 1
            continue
        expected = read_expected(expected_file)
        got = actual.get(fixture.name, [])
        if got != expected:
            failures += 1
            rel = expected_file.relative_to(ROOT)
            diff = difflib.unified_diff(
                [f"{line}\n" for line in expected],
                [f"{line}\n" for line in got],
                fromfile=f"{rel} (expected)",
                tofile=f"{fixture.relative_to(ROOT)} (esper-lint)",
            )
            sys.stdout.writelines(diff)
    if failures:
        print(f"{failures} of {len(fixtures)} fixtures differ from their expectations.")
        return 1
    print(f"All {len(fixtures)} fixtures match their expectations.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
