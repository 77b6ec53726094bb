"""`# noqa` suppressions: `# noqa` silences every finding on its line, `# noqa: ESP001,ESP004` those codes;
`# esper-lint: noqa` anywhere in a file silences the whole file, `# esper-lint: noqa: ESP001` those codes in it
(ruff's `# ruff: noqa`). `--add-noqa` writes line suppressions for the findings of a run (`add_noqa`).

Only a real comment suppresses: a `# noqa` inside a string is text. The tokenizer knows comments from
strings, but tokenizing a file costs more than analysing it, so a checked file (parsed already) asks the
syntax tree instead, for just the lines that spell `noqa` (`noqa_at`, `file_noqa`): on such a line the comment
starts at the first `#` outside every string literal on that line. Where the tree cannot tell (the `#` lies
inside a string spanning several lines: a triple-quoted string, an f-string, or implicitly concatenated parts
with a comment between them) the tokenizer decides, on the top-level statement holding the line.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from collections.abc import Iterable, Iterator

from .span import first_line


@functools.cache
def noqa_pattern() -> re.Pattern[str]:
    """Like ruff/flake8: bare, with one code or several (comma or space separated), any case, any spacing
    after the colon. Compiled on first use: most files spell no `noqa`, and compiling costs start-up."""
    return re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)


@functools.cache
def _file_noqa_pattern() -> re.Pattern[str]:
    return re.compile(
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


def noqa_at(text: str, lines: Iterable[int], tree: ast.Module | None = None) -> NoqaMap:
    """`noqa_lines(text)` for just `lines`; `tree` (`ast.parse(text)`) spares tokenizing the file."""
    source = SourceLines(text, tree)
    wanted = [n for n in lines if "noqa" in source.line(n).lower()]
    result: NoqaMap = {}
    if not wanted:
        return result
    if source.tree is None:
        everything = noqa_lines(text)
        return {n: everything[n] for n in wanted if n in everything}
    for number in wanted:
        comment = source.comment(number)
        if comment is not None:
            _record(result, number, comment)
    return result


def file_noqa(text: str, tree: ast.Module | None = None) -> frozenset[str] | None:
    """Codes a `# esper-lint: noqa[: CODES]` comment silences in the whole file: None for none, `ALL_CODES`
    when a bare one silences every code. `tree` (`ast.parse(text)`) spares tokenizing the file."""
    if "esper-lint" not in text.lower():
        return None
    codes: set[str] = set()
    found = False
    for comment in _file_noqa_comments(text, tree):
        match = _file_noqa_pattern().search(comment)
        if match is None:
            continue
        if match.group("codes") is None:
            return ALL_CODES
        found = True
        codes.update(_split_codes(match.group("codes")))
    return frozenset(codes) if found else None


ALL_CODES = frozenset({"*"})  # file_noqa's answer for a bare `# esper-lint: noqa`


def _file_noqa_comments(text: str, tree: ast.Module | None) -> Iterator[str]:
    """The comments that may hold a `# esper-lint: noqa`: those on lines where the pattern matches at all
    (a match in a comment is a match in the text: the pattern spans no `#` but its first), or all of them."""
    source = SourceLines(text, tree)
    if source.tree is None:
        yield from (comment for _, comment in _comments(text))
        return
    numbers = {text.count("\n", 0, match.start()) + 1 for match in _file_noqa_pattern().finditer(text)}
    for number in sorted(numbers):
        comment = source.comment(number)
        if comment is not None:
            yield comment


class SourceLines:
    """Finds the comment on a line from the syntax tree, tokenizing only where the tree cannot tell."""

    def __init__(self, text: str, tree: ast.Module | None) -> None:
        self.text = text
        # ast and the tokenizer number lines alike, by "\n" (a "\r\n" ends in one); a lone "\r" also ends a
        # line for ast but not for the tokenizer as `_comments` runs it: leave such a file to the tokenizer.
        lone_cr = "\r" in text and text.count("\r") != text.count("\r\n")
        self.tree = None if lone_cr else tree
        self.lines = text.split("\n")
        self._tokenized: dict[int, str] = {}  # line -> its comment ("" for none), where the tokenizer ran

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""

    def comment(self, number: int) -> str | None:
        """The text of the comment on line `number`, from its `#` to the end of the line; None for none."""
        assert self.tree is not None
        encoded = self.line(number).encode("utf-8", "surrogatepass")  # ast columns count UTF-8 bytes
        strings = _string_spans(self.tree, number)
        at = encoded.find(b"#")
        while at != -1:
            inside = _inside(strings, number, at)
            if inside is None:
                return self._tokenizer_comment(number)
            if not inside:
                return encoded[at:].decode("utf-8", "surrogatepass").rstrip("\r")
            at = encoded.find(b"#", at + 1)
        return None

    def in_code(self, number: int, column: int) -> bool | None:
        """Is column `column` of line `number` program text, not inside a string literal or a comment? None
        when the tree cannot tell (inside an f-string, whose replacement fields are code). Columns count
        UTF-8 bytes, as ast does. Inside a plain string literal's span there is only string text, or
        whitespace and comments between implicitly concatenated parts: never code."""
        if self.tree is None:
            return None  # a lone "\r" ends lines for ast, not for a split at "\n": the lines do not match
        literals = _literal_spans(self.tree, number)
        for span, plain in literals:
            if _covers(span, number, column):
                return False if plain else None
        line = self.line(number).encode("utf-8", "surrogatepass")
        at = line.find(b"#")
        while at != -1 and at < column:  # the first `#` outside every literal starts a comment
            if not any(_covers(span, number, at) for span, _ in literals):
                return False
            at = line.find(b"#", at + 1)
        return True

    def _tokenizer_comment(self, number: int) -> str | None:
        assert self.tree is not None
        if number not in self._tokenized:
            # A top-level statement starts at column 0, outside any bracket or string: the tokenizer reads it
            # alone as it reads it in the file.
            first, last = _statement_lines(self.tree, number) or (1, len(self.lines))
            segment = "\n".join(self.lines[first - 1 : last]) + "\n"
            for line, comment in _comments(segment):
                self._tokenized.setdefault(line + first - 1, comment)
            for line in range(first, last + 1):
                self._tokenized.setdefault(line, "")
        return self._tokenized[number] or None


def in_code(text: str, tree: ast.Module, number: int, column: int) -> bool | None:
    """`SourceLines(text, tree).in_code(number, column)`, for one question."""
    return SourceLines(text, tree).in_code(number, column)


def _literal_spans(tree: ast.Module, number: int) -> list[tuple[_Span, bool]]:
    """The string literals touching line `number`, each with whether it is a plain string (else an f-string
    or t-string, whose replacement fields are code)."""
    found: list[tuple[_Span, bool]] = []
    stack: list[ast.AST] = [tree]
    while stack:
        for child in ast.iter_child_nodes(stack.pop()):
            if isinstance(child, (ast.expr, ast.stmt)):
                start = first_line(child)
                end = child.end_lineno or child.lineno
                if end < number or start > number:
                    continue
                plain = isinstance(child, ast.Constant) and isinstance(child.value, (str, bytes))
                if plain or isinstance(child, _STRING_NODES):
                    found.append(((child.lineno, child.col_offset, end, child.end_col_offset or 0), plain))
                    continue
            stack.append(child)
    return found


def _covers(span: _Span, number: int, column: int) -> bool:
    first, start, last, end = span
    return (number > first or column >= start) and (number < last or column < end)


# f-strings (and Python 3.14's t-strings) count whole: a `#` in a replacement field is no comment either
_STRING_NODES: tuple[type[ast.expr], ...] = (ast.JoinedStr, *([ast.TemplateStr] if hasattr(ast, "TemplateStr") else []))

# (first line, first column, last line, end column) of a string literal; columns in UTF-8 bytes, as ast counts
_Span = tuple[int, int, int, int]


def _string_spans(tree: ast.Module, number: int) -> list[_Span]:
    """The string literals (f-strings whole) on line `number`: a walk that enters only nodes spanning it."""
    return [span for span, _ in _literal_spans(tree, number)]


def _inside(spans: list[_Span], number: int, column: int) -> bool | None:
    """Whether the `#` at `column` of line `number` is string text; None when the tree cannot tell."""
    answer = False
    for first, start, last, end in spans:
        if first == last:
            answer = answer or start <= column < end
        elif last == number:
            # A comment runs to the end of its line, so a `#` before the literal's end there is text.
            answer = answer or column < end
        elif first != number or column >= start:
            return None  # inside a literal spanning lines: text, or a comment between concatenated parts
    return answer


def _statement_lines(tree: ast.Module, number: int) -> tuple[int, int] | None:
    """First and last line of the top-level statement holding line `number`, widened by the statements that
    share a line with it (`x = 1; y = (...`); None if none holds it."""
    ranges = [(first_line(stmt), stmt.end_lineno or stmt.lineno) for stmt in tree.body]
    at = next((i for i, (start, end) in enumerate(ranges) if start <= number <= end), None)
    if at is None:
        return None
    first, last = ranges[at]
    before, after = at, at
    while before > 0 and ranges[before - 1][1] >= first:
        before -= 1
        first = min(first, ranges[before][0])
    while after + 1 < len(ranges) and ranges[after + 1][0] <= last:
        after += 1
        last = max(last, ranges[after][1])
    return first, last


def _split_codes(codes: str) -> list[str]:
    return [c.upper() for c in re.split(r"[\s,]+", codes) if c]


def _record(result: NoqaMap, line: int, comment: str) -> None:
    match = noqa_pattern().search(comment)
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
        match = noqa_pattern().search(comment) if comment is not None else None
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
