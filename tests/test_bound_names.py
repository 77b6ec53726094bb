"""One answer to "which names does a scope bind" (analysis/bound_names.py), held against CPython's own
symbol tables, and the drift it replaced: the body rules missed `match` captures, so `case int:` still
counted `int` as the builtin."""

from __future__ import annotations

import ast
import symtable
import textwrap

import pytest

from esper_lint.analysis.bound_names import bindings_of, scope_names
from esper_lint.analysis.mask_bodies import local_names
from esper_lint.config import Config
from esper_lint.engine import lint_source

BODIES = {
    "assignments": "a = 1\nb, (c, *d) = x\ne += 1\nf: int = 2\ng: int\n[h := 3]",
    "loops and with": "for i, j in x: pass\nasync def k(): pass\nwith x as (l, m): pass",
    "deletion": "n = 1\ndel n",
    "imports": "import o\nimport p.q\nimport r.s as t\nfrom u import v, w as y",
    "definitions": "def z(): pass\nclass Aa: pass\nlam = lambda bb: bb",
    "except": "try: pass\nexcept Exception as cc: pass",
    "match": "match x:\n    case [dd, *ee]: pass\n    case {'k': ff, **gg}: pass\n"
    "    case Point(x=hh) | Point(y=hh): pass\n    case ii as jj: pass",
    "comprehensions bind nothing here": "[kk for kk in x]\n{ll: 1 for ll in x}\n(mm for mm in x)",
    "walrus in a comprehension binds here": "[nn := v for v in x]",
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_scope_names_agree_with_the_compiler(body: str) -> None:
    source = "def fn(p1, /, p2, *args, k1, **kwargs):\n" + textwrap.indent(body, "    ") + "\n"
    fn = ast.parse(source).body[0]
    assert isinstance(fn, ast.FunctionDef)
    table = next(t for t in symtable.symtable(source, "<s>", "exec").get_children() if t.get_name() == "fn")
    assert isinstance(table, symtable.Function)
    assert scope_names(fn, list(fn.body)) == frozenset(table.get_locals())


def test_each_binding_form_names_its_binding_node() -> None:
    tree = ast.parse("import a.b as c\nmatch x:\n    case {**rest}: pass\n    case [*tail]: pass\n    case y: pass")
    found = {name: type(node).__name__ for n in ast.walk(tree) for name, node in bindings_of(n)}
    assert found == {"c": "alias", "rest": "MatchMapping", "tail": "MatchStar", "y": "MatchAs"}


MASK = """
import torch
from torch.nn.attention.flex_attention import create_block_mask

def mask(b, h, q_idx, kv_idx):
    match MODE:
        case "plain":
            pass
        case {CAPTURE}:
            pass
    return q_idx >= int(kv_idx)

block = create_block_mask(mask, None, None, 64, 64)
"""


def test_a_match_capture_is_a_local_for_the_body_rules() -> None:
    fn = next(n for n in ast.walk(ast.parse(MASK.format(CAPTURE="int"))) if isinstance(n, ast.FunctionDef))
    assert "int" in local_names(fn)


@pytest.mark.parametrize(("capture", "reported"), [("other", True), ("int", False)])
def test_esp008_knows_a_match_capture_is_not_the_builtin(capture: str, reported: bool) -> None:
    source = MASK.format(CAPTURE=capture).encode()
    codes = [f.code for f in lint_source(source, "m.py", Config(root=__import__("pathlib").Path("."))).findings]
    assert ("ESP008" in codes) is reported
