"""Where a mistake is: the mask/score function's definition (its code object) and the call site (the first
stack frame outside torch and esper-lint)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from .records import Location

_ESPER_DIR = str(Path(__file__).resolve().parent.parent)
_CWD = os.getcwd()


@functools.cache
def _skipped_dirs() -> tuple[str, ...]:
    dirs = [_ESPER_DIR + os.sep]
    torch = sys.modules.get("torch")
    torch_file: str | None = getattr(torch, "__file__", None)
    if torch_file:
        dirs.append(os.path.dirname(os.path.abspath(torch_file)) + os.sep)
    return tuple(dirs)


def _is_ours_or_torch(filename: str) -> bool:
    return filename.startswith(_skipped_dirs()) or filename.startswith(("<frozen", "<string>"))


def shown_path(filename: str) -> str:
    """Relative to the directory the program started in, when under it (as the linter prints paths)."""
    try:
        relative = os.path.relpath(filename, _CWD)
    except ValueError:  # another drive (Windows)
        return filename
    return filename if relative.startswith("..") else relative


def call_site(skip: int = 1) -> Location | None:
    frame: FrameType | None = sys._getframe(skip)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_ours_or_torch(os.path.abspath(filename) if not filename.startswith("<") else filename):
            return Location(shown_path(filename), frame.f_lineno or 1, _column(frame), frame.f_code.co_name)
        frame = frame.f_back
    return None


def _column(frame: FrameType) -> int:
    positions = getattr(frame.f_code, "co_positions", None)  # Python 3.11+
    if positions is None:
        return 1
    try:
        start = list(positions())[frame.f_lasti // 2][2]
    except (IndexError, TypeError):
        return 1
    return (start or 0) + 1


def underlying_code(fn: Any) -> CodeType | None:
    """The code object that defines `fn`: through functools.partial, bound methods, callable objects and
    torch's own wrapper classes (`_MaskModWrapper.fn`)."""
    for _ in range(8):
        if isinstance(fn, functools.partial):
            fn = fn.func
            continue
        code = getattr(fn, "__code__", None)
        if isinstance(code, CodeType):
            return code
        inner = getattr(fn, "__func__", None) or getattr(fn, "fn", None)
        if inner is not None:
            fn = inner
            continue
        call = type(fn).__dict__.get("__call__") if isinstance(type(fn), type) else None
        code = getattr(call, "__code__", None)
        return code if isinstance(code, CodeType) else None
    return None


def definition(fn: Any) -> Location | None:
    code = underlying_code(fn)
    if code is None:
        return None
    return Location(
        shown_path(code.co_filename),
        code.co_firstlineno,
        1,
        code.co_qualname if hasattr(code, "co_qualname") else code.co_name,
    )


def is_torch_code(code: CodeType | None) -> bool:
    if code is None:
        return False
    dirs = _skipped_dirs()
    return len(dirs) > 1 and os.path.abspath(code.co_filename).startswith(dirs[1])


def components(fn: Any) -> list[Any]:
    """The user functions inside torch's `and_masks`/`or_masks` composites (their closure holds `mask_mods`);
    `[fn]` for anything else."""
    code = underlying_code(fn)
    if not is_torch_code(code) or code is None or "mask_mods" not in code.co_freevars:
        return [fn]
    cell = fn.__closure__[code.co_freevars.index("mask_mods")]
    found: list[Any] = []
    for part in cell.cell_contents:
        found.extend(components(part))
    return found


def captured_numbers(fn: Any) -> dict[str, Any]:
    """The Python numbers a function reads from its closure or its module (dynamo bakes each value into the
    graph it compiles)."""
    code = underlying_code(fn)
    if code is None:
        return {}
    found: dict[str, Any] = {}
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[name] = value
    namespace = getattr(fn, "__globals__", None) or {}
    for name in code.co_names:
        value = namespace.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[name] = value
    return found
