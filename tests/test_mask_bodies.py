"""The body facts of esper_lint.analysis.mask_bodies, on small functions (no torch needed)."""

from __future__ import annotations

import ast
import builtins
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from corpus import corpus_sources

from esper_lint.analysis import mask_bodies as bodies
from esper_lint.analysis.mask_bodies import MASK_MOD, SCORE_MOD
from esper_lint.analysis.module_facts import analyze_source
from esper_lint.config import Config
from esper_lint.core.decoding import check_decodable

ROOT = Path(__file__).resolve().parent.parent


def _fn(source: str) -> bodies.FuncNode:
    tree = ast.parse(textwrap.dedent(source))
    node = next(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda)))
    assert isinstance(node, (ast.FunctionDef, ast.Lambda))
    return node


CHAINED = "a chained comparison (`a < b < c` is `a < b and b < c`)"


SAFE, UNSAFE, NONE = "safe", "unsafe", ""


def _flow(source: str, role: str = MASK_MOD, traced_by_dynamo: bool = False) -> list[tuple[str, str]]:
    """(what, fix applicability) of each item, in a module that imports torch (the `torch.where` fix needs it)."""
    tree = ast.parse("import torch\n" + textwrap.dedent(source))
    node = next(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda)))
    assert isinstance(node, (ast.FunctionDef, ast.Lambda))
    items = bodies.control_flow(node, role, tree, traced_by_dynamo)
    return [(item.what, item.safety.applicability) for item in items]


def test_derived_names_follow_assignments_in_any_order_and_captured_indexing() -> None:
    node = _fn(
        """
        def padding(b, h, q_idx, kv_idx):
            out = limit > kv_idx
            limit = lengths[b]
            width = WINDOW * 2
            n = q_idx.shape[0]
            return out
        """
    )
    derived = bodies.derived_names(node, MASK_MOD)
    assert derived is not None
    assert {"b", "h", "q_idx", "kv_idx", "out", "limit"} <= derived
    assert "width" not in derived and "n" not in derived  # constants and metadata are Python values


def test_unusual_parameter_lists_are_unknown() -> None:
    assert bodies.derived_names(_fn("def m(*args): return args[2] >= args[3]"), MASK_MOD) is None
    assert bodies.control_flow(_fn("def m(*args): return args[2] >= args[3] and True"), MASK_MOD) == []
    assert bodies.positional_parameters(_fn("def m(b, h, q, kv, w=4): pass"), MASK_MOD) == ["b", "h", "q", "kv"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def m(b, h, q, kv):\n    if q >= kv:\n        return True\n    return False", [("`if` test", NONE)]),
        ("def m(b, h, q, kv):\n    while q > kv:\n        q = q - 1\n    return q", [("`while` test", NONE)]),
        ("def m(b, h, q, kv):\n    return q >= kv and q - kv < 8", [("`and`", SAFE)]),
        ("def m(b, h, q, kv):\n    return q == kv or q > kv", [("`or`", SAFE)]),
        ("def m(b, h, q, kv):\n    return q == kv or not q > kv", [("`or`", UNSAFE)]),  # `not`: a Python bool
        ("def m(b, h, q, kv):\n    return not (q < kv)", [("`not`", UNSAFE)]),
        ("def m(b, h, q, kv):\n    return 0 <= q - kv < 8", [(CHAINED, NONE)]),
        ("def m(b, h, q, kv):\n    return kv < lengths[b].item()", [("`.item()`", NONE)]),
        ("def m(b, h, q, kv):\n    return kv < int(lengths[b])", [("`int()`", NONE)]),
        ("def m(b, h, q, kv):\n    return min(q, kv) >= 0", [("`min()`", NONE)]),
        ("def m(b, h, q, kv):\n    return True if q >= kv else False", [("`x if c else y`", UNSAFE)]),
        (
            "def m(b, h, q, kv):\n    return (q > 0) & (kv < 8) if q >= kv else q == kv",
            [("`x if c else y`", UNSAFE)],
        ),
        (  # a branch that is logic itself is rendered with the condition: one fix for the whole
            "def m(b, h, q, kv):\n    return q > 0 if q >= kv else not q == kv",
            [("`x if c else y`", UNSAFE)],
        ),
        ("def m(b, h, q, kv):\n    return q >= kv if lengths[b] else False", [("`x if c else y`", NONE)]),
        ("def s(score, b, h, q, kv):\n    return score if q >= kv else bias[h]", [("`x if c else y`", NONE)]),
        # Short-circuiting that matters: a later operand may raise, bind, or return what `&` cannot take.
        ("def m(b, h, q, kv):\n    return kv != 0 and q % kv == 0", [("`and`", NONE)]),
        ("def m(b, h, q, kv):\n    return kv != 0 and q // kv == 1", [("`and`", NONE)]),
        ("def m(b, h, q, kv):\n    return q >= kv and (w := q - kv) < 8", [("`and`", NONE)]),
        ("def m(b, h, q, kv):\n    return q >= kv and q.nelement() > 1", [("`and`", NONE)]),
        ("def m(b, h, q, kv):\n    return q >= kv and q.sqrt() < 8", [("`and`", NONE)]),
        ("def m(b, h, q, kv):\n    return q >= kv and q < LIMIT", [("`and`", NONE)]),  # a captured value
        ("def m(b, h, q, kv):\n    return q // 8 == kv // 8 and q % 8 >= kv % 8", [("`and`", SAFE)]),
        ("def m(b, h, q, kv):\n    return q - kv < 0.5 and kv - q > -1.5", [("`and`", SAFE)]),  # floats as sides
        # A Python int too large for a float makes float arithmetic and `/` raise; a literal past int32 makes
        # `//` raise on the int32 indices torch passes.
        ("def m(b, h, q, kv):\n    return q >= kv and q * 0.5 < kv", [("`and`", NONE)]),
        ("def m(b, h, q, kv):\n    return q >= kv and q / 2 < kv", [("`and`", NONE)]),
        ("def m(b, h, q, kv):\n    return q >= kv and q // 2**40 < kv", [("`and`", NONE)]),
        ("def m(b, h, q, kv):\n    return q >= kv and q - 10_000_000_000 < kv", [("`and`", NONE)]),
        # Comparisons of different parameters: q a Python int and kv a tensor mix a bool with a tensor.
        ("def m(b, h, q, kv):\n    return q >= 0 and kv >= 0", [("`and`", NONE)]),
        ("def m(b, h, q, kv):\n    kv = kv * 0.5\n    return q >= kv and q - kv < 8", [("`and`", NONE)]),
    ],
)
def test_control_flow_on_derived_values(source: str, expected: list[tuple[str, str]]) -> None:
    assert _flow(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "def m(b, h, q, kv):\n    if WINDOW > 0:\n        return q - kv < WINDOW\n    return q >= kv",
        "def m(b, h, q, kv):\n    return (q >= kv) & (q - kv < 8)",
        "def m(b, h, q, kv):\n    return causal and q >= kv",  # only the last operand is a tensor
        "def m(b, h, q, kv):\n    return (q >= kv) if causal else (q == kv)",
        "def m(b, h, q, kv):\n    if q.shape[0] > 1:\n        pass\n    return q >= kv",
        "def m(b, h, q, kv):\n    if len(q) > 1:\n        pass\n    return q >= kv",
        "def m(b, h, q, kv):\n    if not torch.is_tensor(q):\n        q = torch.tensor(q)\n    return q >= kv",
        "def m(b, h, q, kv):\n    assert q.dtype == torch.int32\n    return q >= kv",
        "def m(b, h, q, kv):\n    if kv is None:\n        return q >= 0\n    return q >= kv",
        "def m(b, h, q, kv):\n    return q - kv < min(WINDOW, 128)",
        "def m(b, h, q, kv, int=int):\n    return kv < int(q)",  # `int` is not the builtin here
        "def m(b, h, q, kv):\n    def inner(x):\n        return x if x else 0\n    return q >= kv",
    ],
)
def test_python_values_and_tensor_operations_are_fine(source: str) -> None:
    assert _flow(source) == []


@pytest.mark.parametrize(
    ("source", "applicability"),
    [
        ("def m(b, h, q, kv):\n    return not q - kv > 8", UNSAFE),  # integer indices: exact but for the type
        ("def m(b, h, q, kv):\n    return not lengths[b] > kv", NONE),  # a captured tensor may hold NaN
        ("def m(b, h, q, kv):\n    return not q > 0.5", NONE),
        ("def m(b, h, q, kv):\n    return not lengths[b] == kv", NONE),  # what `lengths[b]` is, is unknown
        ("def m(b, h, q, kv):\n    return not q == kv", UNSAFE),  # `!=` is exact for every value
        ("def s(score, b, h, q, kv):\n    return not score > 0", NONE),
        ("def m(b, h, q, kv):\n    return not q in kv", NONE),
        ("def m(b, h, q, kv):\n    return q >= kv and not q / 2 > kv", NONE),
        ("def m(b, h, q, kv):\n    kv = kv * 1.5\n    return not q < kv", NONE),  # rebound: may be a float
        ("def m(b, h, q, kv):\n    return not q.sqrt() < kv", NONE),
        ("def m(b, h, q, kv):\n    return not (q >= kv and q < 5) == kv", NONE),  # once an internal error
    ],
)
def test_not_is_offered_only_where_the_inverted_comparison_is_exact(source: str, applicability: str) -> None:
    role = SCORE_MOD if source.startswith("def s") else MASK_MOD
    assert _flow(source, role)[0][1] == applicability


def test_nested_boolean_operators_are_fixed_as_a_whole() -> None:
    found = _flow("def m(b, h, q, kv):\n    return q >= kv and (q - kv < 8 or q == kv)")
    assert found == [("`and`", SAFE)]  # one finding, one fix for the whole expression
    found = _flow("def m(b, h, q, kv):\n    return q >= kv and (kv < lengths[b].item())")
    assert found == [("`and`", NONE), ("`.item()`", NONE)]
    # Two findings on one node (the `if` test is the `not`): neither is inside the other, both are reported.
    found = _flow("def m(b, h, q, kv):\n    if not q < kv:\n        return True\n    return False")
    assert found == [("`if` test", NONE), ("`not`", UNSAFE)]
    # Fixable operands of an unfixable expression are reported on their own, each with its own fix.
    found = _flow("def m(b, h, q, kv):\n    return (q > kv and not q < kv) if 0 <= q < kv else (q == kv or kv > q)")
    assert found == [("`x if c else y`", NONE), (CHAINED, NONE), ("`and`", UNSAFE), ("`or`", SAFE)]


def test_builtin_min_max_count_only_without_dynamo() -> None:
    source = "def m(b, h, q, kv):\n    return max(q - kv, 0) < 8"
    assert _flow(source, traced_by_dynamo=False) == [("`max()`", NONE)]
    assert _flow(source, traced_by_dynamo=True) == []


def test_score_mod_control_flow_counts_score_as_derived() -> None:
    assert _flow("def s(score, b, h, q, kv):\n    return score if score > 0 else 0.0", SCORE_MOD) == [
        ("`x if c else y`", UNSAFE)
    ]


@pytest.mark.parametrize(
    ("source", "count"),
    [
        ("def s(score, b, h, q, kv):\n    score += q - kv\n    return score", 1),
        ("def s(score, b, h, q, kv):\n    score.add_(q - kv)\n    return score", 1),
        ("def s(score, b, h, q, kv):\n    score[...] = 0\n    return score", 1),
        ("def s(score, b, h, q, kv):\n    score = score * 2\n    score += 1\n    return score", 0),
        ("def s(score, b, h, q, kv):\n    return score.add(q - kv)", 0),
        ("def s(score, b, h, q, kv):\n    score.requires_grad_(False)\n    return score", 0),
        ("def s(x, b, h, q, kv):\n    x *= 2\n    return x", 1),
    ],
)
def test_score_mutations(source: str, count: int) -> None:
    assert len(bodies.score_mutations(_fn(source))) == count


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("lambda score, b, h, q, kv: q >= kv", [True]),
        ("def s(score, b, h, q, kv):\n    return (q >= kv) & (b == 0)", [True]),
        ("def s(score, b, h, q, kv):\n    return bias[h] * (q - kv)", [False]),
        ("def s(score, b, h, q, kv):\n    return score + bias[h] * (q - kv)", []),
        ("def s(_score, b, h, q, kv):\n    return bias[h]", []),  # deliberately unused
        ("def s(score, b, h, q, kv):\n    return torch.where(q >= kv, score, -inf)", []),
    ],
)
def test_score_mod_misuse(source: str, expected: list[bool]) -> None:
    assert [m.returns_boolean for m in bodies.score_mod_misuse(_fn(source))] == expected


@pytest.mark.parametrize(
    ("source", "role", "expected"),
    [
        ("def m(b, h, kv_idx, q_idx): pass", MASK_MOD, ("kv_idx", "q_idx")),
        ("def m(b, h, k, q): pass", MASK_MOD, ("k", "q")),
        ("def m(b, h, key_pos, query_pos): pass", MASK_MOD, ("key_pos", "query_pos")),
        ("def s(score, b, h, kv, q): pass", SCORE_MOD, ("kv", "q")),
        ("def m(b, h, q_idx, kv_idx): pass", MASK_MOD, None),
        ("def m(b, h, m, n): pass", MASK_MOD, None),
        ("def m(b, h, kv_idx, token): pass", MASK_MOD, None),
        ("def s(score, b, h, q, kv): pass", SCORE_MOD, None),
        ("def m(b, h, kvq, qk): pass", MASK_MOD, None),
    ],
)
def test_swapped_index_names(source: str, role: str, expected: tuple[str, str] | None) -> None:
    assert bodies.swapped_index_names(_fn(source), role) == expected


def _module_and_mask(source: str) -> tuple[ast.Module, bodies.FuncNode]:
    tree = ast.parse(textwrap.dedent(source))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "mask")
    return tree, node


@pytest.mark.parametrize(
    ("binding", "expected"),
    [
        ("def build(n, offset: int):", ["offset"]),
        ("def build(n, lengths):\n    offset = int(lengths.max())", ["offset"]),
        ("def build(n, lengths):\n    offset = lengths.max().item() + 1", ["offset"]),
        ("def build(n):\n    offset = 128", []),  # a constant: the same value every call
        ("def build(n, offset):", []),  # unannotated: may be a tensor
        ("def build(n, lengths):\n    offset = lengths.max()", []),  # a 0-d tensor
        ("def build(n, lengths, offset: int):\n    offset = lengths[0]", []),
    ],
)
def test_captured_python_numbers(binding: str, expected: list[str]) -> None:
    source = f"{binding}\n    def mask(b, h, q, kv):\n        return q + offset >= kv\n    return mask\n"
    tree, node = _module_and_mask(source)
    assert [n.id for n in bodies.captured_python_numbers(tree, node)] == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import torch\nf = torch.compile(g, dynamic=False)", True),
        ("import torch\n@torch.compile(dynamic=False)\ndef g(): pass", True),
        ("import torch\nf = torch.compile(g)", False),
        ("import torch as th\nf = th.compile(g, dynamic=False)", False),
        ("import torch\ntorch = None\nf = torch.compile(g, dynamic=False)", False),
    ],
)
def test_compiles_with_static_shapes(source: str, expected: bool) -> None:
    assert bodies.compiles_with_static_shapes(ast.parse(source)) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import torch\ndef mask(b, h, q, kv): pass", True),
        ("import torch as th\ndef mask(b, h, q, kv): pass", False),
        ("from x import torch\ndef mask(b, h, q, kv): pass", False),
        ("import torch\ndef mask(b, h, q, kv):\n    torch = 1", False),
        ("import torch\ndef outer(torch):\n    def mask(b, h, q, kv): pass", False),
        ("def f():\n    import torch\n    def mask(b, h, q, kv): pass", False),
    ],
)
def test_names_torch_module(source: str, expected: bool) -> None:
    tree, node = _module_and_mask(source)
    assert bodies.names_torch_module(tree, node) is expected


def test_builtins_shadowed_at_module_level_are_not_builtins() -> None:
    tree, node = _module_and_mask("def min(a, b): return a\ndef mask(b, h, q, kv):\n    return min(q, kv) >= 0")
    assert bodies.control_flow(node, MASK_MOD, tree, traced_by_dynamo=False) == []
    assert [c.what for c in bodies.control_flow(node, MASK_MOD, None, traced_by_dynamo=False)] == ["`min()`"]


# --------------------------------------------------------------------------- shortcuts that must stay exact
def test_local_names_cover_every_binding_form_of_the_own_scope_only() -> None:
    node = _fn(
        """
        def mask(b, h, /, q, kv=0, *rest, flag, **extra):
            import os.path, numpy as np
            from math import floor as fl, ceil
            a = c, [d, *e] = f = pair
            g: int = 1
            i += 1
            (j := 2)
            del k
            for m, n in items:
                with ctx() as (o, p):
                    pass
            try:
                pass
            except ValueError as err:
                pass
            global glob
            total = [z for z in range(3)]
            def helper(inner_param):
                hidden = 1
            class Box:
                attribute = 1
            lam = lambda lam_param: lam_param
            obj.attr = 1
            seq[0] = 1
        """
    )
    assert bodies.local_names(node) == {
        *("b", "h", "q", "kv", "rest", "flag", "extra"),
        *("os", "np", "fl", "ceil", "a", "c", "d", "e", "f", "g", "i", "j", "k", "m", "n", "o", "p", "err"),
        *("glob", "z", "total", "helper", "Box", "lam"),
    }  # not `inner_param`, `hidden`, `attribute`, `lam_param` (other scopes), nor `obj`/`seq` (only read)


SHADOWING = """
def min(a, b):
    return a

def build(max):
    len = 3

    def sibling():
        bool = None

    def mask(b, h, q, kv):
        int = float
        return q >= kv

    return mask

class Holder:
    str = "a class attribute is not in the scope of a nested function"
"""


def test_free_builtins_answers_as_the_whole_set_did() -> None:
    """The lazy `in` gives, name by name, what the set of unshadowed builtins gave: bindings in the function,
    around it and at module level hide a builtin; bindings elsewhere do not; an unplaced function has none."""
    tree, node = _module_and_mask(SHADOWING)
    every = {name for name in dir(builtins) if not name.startswith("_")}
    around = bodies.enclosing_functions(tree, node)
    assert around is not None and [fn.name for fn in around if isinstance(fn, ast.FunctionDef)] == ["build"]

    def free(module: ast.Module | None = None, outer: list[bodies.FuncNode] | None = None) -> set[str]:
        found = bodies.free_builtins(node, module, outer)
        return {name for name in [*every, "_private", "not_a_builtin"] if name in found}

    assert free(tree) == every - {"min", "max", "len", "int"}
    assert free(tree, around) == free(tree)  # the analysis' outer functions: the same answers as searching
    assert free() == every - {"int"}  # without the module: only the function's own bindings count
    assert free(ast.parse("x = 1")) == set()  # not in that module: nothing can be told, nothing is free


def test_control_flow_with_the_analysis_outer_functions_equals_the_search() -> None:
    tree, node = _module_and_mask(
        """
        def build(lengths):
            int = round
            def mask(b, h, q, kv):
                return float(q) > min(kv, 0) and int(q) < 8
            return mask
        """
    )
    around = bodies.enclosing_functions(tree, node)
    assert around is not None
    searched = bodies.control_flow(node, MASK_MOD, tree, traced_by_dynamo=False)
    assert [c.what for c in searched] == ["`and`", "`float()`", "`min()`"]  # `int` is the local `round`
    assert bodies.control_flow(node, MASK_MOD, tree, False, around) == searched
    assert bodies.names_torch_module(tree, node, around) == bodies.names_torch_module(tree, node)


def test_the_outer_functions_the_analysis_gives_are_the_searched_ones() -> None:
    """`MaskFunction.outer_functions` (read from the analysis' parent table) is what `enclosing_functions`
    finds from the module root, for every mask function of the fixtures and the generated corpus."""
    config = Config(root=ROOT)
    sources = [check_decodable(p.read_bytes(), str(p)) for p in sorted((ROOT / "fixtures").rglob("*.py"))]
    sources += [text for _, text in corpus_sources(count=40, seed=3)]
    compared = nested = 0
    for text in sources:
        for use in analyze_source(ast.parse(text), text, config.apis).uses:
            for fn in use.functions:
                if fn.ast_node is None or fn.outer_functions is None:
                    continue
                assert list(fn.outer_functions) == bodies.enclosing_functions(fn.module_ast, fn.ast_node)
                compared += 1
                nested += bool(fn.outer_functions)
    assert compared > 200 and nested > 100  # it really compared, nested functions included


def test_traced_by_dynamo_is_asked_only_for_builtin_min_and_max() -> None:
    asked: list[bool] = []

    def traced(answer: bool) -> Callable[[], bool]:
        def tell() -> bool:
            asked.append(answer)
            return answer

        return tell

    plain = _fn("def m(b, h, q, kv):\n    return int(q) >= kv and q > 0")
    assert [c.what for c in bodies.control_flow(plain, MASK_MOD, None, traced(False))] == ["`and`", "`int()`"]
    assert asked == []  # reading the source for `torch.compile` is left out when nothing needs it
    capped = _fn("def m(b, h, q, kv):\n    return max(q - kv, 0) < 128")
    assert [c.what for c in bodies.control_flow(capped, MASK_MOD, None, traced(False))] == ["`max()`"]
    assert bodies.control_flow(capped, MASK_MOD, None, traced(True)) == []
    assert asked == [False, True]
