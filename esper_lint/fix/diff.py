"""`--diff`: a unified diff of a file before and after its fixes, in the file's own encoding."""

from __future__ import annotations

import io

from ..core.decoding import declared_encoding


def unified_diff(path: str, old: bytes, new: bytes) -> str:
    """`--- a/path` / `+++ b/path` unified diff of two versions of a source file (as `ruff --diff`)."""
    import difflib  # only --diff needs it; checking imports this package for FIXABLE_CODES

    display = path.replace("\\", "/").lstrip("/")
    lines = difflib.unified_diff(
        _diff_lines(old), _diff_lines(new), fromfile=f"a/{display}", tofile=f"b/{display}", lineterm="\n"
    )
    return "".join(lines)


def unified_diff_bytes(path: str, old: bytes, new: bytes) -> bytes:
    """`unified_diff` in the file's own encoding (its coding cookie or BOM), so `patch` applies it to the
    file as it is on disk: a latin-1 file gets a latin-1 diff, not UTF-8."""
    return unified_diff(path, old, new).encode(_diff_encoding(old), errors="backslashreplace")


def _diff_encoding(source: bytes) -> str:
    """The encoding Python reads the file in (BOM, coding cookie, else UTF-8), without the BOM itself
    (difflib's lines carry it already)."""
    try:
        encoding = declared_encoding(source)
        source.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return "utf-8"
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _diff_lines(source: bytes) -> list[str]:
    """Decode as Python would (BOM, coding cookie, else UTF-8); lines keep their own endings."""
    try:
        text = source.decode(declared_encoding(source))
    except (LookupError, UnicodeDecodeError):
        text = source.decode("utf-8", errors="replace")
    lines = io.StringIO(text, newline="").readlines()  # splits at \n, \r\n and \r only, as Python does
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines
