"""Property tests: generated modules with nested mask functions at random depths, names and neighbours.

After `fix_source` every module compiles, a second fix changes nothing, and every mask function computes
the same values and the same BlockMask as before (CPU, torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esper_lint.config import Config
from esper_lint.fix.file_fixer import fix_source

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

CONFIG = Config(root=Path(__file__).resolve().parent.parent)
SIZE = 32
# Capture-free bodies; some read builtins and module globals, which must resolve the same after the move.
BODIES = (
    "q_idx >= kv_idx",
    "(q_idx - kv_idx).abs() <= abs(-3)",
    "q_idx // 8 == kv_idx // 8",
    "(q_idx + kv_idx) % 3 == 0",
    "torch.logical_and(q_idx >= kv_idx, q_idx - kv_idx < 9)",
)
NAMES = ("causal", "mask", "window", "band")
CALL = 'None, None, n, n, device="cpu", BLOCK_SIZE=16'


@st.composite
def builder(draw: st.DrawFn, index: int) -> list[str]:
    """`def build{index}(n)` with the mask nested under random functions/classes; returns its lines."""
    depth = draw(st.integers(0, 3))
    levels = draw(st.lists(st.sampled_from(["func", "class"]), min_size=depth, max_size=depth))
    name = draw(st.sampled_from(NAMES))
    body = draw(st.sampled_from(BODIES))
    form = draw(st.sampled_from(["def", "assigned", "inline"]))
    innermost: list[str] = []
    if draw(st.booleans()):
        innermost.append(f"{name}_2 = n  # a local named like a rename candidate")
    if draw(st.booleans()):
        innermost += ["# a neighbouring comment", "unused = n * 2", ""]
    if form == "def":
        innermost += [f"def {name}(b, h, q_idx, kv_idx):", f"    return {body}", ""]
        innermost.append(f"return create_block_mask({name}, {CALL})")
    elif form == "assigned":
        innermost.append(f"{name} = lambda b, h, q_idx, kv_idx: {body}")
        innermost.append(f"return create_block_mask({name}, {CALL})")
    else:
        innermost.append(f"return create_block_mask(lambda b, h, q_idx, kv_idx: {body}, {CALL})")
    lines = innermost
    in_class = False
    for level, kind in enumerate(reversed(levels)):
        if kind == "class" and not in_class:
            # A class level holds a method that holds what we have so far.
            lines = [f"class C{level}:", "    def method(self, n):", *[f"        {x}" if x else "" for x in innermost]]
            innermost = [*lines, f"return C{level}().method(n)"]
            in_class = True
        else:
            innermost = [f"def f{level}(n):", *[f"    {x}" if x else "" for x in innermost], f"return f{level}(n)"]
            in_class = False
        lines = innermost
    return [f"def build{index}(n):", *[f"    {x}" if x else "" for x in lines], "", ""]


@st.composite
def modules(draw: st.DrawFn) -> tuple[str, int]:
    count = draw(st.integers(1, 3))
    taken = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=2))
    lines = ["import torch", "from torch.nn.attention.flex_attention import create_block_mask", ""]
    lines += [f"{name} = {i!r}  # a module-level name the fix must not rebind" for i, name in enumerate(taken)]
    lines += ["", ""]
    for i in range(count):
        lines += draw(builder(i))
    entries = ", ".join(f'"build{i}": build{i}({SIZE})' for i in range(count))
    lines += ["def block_masks():", f"    return {{{entries}}}", ""]
    return "\n".join(lines), count


def load(source: bytes, name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": name}
    exec(compile(source, f"{name}.py", "exec", dont_inherit=True), namespace)
    return namespace


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules())
def test_generated_modules_fix_safely(module: tuple[str, int]) -> None:
    text, count = module
    source = text.encode()
    compile(source, "generated.py", "exec", dont_inherit=True)
    result = fix_source(source, "generated.py", CONFIG)
    assert not result.errors, (result.errors, text)
    assert result.new_source is not None and result.fixed == count, text
    assert result.findings == [], text
    compile(result.new_source, "generated.py", "exec", dont_inherit=True)
    again = fix_source(result.new_source, "generated.py", CONFIG)
    assert again.new_source is None and again.fixed == 0 and not again.errors

    before = load(source, "generated_before")
    after = load(result.new_source, "generated_after")
    for name, value in before.items():  # module-level names keep their values
        if not callable(value) and not name.startswith("__") and name not in ("torch",):
            assert after[name] == value, name
    masks_before, masks_after = before["block_masks"](), after["block_masks"]()
    q = torch.arange(SIZE).view(SIZE, 1)
    kv = torch.arange(SIZE).view(1, SIZE)
    zero = torch.tensor(0)
    for key, bm in masks_before.items():
        other = masks_after[key]
        assert torch.equal(bm.mask_mod(zero, zero, q, kv), other.mask_mod(zero, zero, q, kv))
        for attr in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices"):
            x, y = getattr(bm, attr), getattr(other, attr)
            assert (x is None and y is None) or torch.equal(x, y), attr
        assert "<locals>" not in other.mask_mod.__qualname__


# ----------------------------------------------------------------------------- text-edit fixes (issue 23)
# Generated mask bodies: `and`/`or`/`not`/`x if c else y` over comparisons of parameters, numbers, a captured
# constant, arithmetic that may raise or make floats, a walrus and method calls, so that every condition of
# analysis/edit_safety.py is met and broken. Whatever `--fix` rewrites must keep, for every input a mask can
# receive (Python ints and floats with NaN, 0-d tensors, mixes), the value, its type and dtype, and the
# exception raised; under create_mask the fixed mask equals the original evaluated element by element.
OPERANDS = st.sampled_from(
    (
        *("q", "kv", "b", "0", "3", "0.5", "LIMIT", "q - kv", "kv * 2 + 1", "-q", "q // 2", "q % 3", "q / 2"),
        *("q % kv", "kv // (q - 1)", "q.abs()", "(w := q - kv)", "abs(q - kv)"),  # may raise, bind or be unknown
        *("q * 0.5", "kv // 3000000000"),  # raise for a Python int too large for a float / past int32
    )
)
OPERATORS = st.sampled_from(("<", "<=", ">", ">=", "==", "!="))


@st.composite
def comparisons(draw: st.DrawFn) -> str:
    return f"{draw(OPERANDS)} {draw(OPERATORS)} {draw(OPERANDS)}"


def _logic(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pairs = st.tuples(children, st.sampled_from((" and ", " or ")), children)
    return st.one_of(pairs.map(lambda t: f"({t[0]}{t[1]}{t[2]})"), children.map(lambda c: f"(not {c})"))


LOGIC = st.recursive(comparisons(), _logic, max_leaves=4)
EXPRESSIONS = st.one_of(
    LOGIC,
    st.tuples(OPERANDS, LOGIC, OPERANDS).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    st.tuples(LOGIC, LOGIC, LOGIC).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
)
MASK_MODULE = """import torch
from torch.nn.attention.flex_attention import create_mask

LIMIT = 3


def mask(b, h, q, kv):
    return {expression}


def build(n):
    return create_mask(mask, None, None, n, n)
"""


def _inputs() -> list[tuple[Any, ...]]:
    t = torch.tensor
    found: list[tuple[Any, ...]] = []
    for q, kv in ((0, 0), (1, 3), (3, 1), (4, 2)):
        found += [(0, 0, q, kv), (t(0), t(0), t(q), t(kv)), (t(0), t(0), t(q, dtype=torch.int32), t(kv))]
        found += [(0, 0, q, t(kv)), (t(1), 0, t(q), kv)]
    for q, kv in ((1.5, 0.5), (float("nan"), 1.0), (2.0, float("nan"))):
        found += [(0, 0, q, kv), (t(0), t(0), t(q), t(kv))]
    return [*found, (0, 0, 10**400, 2), (0, 0, 2, 10**400)]  # Python ints have no upper bound


def _observed(fn: Any, args: tuple[Any, ...]) -> str:
    try:
        value = fn(*args)
    except Exception as exc:
        return f"raises {type(exc).__name__}"
    if isinstance(value, torch.Tensor):
        return f"tensor[{value.dtype}]{value.tolist()}"
    return f"{type(value).__name__}:{value!r}"


def _count(findings: list[Any], code: str, fixable: bool | None = None) -> int:
    return sum(1 for f in findings if f.code == code and (fixable is None or f.fixable is fixable))


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(EXPRESSIONS)
def test_generated_mask_bodies_keep_their_behaviour_where_fixed(expression: str) -> None:
    import warnings

    from esper_lint.engine import lint_source

    text = MASK_MODULE.replace("{expression}", expression)
    source = text.encode()
    compile(source, "generated.py", "exec", dont_inherit=True)
    for config in (CONFIG, CONFIG.replace(unsafe_fixes=True)):
        checked = lint_source(source, "generated.py", config).findings
        result = fix_source(source, "generated.py", config)
        assert not result.errors, (result.errors, text)  # never an internal error
        # Check mode's `fixable` is exactly what --fix does.
        assert result.fixed == sum(f.fixable for f in checked), text
        assert _count(result.findings, "ESP008") == _count(checked, "ESP008", fixable=False), text
    plain = fix_source(source, "generated.py", CONFIG)
    if plain.new_source is None:
        return
    before, after = load(source, "generated_before")["mask"], load(plain.new_source, "generated_after")["mask"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for args in _inputs():
            assert _observed(after, args) == _observed(before, args), (text, plain.new_source.decode(), args)
        t = torch.tensor
        n = 5
        try:
            expected: Any = [[bool(before(t(0), t(0), t(q), t(kv))) for kv in range(n)] for q in range(n)]
        except Exception as exc:
            expected = type(exc)
        if isinstance(expected, list) and not _count(plain.findings, "ESP008"):  # nothing left that vmap refuses
            dense = create_mask_of(after, n)
            assert dense == expected, (text, plain.new_source.decode())


def create_mask_of(fn: Any, n: int) -> list[list[bool]]:
    from torch.nn.attention.flex_attention import create_mask

    rows: list[list[bool]] = create_mask(fn, 1, 1, n, n, device="cpu")[0, 0].tolist()
    return rows
