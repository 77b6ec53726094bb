"""Writing a fixed file: atomically, keeping its mode bits, and never over a change made since it was read.

The new bytes go to a temporary file in the same folder (same file system), which gets the original's
permission bits and is then renamed over the original: a crash leaves either the old or the new file,
never half of one. Just before the rename the file is read again; if its bytes differ from what was
fixed (an editor saved meanwhile), nothing is written.

Not written, each with a message saying why: symbolic links (the target may lie outside the tree being
linted; fix the target itself), read-only files, files changed on disk since they were read.
Known limits: a file with several hard links is replaced by a new file under this name (the other
names keep the old contents), and owner/group are those of the user running esper-lint.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

from ..core.findings import FileError
from ..core.interrupts import interrupts_deferred


class WriteRefused(Exception):
    def __init__(self, error: FileError) -> None:
        super().__init__(str(error))
        self.error = error


def _refuse(path: str, message: str) -> WriteRefused:
    return WriteRefused(FileError(path, message, kind="fix-error"))


def check_writable(path: str) -> os.stat_result:
    """The file's status when it may be replaced; WriteRefused (with the reason) otherwise."""
    if os.path.islink(path):
        raise _refuse(
            path,
            "is a symbolic link; --fix does not write through links (the target may be outside the tree). "
            "Run --fix on the target file instead.",
        )
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, "is not a regular file; --fix only rewrites regular files. Nothing was written.")
    # Root may write anything: the mode bits say whether the owner meant the file to be changed.
    if not os.access(path, os.W_OK) or not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise _refuse(path, "is read-only; the fix was not written. Make the file writable and run --fix again.")
    return st


def write_atomic(path: str, expected: bytes, new: bytes) -> None:
    """Replace `path` (whose contents must still be `expected`) by `new`; WriteRefused or OSError if not."""
    st = check_writable(path)
    directory = os.path.dirname(os.path.abspath(path))
    # Ctrl-C waits for this step: it could otherwise land between creating the temporary file and the
    # `try` that removes it.
    with interrupts_deferred():
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".esper-lint.tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(new)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            with open(path, "rb") as current:
                if current.read() != expected:
                    raise _refuse(
                        path, "changed on disk while it was being fixed; nothing was written. Run --fix again."
                    )
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
