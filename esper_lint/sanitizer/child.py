"""The child side of `esper-lint sanitize -- ...`: install the checks, then run the program as Python would.

The parent starts `python -c <bootstrap> MODE TARGET ARGS...`; this module sets `sys.argv` and `sys.path[0]`
as `python script.py` / `python -m module` do, installs the checks for when the program imports torch's
flex_attention module (an import hook: torch is not imported before the program imports it), and writes
each finding, as it happens, as one JSON line to the channel file the parent reads: a crash of the
program (the compiled kernel's SIGFPE that ESP028 predicts) loses nothing already found.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import sys
import threading
from typing import Any

from .records import RuntimeFinding
from .session import STATE, Session

CHANNEL_ENV = "ESPER_SANITIZE_CHANNEL"
STRICT_ENV = "ESPER_SANITIZE_STRICT"

BOOTSTRAP = (
    "import sys\n"
    "try:\n"
    "    from esper_lint.sanitizer.child import main\n"
    "except ImportError as exc:\n"
    "    sys.stderr.write('esper-lint: error: this Python cannot import esper_lint (%s): install esper-lint there, '\n"
    "                     'or leave the interpreter out (`esper-lint sanitize -- script.py`)\\n' % exc)\n"
    "    raise SystemExit(2)\n"
    "main()\n"
)


class _Channel:
    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115  (open for the process' life)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()


def main() -> None:
    mode, target, *args = sys.argv[1:]
    channel = _Channel(os.environ[CHANNEL_ENV])
    from .install import installed_torch_version, version_problem

    version = installed_torch_version()
    problem = version_problem(version) if version is not None else None
    if problem is not None:
        channel.write({"error": problem})
        raise SystemExit(2)

    def on_finding(finding: RuntimeFinding, first: bool) -> None:
        channel.write({"finding": finding.to_dict()})

    session = Session(strict=os.environ.get(STRICT_ENV) == "1", listener=on_finding)
    STATE.sessions.append(session)
    from . import install

    install.install_on_import()
    atexit.register(_flush_counts)
    channel.write({"started": True})
    if mode == "module":
        sys.argv = [target, *args]
        sys.path[0] = os.getcwd()
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [target, *args]
        sys.path[0] = os.path.dirname(os.path.abspath(target))
        runpy.run_path(target, run_name="__main__")


def _flush_counts() -> None:
    calls = sys.modules.get("esper_lint.sanitizer.calls")
    if calls is not None:
        calls.flush()
