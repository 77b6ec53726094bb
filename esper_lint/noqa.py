"""`# noqa` suppressions: `# noqa` silences every finding on its line, `# noqa: ESP001,ESP004` those codes;
`# esper-lint: noqa` anywhere in a file silences the whole file, `# esper-lint: noqa: ESP001` those codes in it
(ruff's `# ruff: noqa`). `--add-noqa` writes line suppressions for the findings of a run (`add_noqa`).

Comments are found with the tokenizer, so a `# noqa` inside a string is not a suppression.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator

# Like ruff/flake8: bare, with one code or several (comma or space separated), any case, any spacing after the colon.
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)

_FILE_NOQA = re.compile(
    r"#\s*esper-lint\s*:\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)

# line -> None (all codes) or the set of codes suppressed on that line
NoqaMap = dict[int, "frozenset[str] | None"]


def _comments(text: str) -> Iterator[tuple[int, str]]:
    """(line, comment text) for each comment, in order."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                yield tok.start[0], tok.string
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # The file parsed with LibCST but not the tokenizer (rare): fall back to plain comments.
        for number, line in enumerate(text.splitlines(), start=1):
            if "#" in line:
                yield number, line[line.index("#") :]


def noqa_lines(text: str) -> NoqaMap:
    result: NoqaMap = {}
    if "noqa" not in text.lower():
        return result
    for line, comment in _comments(text):
        _record(result, line, comment)
    return result


def file_noqa(text: str) -> frozenset[str] | None:
    """Codes a `# esper-lint: noqa[: CODES]` comment silences in the whole file: None for none, `ALL_CODES`
    when a bare one silences every code."""
    if "esper-lint" not in text.lower():
        return None
    codes: set[str] = set()
    found = False
    for _, comment in _comments(text):
        match = _FILE_NOQA.search(comment)
        if match is None:
            continue
        if match.group("codes") is None:
            return ALL_CODES
        found = True
        codes.update(_split_codes(match.group("codes")))
    return frozenset(codes) if found else None


ALL_CODES = frozenset({"*"})  # file_noqa's answer for a bare `# esper-lint: noqa`


def _split_codes(codes: str) -> list[str]:
    return [c.upper() for c in re.split(r"[\s,]+", codes) if c]


def _record(result: NoqaMap, line: int, comment: str) -> None:
    match = _NOQA.search(comment)
    if match is None:
        return
    codes = match.group("codes")
    if codes is None:
        result[line] = None
        return
    new = frozenset(_split_codes(codes))
    old = result.get(line, frozenset())
    result[line] = None if old is None and line in result else (old or frozenset()) | new


def suppressed(noqa: NoqaMap, line: int, code: str) -> bool:
    if line not in noqa:
        return False
    codes = noqa[line]
    return codes is None or code in codes


def file_suppressed(codes: frozenset[str] | None, code: str) -> bool:
    return codes is not None and (codes is ALL_CODES or code in codes)


def add_noqa(text: str, codes_by_line: dict[int, set[str]]) -> tuple[str, list[int]]:
    """`text` with `# noqa: CODES` on each given line, merged into a noqa comment already there; and the lines
    that cannot take a comment (they end inside a string, or continue with a backslash), left unchanged."""
    lines = io.StringIO(text, newline="").readlines()  # keeps each line's own ending
    unsafe = _lines_ending_in_a_token(text)
    existing = {line: comment for line, comment in _comments(text)}
    skipped: list[int] = []
    for number in sorted(codes_by_line):
        if not 0 < number <= len(lines) or number in unsafe:
            skipped.append(number)
            continue
        body = lines[number - 1]
        ending = body[len(body.rstrip("\r\n")) :]
        body = body[: len(body) - len(ending)]
        if body.rstrip().endswith("\\"):
            skipped.append(number)
            continue
        codes = sorted(codes_by_line[number])
        comment = existing.get(number)
        match = _NOQA.search(comment) if comment is not None else None
        if comment is not None and match is not None and match.group("codes") is not None:
            # Merge: an existing code list gains the new codes (ESP004 -> ESP004, ESP001), in place.
            start = len(body) - len(comment) + match.end("codes")
            merged = [c for c in codes if c not in _split_codes(match.group("codes"))]
            body = body[:start] + "".join(f", {c}" for c in merged) + body[start:]
        else:
            body = body.rstrip(" \t") + f"  # noqa: {', '.join(codes)}"
        lines[number - 1] = body + ending
    return "".join(lines), skipped


def _lines_ending_in_a_token(text: str) -> set[int]:
    """Lines whose end lies inside a token (a triple-quoted string, an f-string): a comment there would be text."""
    inside: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.end[0] > tok.start[0] and tok.type not in (tokenize.NL, tokenize.NEWLINE):
                inside.update(range(tok.start[0], tok.end[0]))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return set(range(1, text.count("\n") + 2))  # cannot tell: add nothing
    return inside
