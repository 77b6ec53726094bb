"""`# noqa` suppressions: `# noqa` silences every finding on its line, `# noqa: ESP001,ESP004` those codes.

Comments are found with the tokenizer, so a `# noqa` inside a string is not a suppression.
"""

from __future__ import annotations

import io
import re
import tokenize

# Like ruff/flake8: bare, with one code or several (comma or space separated), any case, any spacing after the colon.
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)

# line -> None (all codes) or the set of codes suppressed on that line
NoqaMap = dict[int, "frozenset[str] | None"]


def noqa_lines(text: str) -> NoqaMap:
    result: NoqaMap = {}
    if "noqa" not in text.lower():
        return result
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                _record(result, tok.start[0], tok.string)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # The file parsed with LibCST but not the tokenizer (rare): fall back to plain comments.
        for number, line in enumerate(text.splitlines(), start=1):
            if "#" in line:
                _record(result, number, line[line.index("#") :])
    return result


def _record(result: NoqaMap, line: int, comment: str) -> None:
    match = _NOQA.search(comment)
    if match is None:
        return
    codes = match.group("codes")
    if codes is None:
        result[line] = None
        return
    new = frozenset(c.upper() for c in re.split(r"[\s,]+", codes) if c)
    old = result.get(line, frozenset())
    result[line] = None if old is None and line in result else (old or frozenset()) | new


def suppressed(noqa: NoqaMap, line: int, code: str) -> bool:
    if line not in noqa:
        return False
    codes = noqa[line]
    return codes is None or code in codes
