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
