"""`esper-lint sanitize [--strict] [--report FILE] -- python train.py ARGS` (or `-- -m package.module ARGS`).

The program runs in a child interpreter (child.py), not in this process: it gets a clean `sys.argv`,
`sys.modules` and `__main__` as under plain `python`, the checks are installed before it imports torch's
flex_attention module, and a crash of the program (the SIGFPE or segfault of a compiled kernel that
ESP028 predicts) still leaves this process to print what was found and write the report. Torch-free.

Exit status: the program's (a signal N as 128+N, as shells say it); under --strict, 1 when the program
exited 0 but something (hints aside) was found; 2 when the program could not be started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, TextIO

from .child import BOOTSTRAP, CHANNEL_ENV, STRICT_ENV
from .records import RuntimeFinding, fails_strict, summary_line

EXIT_USAGE = 2
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?(\.exe)?$")


class UsageError(Exception):
    pass


def plan(argv: list[str]) -> tuple[list[str], str, str, list[str]]:
    """(interpreter and its options, "script"/"module", target, program arguments) from what follows `--`."""
    if not argv:
        raise UsageError("nothing to run: `esper-lint sanitize -- python train.py ARGS` or `-- -m package.module ARGS`")
    interpreter = [sys.executable]
    rest = list(argv)
    if _PYTHON.match(os.path.basename(rest[0])):
        found = shutil.which(rest[0])
        if found is None:
            raise UsageError(f"no such interpreter: {rest[0]}")
        interpreter = [found]
        rest = rest[1:]
        while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c", "-"):
            option = rest.pop(0)
            interpreter.append(option)
            if option in ("-W", "-X") and rest:  # options with a separate value
                interpreter.append(rest.pop(0))
    if not rest:
        raise UsageError("nothing to run after the interpreter: give a script or `-m package.module`")
    if rest[0] == "-c":
        raise UsageError("`-c CODE` is not supported: put the code in a file, or use `-m package.module`")
    if rest[0] == "-m":
        if len(rest) < 2:
            raise UsageError("`-m` needs a module name")
        return interpreter, "module", rest[1], rest[2:]
    script = rest[0]
    if not os.path.isfile(script):
        raise UsageError(f"no such file: {script}")
    return interpreter, "script", script, rest[1:]


class _Reader:
    """Reads the child's channel file as it grows."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.started = False
        self.error: str | None = None
        self.findings: dict[tuple[str, str, str], RuntimeFinding] = {}

    def poll(self, on_new: Callable[[RuntimeFinding], None]) -> None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind("\n") + 1]  # a line still being written waits for the next poll
        self.offset += len(complete.encode("utf-8"))
        for line in complete.splitlines():
            try:
                record: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if "started" in record:
                self.started = True
            elif "error" in record:
                self.error = str(record["error"])
            elif "finding" in record:
                finding = RuntimeFinding.from_dict(record["finding"])
                new = finding.key not in self.findings
                self.findings[finding.key] = finding
                if new:
                    on_new(finding)


def run(argv: list[str], strict: bool, report: str | None, err: TextIO | None = None) -> int:
    err = err or sys.stderr
    interpreter, mode, target, args = plan(argv)
    with tempfile.TemporaryDirectory(prefix="esper-sanitize-") as tmp:
        channel = os.path.join(tmp, "channel.jsonl")
        open(channel, "w").close()
        env = dict(os.environ, **{CHANNEL_ENV: channel, STRICT_ENV: "1" if strict else "0"})
        reader = _Reader(channel)

        def show(finding: RuntimeFinding) -> None:
            err.write(finding.render() + "\n")
            err.flush()

        # Ctrl-C reaches the program too (same process group): wait for it to finish its own way, then report.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            try:
                child = subprocess.Popen([*interpreter, "-c", BOOTSTRAP, mode, target, *args], env=env)
            except OSError as exc:
                raise UsageError(f"could not start {interpreter[0]}: {exc.strerror or exc}") from None
            while child.poll() is None:
                reader.poll(show)
                time.sleep(0.1)
            reader.poll(show)
        finally:
            signal.signal(signal.SIGINT, previous)
    if reader.error is not None:
        raise UsageError(reader.error)
    status = child.returncode
    if status < 0:
        status = 128 - status
    findings = list(reader.findings.values())
    if reader.started:  # each finding was shown as it came; the summary gives the final counts
        err.write(_summary(findings) + "\n")
    if report is not None:
        _write_report(report, findings)
    if strict and status == 0 and fails_strict(findings):
        return 1
    return status


def _summary(findings: list[RuntimeFinding]) -> str:
    lines = [summary_line(findings)]
    for finding in findings:
        count = f" ({finding.evidence['calls']} calls)" if "calls" in finding.evidence else ""
        count = count or (f" (x{finding.count})" if finding.count > 1 else "")
        lines.append(f"  {finding.code} {finding.where}{count}")
    return "\n".join(lines)


def _write_report(path: str, findings: list[RuntimeFinding]) -> None:
    from ..core.atomic_files import write_text_atomic

    write_text_atomic(path, json.dumps([f.to_dict() for f in findings], indent=2) + "\n")
