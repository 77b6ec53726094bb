"""Does `esper-lint --fix` change which tests a repository's suite collects? (issue 11, "Done when")

    python scripts/fix_collection_check.py SRC [--tests test] [--python /path/to/venv/bin/python]
        [--esper-lint esper-lint] [--work /tmp/esper-collect]

SRC is a repository on disk, for instance a snapshot extracted with
`git --git-dir=<mirror> archive HEAD | tar -x -C SRC`. The script copies SRC into the work folder,
runs `pytest --collect-only -q` there (with PYTHONPATH set to the copy, the way the repository's
own CI imports its package), runs `esper-lint --fix .` over the copy, collects again, and compares:
the collected test ids, the files that failed to collect, and each collection error's exception line
(`E   ModuleNotFoundError: ...`: a module that cannot import must fail the same way after the fix).
It also lists each fixed file's longest changed line against the repository's configured line length.
Exit status 0 when both collections match, 1 when they differ. Nothing here needs network access.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # esper-lint's core dependency on 3.10
    import tomli as tomllib

_ERROR_FILE = re.compile(r"^ERROR (\S+)")
_EXCEPTION = re.compile(r"^E\s+(\w+(?:Error|Exception)\b.*)$")
_COLLECTING = re.compile(r"^_+ ERROR collecting (\S+) _+$")


@dataclass
class Collection:
    ids: list[str] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)  # file -> its exception lines
    summary: str = ""


def collect(repo: Path, tests: str, python: str) -> Collection:
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", tests],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    result = Collection()
    current: str | None = None
    for line in done.stdout.splitlines():
        if "::" in line and not line.startswith(("E ", "ERROR")):
            result.ids.append(line.strip())
        elif (heading := _COLLECTING.match(line)) is not None:
            current = heading.group(1)
            result.errors.setdefault(current, [])
        elif (error := _EXCEPTION.match(line)) is not None and current is not None:
            result.errors[current].append(error.group(1))
        elif (listed := _ERROR_FILE.match(line)) is not None:
            result.errors.setdefault(listed.group(1), [])
        elif re.search(r"\d+ (tests? collected|errors?)", line):
            result.summary = re.sub(r" in [\d.]+s.*$", "", line.strip("=! "))
    return result


def line_length(repo: Path) -> int | None:
    """The repository's configured limit: ruff's, else black's, else flake8's."""
    pyproject = repo / "pyproject.toml"
    if pyproject.is_file():
        tool = tomllib.loads(pyproject.read_text()).get("tool", {})
        for value in (tool.get("ruff", {}).get("line-length"), tool.get("black", {}).get("line-length")):
            if isinstance(value, int):
                return value
    flake8 = repo / ".flake8"
    if flake8.is_file():
        found = re.search(r"max-line-length\s*=\s*(\d+)", flake8.read_text())
        if found:
            return int(found.group(1))
    return None


def changed_files(before: Path, after: Path) -> list[Path]:
    changed = []
    for path in sorted(after.rglob("*.py")):
        original = before / path.relative_to(after)
        if original.is_file() and original.read_bytes() != path.read_bytes():
            changed.append(path.relative_to(after))
    return changed


def long_added_lines(before: Path, after: Path, files: list[Path], limit: int) -> list[str]:
    """Lines the fix added beyond the limit (where the original line was within it)."""
    found = []
    for rel in files:
        old = (before / rel).read_text(encoding="utf-8", errors="replace").splitlines()
        new = (after / rel).read_text(encoding="utf-8", errors="replace").splitlines()
        longest_old = max((len(line) for line in old), default=0)
        for line in difflib.unified_diff(old, new, lineterm="", n=0):
            if line.startswith("+") and not line.startswith("+++") and len(line) - 1 > limit:
                note = " (the file already had lines this long)" if longest_old > limit else ""
                found.append(f"{rel}: {len(line) - 1} characters{note}: {line[1:].strip()[:80]}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("--tests", default=".", help="what to collect, relative to the repository")
    parser.add_argument("--python", default=sys.executable, help="interpreter that has pytest and the deps")
    parser.add_argument("--esper-lint", default=shutil.which("esper-lint") or "esper-lint")
    parser.add_argument("--work", type=Path, default=Path("/tmp/esper-collect"))
    args = parser.parse_args()
    original = args.work / f"{args.src.name}-original"
    fixed = args.work / f"{args.src.name}-fixed"
    for folder in (original, fixed):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(args.src, folder, symlinks=True)

    before = collect(fixed, args.tests, args.python)
    fix = subprocess.run([args.esper_lint, "--fix", "."], cwd=fixed, capture_output=True, text=True)
    after = collect(fixed, args.tests, args.python)
    files = changed_files(original, fixed)

    print(f"before: {before.summary}")
    print(f"after:  {after.summary}")
    print(f"esper-lint --fix: exit {fix.returncode}, {len(files)} files changed")
    for rel in files:
        print(f"  fixed {rel}")
    limit = line_length(original)
    if limit is not None:
        long = long_added_lines(original, fixed, files, limit)
        print(f"added lines over the configured {limit} characters: {len(long)}")
        for note in long:
            print(f"  {note}")
    same = before.ids == after.ids and before.errors == after.errors
    if not same:
        for line in difflib.unified_diff(before.ids, after.ids, "before", "after", lineterm=""):
            print(line)
        for path in sorted(set(before.errors) | set(after.errors)):
            if before.errors.get(path) != after.errors.get(path):
                print(f"collection error differs: {path}: {before.errors.get(path)} -> {after.errors.get(path)}")
    print(
        f"{'SAME' if same else 'DIFFERENT'}: {len(before.ids)} ids and {len(before.errors)} collection errors "
        f"before, {len(after.ids)} and {len(after.errors)} after"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
