"""Runs the behaviour programs of tests/behaviour/edits in one interpreter, so torch is imported once.

Reads `[{"key": ..., "name": ..., "source": ...}, ...]` as JSON on stdin; runs each source in a fresh module
namespace with its stdout captured (warnings ignored: removing the one it reports is what ESP010's fix is
for); writes `{key: {"stdout": ..., "error": "Type: message" or null}}` as JSON. Between programs it resets
dynamo, restores `torch._dynamo.config.disable`, and forgets the modules a program imported from this folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def run(name: str, source: str) -> dict[str, Any]:
    module = types.ModuleType(name.removesuffix(".py"))
    module.__file__ = str(HERE / name)
    known = set(sys.modules)
    disabled = torch._dynamo.config.disable
    out = io.StringIO()
    error = None
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(source, name, "exec", dont_inherit=True), module.__dict__)
    except BaseException as exc:  # the program's own failure is part of its behaviour
        error = f"{type(exc).__name__}: {exc}"
    finally:
        torch._dynamo.config.disable = disabled
        torch._dynamo.reset()
        for extra in set(sys.modules) - known:
            if str(getattr(sys.modules[extra], "__file__", "") or "").startswith(str(HERE)):
                del sys.modules[extra]
    return {"stdout": out.getvalue(), "error": error}


def main() -> None:
    programs = json.load(sys.stdin)
    json.dump({p["key"]: run(p["name"], p["source"]) for p in programs}, sys.stdout)


if __name__ == "__main__":
    main()
