"""The text shortcuts of analysis/hoist_safety.py are exact: each skips a walk only where the walk would find
nothing, so the facts and reasons are those of the full walks (text unknown: `None`) on every spelling."""

from __future__ import annotations

import ast
import textwrap

import pytest

from esper_lint.analysis import hoist_safety
from esper_lint.analysis.hoist_safety import ModuleSummary, hoist_reasons, module_summary

FULLWIDTH_EVAL = "\uff45\uff56\uff41\uff4c"  # Python reads this identifier as `eval`
BOLD_LOCALS = "".join(chr(0x1D41A + ord(c) - ord("a")) for c in "locals")  # MATHEMATICAL BOLD letters
# Sources whose walks find something: each spelling must send its text to the walk.
FOUND = [
    "eval ('x')",
    "(eval)('x')",
    "(\n    eval\n)('x')",
    "eval\\\n('x')",
    "x = 1;exec('y = 2')",
    "globals()['x'] = 1",
    "print(*[eval('1')])",
    f"{FULLWIDTH_EVAL}('1')",
    "\uff45val('1')",
    "def f():\n    global x\n    x = 1",
    "def f():\n    global x;x = 1",
    "x = 1\ndel x",
    "x = 1\nif x:del x",
    "x = [1]\ndel(x[0]), x",
    "x = 1\ndef f():\n    del x",
    "def f():\n    return locals()",
    f"def f():\n    return {BOLD_LOCALS}()",
    "print(vars())",
    "print(dir())",
    "eval = print\neval('x')",  # shadowed: no reason, but the walk must still see the binding
    "import sys\ndef f():\n    return sys._getframe().f_back",
    "import inspect\ndef f():\n    return inspect.stack()",
    "def f(frame):\n    return frame.f_locals",
]
# Sources whose words only look alike: the shortcut skips the walk, and the facts are the same.
LOOKALIKE = [
    "model.eval()",
    "x.exec_module(m)",
    "evaluate = 1\nretval = evaluate",
    "_eval = 1\neval_ = _eval",
    "model = 1\nmodel_del = model",
    "torch.stack([1])",
    "dirname = os.path.dirname('.')",
    "\u00b5 = 'caf\u00e9'",
]


def _summary_facts(summary: ModuleSummary) -> tuple[object, ...]:
    return summary.constants, summary.shadowed, summary.reasons


# Words in strings and comments: the shortcut cannot tell, so these walk (and find nothing).
IN_STRINGS = ["x = 'eval del global'  # eval(x)", '"""locals()"""', f"x = '\ufb01'  # {FULLWIDTH_EVAL}(x)"]
# Constants are found without the walk: a second binding of any kind disqualifies.
REBOUND = ["WIDTH += 1", "WIDTH: int = 1", "from m import WIDTH", "for WIDTH in []: pass", "class WIDTH: pass"]


@pytest.mark.parametrize("body", FOUND + LOOKALIKE + IN_STRINGS + REBOUND)
def test_module_facts_are_those_of_the_full_walk(body: str) -> None:
    text = f"WIDTH = 1\nimport os\nimport torch\n{body}\n"
    tree = ast.parse(text)
    assert _summary_facts(module_summary(tree, text)) == _summary_facts(module_summary(tree, None))


@pytest.mark.parametrize("body", FOUND)
def test_every_spelling_a_walk_finds_is_spelled(body: str) -> None:
    texts = hoist_safety.identifier_texts(body)
    words = (*hoist_safety._NAMESPACE_WORDS, *hoist_safety._MODULE_BUILTIN_WORDS, *hoist_safety._FRAME_WORDS)
    assert hoist_safety._spells(texts, words)


@pytest.mark.parametrize("body", LOOKALIKE)
def test_words_inside_longer_words_and_attributes_are_skipped(body: str) -> None:
    """The shortcut must pay: these texts skip the module walk and the module's builtin-call reasons."""
    texts = hoist_safety.identifier_texts(body)
    assert not hoist_safety._spells(texts, hoist_safety._NAMESPACE_WORDS)
    assert not hoist_safety._spells(texts, hoist_safety._MODULE_BUILTIN_WORDS)


@pytest.mark.parametrize(
    ("text", "spelled"),
    [
        ("print(\u00b5, 'caf\u00e9')", False),  # not ASCII, yet no frame word: no walk (it used to walk)
        (f"print({BOLD_LOCALS}())", True),
        ("sys._\uff47etframe()", True),
        ("x.f_back", True),
        ("f_backs = 1", False),
    ],
)
def test_frame_words_are_read_normalized(text: str, spelled: bool) -> None:
    assert hoist_safety._may_access_frames(text) is spelled


def _enclosing_and_masks(text: str) -> list[tuple[hoist_safety.FuncNode, hoist_safety.FuncNode]]:
    tree = ast.parse(text)
    found = []
    for enclosing in ast.walk(tree):
        if isinstance(enclosing, (ast.FunctionDef, ast.Lambda)):
            body = [enclosing.body] if isinstance(enclosing, ast.Lambda) else enclosing.body
            for stmt in body:
                for fn in ast.walk(stmt):
                    if isinstance(fn, (ast.FunctionDef, ast.Lambda)) and fn is not enclosing:
                        found.append((enclosing, fn))
    return found


@pytest.mark.parametrize("frame_access", ["", "locals()", f"{BOLD_LOCALS}()", "sys._getframe()", "vars(q)"])
@pytest.mark.parametrize("elsewhere", ["", "eval('1')", f"{FULLWIDTH_EVAL}('1')", "del WIDTH", "\u00b5 = 1"])
def test_hoist_reasons_are_those_of_the_full_walks(frame_access: str, elsewhere: str) -> None:
    text = textwrap.dedent(
        f"""
        import sys
        WIDTH = 1

        def other():
            {elsewhere or "pass"}

        def build(n):
            {frame_access or "pass"}
            def causal(b, h, q, kv, w=WIDTH):
                return q + w >= kv
            cut = lambda b, h, q, kv: q >= kv
            return causal, cut
        """
    )
    tree = ast.parse(text)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    pairs = [(e, f) for e, f in _enclosing_and_masks(text) if getattr(e, "name", "") == "build"]
    assert len(pairs) == 2
    fast, full = module_summary(tree, text), module_summary(tree, None)
    lines = text.splitlines(keepends=True)
    results = []
    for enclosing, fn in pairs:
        source = "".join(lines[enclosing.lineno - 1 : enclosing.end_lineno])
        args = (fn, enclosing, parents.get, fast, lambda e: True, False, None, source)
        got = hoist_reasons(*args)
        assert got == hoist_reasons(fn, enclosing, parents.get, full, lambda e: True, False, None, None)
        results.append(got)
    # The cases are not vacuous: the reasons these spellings stand for are found.
    reasons = " ".join(r for found in results for r in found)
    assert ("the module calls `eval()`" in reasons) is ("eval" in elsewhere or FULLWIDTH_EVAL in elsewhere)
    assert ("calls `locals()`" in reasons) is ("locals" in frame_access or BOLD_LOCALS in frame_access)
    assert ("inspects frames" in reasons) is ("_getframe" in frame_access)
    assert ("default `WIDTH`" in reasons) is (elsewhere == "del WIDTH")
