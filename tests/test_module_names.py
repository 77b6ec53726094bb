"""`ModuleLevelNames` answers "is this name used at module level?" from the text where it can, and from
`symtable` otherwise: the shortcut may only ever say "unused" for a name `module_level_names` lacks."""

from __future__ import annotations

import ast
import random
import re
import textwrap
from pathlib import Path

import pytest
from corpus import corpus_sources

from esper_lint.analysis.module_names import ModuleLevelNames, module_level_names

ROOT = Path(__file__).resolve().parent.parent

# Each hides a module-level use of `causal` from a naive text search, or keeps it visible.
TRICKY = {
    "read by another function": """
def other():
    return causal

def build():
    def causal(b, h, q, kv):
        return q >= kv
    return causal
""",
    "declared global inside": """
def build():
    def causal(b, h, q, kv):
        return q >= kv
    def inner():
        global causal
    return causal
""",
    "a class body in the def binds and reads it": """
def build():
    def causal(b, h, q, kv):
        return q >= kv
    class Holder:
        causal = causal
    return Holder
""",
    "a class body in the def only reads it": """
def build():
    def causal(b, h, q, kv):
        return q >= kv
    class Holder:
        mask = causal
    return Holder
""",
    "the def's own default reads it": """
def build(mask=causal):
    def causal(b, h, q, kv):
        return q >= kv
    return causal
""",
    "only in strings, comments and attributes elsewhere": '''
"""causal masks"""
import torch  # causal

def other(m):
    return m.causal, "causal"

def build():
    def causal(b, h, q, kv):
        return q >= kv
    return causal
''',
    "a string spanning lines around it": """
X = ("a"  # causal
     "b")

def build():
    def causal(b, h, q, kv):
        return q >= kv
    return causal
""",
    "a mangled private name": """
class C:
    def m(self):
        __hidden = 1
        return __hidden

def build():
    def causal(b, h, q, kv):
        return q >= kv
    return causal
""",
}


def _sources() -> list[tuple[str, str]]:
    found = [(name, textwrap.dedent(text)) for name, text in TRICKY.items()]
    for path in sorted([*(ROOT / "fixtures").rglob("*.py"), *(ROOT / "tests" / "behaviour").glob("*.py")]):
        try:
            found.append((path.name, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue
    found.extend(corpus_sources(count=40, seed=5))
    return found


def test_the_shortcut_never_says_unused_for_a_used_name() -> None:
    rng = random.Random(0)
    checked = said_unused = 0
    for _, text in _sources():
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        exact = module_level_names(text)
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        words = sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)))
        names = [*rng.sample(words, min(len(words), 40)), "causal", "causal_mask", "unused_name_xyz", "_C__hidden"]
        for inside in [None, *rng.sample(defs, min(len(defs), 6))]:
            for name in names:
                checked += 1
                if ModuleLevelNames(text, tree)._surely_unused(name, inside):
                    said_unused += 1
                    assert name not in exact, (name, getattr(inside, "name", None), text[:200])
    assert checked > 5000 and said_unused > 500  # the shortcut is exercised, both ways


@pytest.mark.parametrize("case", sorted(TRICKY))
def test_tricky_cases_agree_with_symtable(case: str) -> None:
    text = textwrap.dedent(TRICKY[case])
    tree = ast.parse(text)
    build = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "build")
    assert ModuleLevelNames(text, tree).uses("causal", build) == ("causal" in module_level_names(text))


def test_the_shortcut_answers_without_symtable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name only in the def's body, strings, comments and attributes: no second parse of the file."""
    from esper_lint.analysis import module_names

    text = textwrap.dedent(TRICKY["only in strings, comments and attributes elsewhere"])
    tree = ast.parse(text)
    build = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "build")

    def refuse(text: str) -> frozenset[str]:
        raise AssertionError("symtable should not be needed")

    monkeypatch.setattr(module_names, "module_level_names", refuse)
    assert not ModuleLevelNames(text, tree).uses("causal", build)
    assert not ModuleLevelNames(text, tree).uses("fresh_name", None)


@pytest.mark.parametrize(
    ("source", "word", "expected"),
    [
        ("x = causal\n", "causal", True),
        ("x = 'causal'\n", "causal", False),
        ("x = 1  # causal\n", "causal", False),
        ('x = "#" + causal\n', "causal", True),
        ('"""\ncausal\n"""\n', "causal", False),  # a docstring's inner line
        ('x = ("a"  # causal\n     "b")\n', "causal", False),  # a comment between concatenated parts
        ("x = f'{causal}'\n", "causal", None),  # a replacement field is code: the tree cannot tell
        ('x = """a # b"""; causal\n', "causal", True),
    ],
)
def test_in_code(source: str, word: str, expected: bool | None) -> None:
    from esper_lint.core.noqa import in_code

    tree = ast.parse(source)
    lines = source.split("\n")
    number = next(i for i, line in enumerate(lines, start=1) if word in line)
    column = len(lines[number - 1][: lines[number - 1].rindex(word)].encode())
    assert in_code(source, tree, number, column) is expected
