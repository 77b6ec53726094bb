"""Source bytes to text as Python reads them (BOM, `# coding:` cookie, else UTF-8), or the reason not."""

from __future__ import annotations

import codecs
import io
import tokenize

from .findings import FileError


class SourceError(Exception):
    def __init__(self, error: FileError) -> None:
        super().__init__(str(error))
        self.error = error


NOT_CHECKED = "the file was not checked"


def check_decodable(source: bytes, path: str) -> str:
    """Decode as Python would (BOM, coding cookie, else UTF-8); a clear error otherwise."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError as exc:
        raise SourceError(_encoding_error(source, path, str(exc.msg or exc))) from None
    try:
        codecs.lookup(encoding)
        return source.decode(encoding)
    except LookupError:
        message = f"unknown encoding {encoding!r} in the coding declaration; {NOT_CHECKED}: fix the `# coding:` line"
        raise SourceError(FileError(path, message, kind="decode-error")) from None
    except UnicodeDecodeError as exc:
        raise SourceError(_undecodable(source, path, encoding, exc)) from None


def _undecodable(source: bytes, path: str, encoding: str, exc: UnicodeDecodeError) -> FileError:
    line = source[: exc.start].count(b"\n") + 1
    column = exc.start - (source.rfind(b"\n", 0, exc.start) + 1) + 1
    message = (
        f"not valid {encoding} (byte {source[exc.start : exc.start + 1]!r}: {exc.reason}); {NOT_CHECKED}: "
        "save it in that encoding or declare the right one with a `# coding:` line"
    )
    return FileError(path, message, line, column, "decode-error")


def _encoding_error(source: bytes, path: str, reason: str) -> FileError:
    """tokenize's reasons are terse; say which of the usual causes it is and what to do."""
    if reason.startswith("unknown encoding"):
        name = reason.partition(":")[2].strip()
        message = f"unknown encoding {name!r} in the coding declaration; {NOT_CHECKED}: fix the `# coding:` line"
        return FileError(path, message, kind="decode-error")
    if reason.startswith("encoding problem"):
        message = f"starts with a UTF-8 byte-order mark but declares another encoding; {NOT_CHECKED}: remove one"
        return FileError(path, message, kind="decode-error")
    # "invalid or missing encoding declaration": the first two lines are not UTF-8 and declare nothing.
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _undecodable(source, path, "utf-8", exc)
    return FileError(path, f"{reason}; {NOT_CHECKED}", kind="decode-error")


def declared_encoding(source: bytes) -> str:
    """The encoding Python reads `source` in (BOM, coding cookie, else UTF-8): a fix is written back in it.
    An unusable cookie gives UTF-8: such a file is never decoded, so never fixed either."""
    try:
        return tokenize.detect_encoding(io.BytesIO(source).readline)[0]
    except SyntaxError:
        return "utf-8"
