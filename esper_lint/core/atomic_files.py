"""Reports written whole or not at all."""

from __future__ import annotations

import contextlib
import os

from .interrupts import interrupts_deferred


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write a report in UTF-8 through a temporary file renamed over `path` (folders made as needed): a
    reader never sees half of it, and Ctrl-C waits until it is written, or removed."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with interrupts_deferred():
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
