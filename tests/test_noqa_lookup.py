"""`# noqa` looked up on the syntax tree (`noqa_at`, `file_noqa` with a tree) answers exactly as the tokenizer
does on the whole file (`noqa_lines`, `file_noqa` without one), for every line, over many varied sources:
`#` in strings, f-strings and triple-quoted strings, comments between implicitly concatenated parts,
backslash continuations, decorators, compound statement headers, semicolons, tabs, CRLF, non-ASCII text
before the `#`. Some of these must fall back to the tokenizer; the fallback is checked here too."""

from __future__ import annotations

import ast
import io
import random
import sys
import tokenize
import warnings

import pytest
from conftest import NESTED, lint_snippet

from esper_lint.core import noqa
from esper_lint.core.noqa import file_noqa, noqa_at, noqa_lines

# String literals that hold `#`, `noqa` or both, on one line or several.
STRINGS = [
    '"# noqa"',
    "'#'",
    '"a # noqa: ESP001"',
    "b'# noqa'",
    'rb"\\# noqa"',
    '"\\"# noqa"',
    "'é # noqa'",
    '"ü"',
    "'''# noqa'''",
    'f"{x}# noqa"',
    'f"{x!r:#>4} # noqa: ESP002"',
    "f'{\"#\"}'",
    'f"{x:{y}}#"',
    '"""\n# noqa: ESP001\n"""',
    "'''x\n  y # noqa\n'''",
    'f"""{x}\n# noqa\n"""',
    '(\n    "a # noqa"  # noqa: ESP001\n    "b"\n)',
    '(\n    "a"  # noqa: ESP002\n    f"{x} # noqa"\n)',
    '("a"  "#"  # noqa\n  "b")',
    "x",
    "1",
    "None",
]
# Python 3.12 f-strings: nested quotes of the same kind, comments inside replacement fields.
if sys.version_info >= (3, 12):
    STRINGS += ['f"{"#"}"', 'f"{x["# noqa"]}"', 'f"""{\n    x  # noqa\n}"""', 'f"{x}" f"{"#"}"  # noqa']

COMMENTS = [
    "",
    "# noqa",
    "# noqa: ESP001",
    "#noqa:ESP001,ESP002",
    "# foo # noqa: ESP002",
    "# NOQA: esp003 ESP004",
    "# not a noqa",
    "# esper-lint: noqa",
    "# esper-lint: noqa: ESP001",
    "# é # noqa",
    "# '# noqa'",
]

# Statements with holes: {s} a string above, {c} a comment above.
STATEMENTS = [
    "x = {s}  {c}",
    "x = {s}; y = {s}  {c}",
    "f({s}, key={s})  {c}",
    "x = [\n    {s},  {c}\n    {s},\n]  {c}",
    "x = {s} + \\\n    {s}  {c}",
    "if {s} == {s}:  {c}\n    pass  {c}\nelif {s}:  {c}\n    pass\nelse:  {c}\n    y = {s}  {c}",
    "@dec({s})  {c}\n@other  {c}\ndef f(a={s}, *, b: {s} = {s}) -> {s}:  {c}\n    return {s}  {c}",
    "class K({s}):  {c}\n    y = {s}  {c}\n\n    def m(self):  {c}\n\treturn {s}  {c}",
    "for x in [{s}]:  {c}\n    if x: y = {s}; z = {s}  {c}",
    "while {s}:  {c}\n    break  {c}",
    "with open({s}) as f, g({s}):  {c}\n    pass",
    "try:  {c}\n    pass\nexcept E({s}) as e:  {c}\n    pass\nfinally:  {c}\n    z = {s}",
    "match x:  {c}\n    case {s}:  {c}\n        pass\n    case [a, *_] if a == {s}:  {c}\n        pass",
    "d = {{s}: {s}}  {c}",
    "g = lambda a={s}: {s}  {c}",
    "é = {s}  {c}",
    "{c}",
    "def f():\n    {c}\n    x = {s}\n    {c}\n    return x",
    "async def f():  {c}\n    async with a({s}):  {c}\n        await g({s})  {c}",
    "assert {s}, {s}  {c}",
    "print({s}, end={s})  {c}\n\n{c}",
]


def tokenizer_comments(text: str) -> dict[int, str]:
    """The slow exact answer: each line's comment, from the tokenizer over the whole text."""
    return {
        tok.start[0]: tok.string
        for tok in tokenize.generate_tokens(io.StringIO(text).readline)
        if tok.type == tokenize.COMMENT
    }


def module(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 5)):
        statement = rng.choice(STATEMENTS)
        while "{s}" in statement or "{c}" in statement:
            statement = statement.replace("{s}", rng.choice(STRINGS), 1).replace("{c}", rng.choice(COMMENTS), 1)
        parts.append(statement)
    text = "\n".join(parts) + "\n"
    return text.replace("\n", "\r\n") if rng.random() < 0.2 else text


def assert_exact(text: str) -> None:
    tree = ast.parse(text)
    count = text.count("\n") + 2
    assert noqa_at(text, range(1, count), tree) == noqa_lines(text), text
    assert file_noqa(text, tree) == file_noqa(text), text
    source = noqa.SourceLines(text, tree)
    if source.tree is None:  # a lone "\r": the tokenizer decides, on the whole file
        return
    expected = tokenizer_comments(text)
    for number in range(1, count):
        assert source.comment(number) == expected.get(number), (number, text)


def varied_sources(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    sources: list[str] = []
    while len(sources) < count:
        text = module(rng)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                ast.parse(text)
        except (SyntaxError, SyntaxWarning):  # a hole filled with something that does not fit (`case f"{x}":`)
            continue
        sources.append(text)
    return sources


@pytest.mark.parametrize("seed", range(12))
def test_tree_lookup_matches_the_tokenizer_on_varied_sources(seed: int) -> None:
    for text in varied_sources(seed, 40):
        assert_exact(text)


@pytest.mark.parametrize(
    "text",
    [
        'x = "# noqa"  # foo # noqa: ESP001\n',
        "x = '#' ; y = 1  # noqa\n",
        's = "é # noqa"; t = 1\n',
        's = "é"  # noqa: ESP001\n',
        "if x == '#':  # noqa\n    pass\n",
        "@dec('#')  # noqa: ESP001\ndef f(): pass\n",
        'x = ("a # noqa"  # noqa: ESP002\n     "b")\n',
        'x = """\n# noqa\n"""  # noqa: ESP001\n',
        "x = 1 + \\\n    2  # noqa\n",
        "x = 1 \\\n\ny = '''\n# noqa\n'''\n",
        'x = """\n"""; y = ("a # x"  # noqa: ESP001\n "b # noqa")\n',  # the fallback starts at `x`
        'y = ("a # x"  # noqa: ESP001\n "b"); z = """\n# noqa\n"""\n',  # and ends with `z`
        'x = 1; \\\n    y = ("a # x"  # noqa: ESP001\n "b # noqa")\n',
        'y = ("a # x"  # noqa: ESP001\n "b # noqa") \\\n\nz = 1\n',
        "x = 1\r\ny = '#'  # noqa\r\n",
        "x = 1\ry = '# noqa'  # noqa: ESP001\n",  # a lone "\r": the tokenizer decides
        "if x:  # noqa\n\ty = '\t#'  # noqa: ESP001\n",
        "# esper-lint: noqa: ESP001\nx = '# esper-lint: noqa'\n",
        "x = '# esper-lint: noqa'\n",
    ],
)
def test_tree_lookup_matches_the_tokenizer_on_tricky_lines(text: str) -> None:
    assert_exact(text)


def test_a_hash_inside_a_string_spanning_lines_is_left_to_the_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback runs, on the top-level statement only, and answers right both ways."""
    segments: list[str] = []
    real = noqa._comments

    def spy(text: str) -> object:
        segments.append(text)
        return real(text)

    monkeypatch.setattr(noqa, "_comments", spy)
    text = 'a = 1\nx = (\n    "a"  # noqa: ESP001\n    "b # noqa"\n)\nb = 2\n'
    tree = ast.parse(text)
    assert noqa_at(text, {3, 4}, tree) == {3: frozenset({"ESP001"})}
    assert segments == ['x = (\n    "a"  # noqa: ESP001\n    "b # noqa"\n)\n']


def test_a_single_line_string_needs_no_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(noqa, "_comments", None)  # calling it would fail
    text = 'def f():\n    if g("# noqa") and h(f"{x:#x}"):  # noqa: ESP002\n        return 1\n'
    assert noqa_at(text, {2}, ast.parse(text)) == {2: frozenset({"ESP002"})}


def test_a_form_feed_does_not_shift_the_lines() -> None:
    """A form feed (a page break in older code) ends no line for Python: a `# noqa` below one still sits on
    its finding's line (it was looked up one line off, and the finding reported)."""
    source = NESTED.replace("n, n)\n", "n, n)  # noqa: ESP001\n")
    assert [f.code for f in lint_snippet("\x0c\n" + source)] == []
    assert [f.code for f in lint_snippet("\x0c\n" + NESTED)] == ["ESP001"]


CHECKED = """\
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    {line}
        {rest}
"""


@pytest.mark.parametrize(
    ("line", "rest", "suppressed"),
    [
        # A compound statement's header line (the whole file was tokenized for it before).
        ('if create_block_mask(causal, None, None, n, "#") is not None:  # noqa: ESP001', "return 1", True),
        ('if create_block_mask(causal, None, None, n, "# noqa: ESP001") is not None:', "return 1", False),
        # A `#` inside a string spanning lines: the tokenizer decides.
        ('mask = create_block_mask(causal, None, ("a"  # noqa: ESP001', '"b"), n, n)', True),
        ('mask = create_block_mask(causal, None, ("a # noqa: ESP001"', '"b"), n, n)', False),
        ('mask = create_block_mask(causal, None, """a # noqa: ESP001', '""", n, n)', False),
    ],
)
def test_checking_suppresses_by_real_comments_only(line: str, rest: str, suppressed: bool) -> None:
    findings = lint_snippet(CHECKED.format(line=line, rest=rest))
    assert ("ESP001" not in [f.code for f in findings]) is suppressed
    assert [f.code for f in findings if f.code != "ESP001"] == [], findings
