"""The fix preserves behaviour: fixtures imported before and after build identical BlockMasks (CPU, torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esper_lint.config import Config
from esper_lint.fix.file_fixer import fix_source

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parent.parent
FIX_DIR = ROOT / "fixtures" / "fix"
BLUEPRINT = ROOT / "fixtures" / "blueprints" / "transformer_seed.py"
CONFIG = Config(root=ROOT)
SIZE = 64  # the fixtures' N
# Functions the fix must leave nested (their fixtures say why).
STAYS_NESTED = {("decorators", "build"), ("decorators", "build_local"), ("decorators", "build_late")}


def load(source: bytes, name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": name}
    exec(compile(source, f"{name}.py", "exec", dont_inherit=True), namespace)
    return namespace


def assert_same_block_mask(before: Any, after: Any) -> None:
    for attr in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices"):
        x, y = getattr(before, attr), getattr(after, attr)
        assert (x is None) == (y is None), attr
        if x is not None:
            assert torch.equal(x, y), attr
    q = torch.arange(SIZE).view(SIZE, 1)
    kv = torch.arange(SIZE).view(1, SIZE)
    b = h = torch.tensor(0)
    assert torch.equal(before.mask_mod(b, h, q, kv), after.mask_mod(b, h, q, kv))


FIXABLE = sorted(p for p in FIX_DIR.glob("*.in.py") if p.name != "unfixable.in.py")


@pytest.mark.parametrize("source", FIXABLE, ids=[p.name for p in FIXABLE])
def test_fixture_masks_identical_before_and_after(source: Path) -> None:
    data = source.read_bytes()
    result = fix_source(data, str(source), CONFIG)
    assert result.new_source is not None
    stem = source.name.removesuffix(".in.py")
    before = load(data, f"{stem}_before")["block_masks"]()
    namespace = load(result.new_source, f"{stem}_after")
    after = namespace["block_masks"]()
    assert before.keys() == after.keys()
    for key in before:
        assert_same_block_mask(before[key], after[key])
        fn = after[key].mask_mod
        if fn.__module__ != namespace["__name__"]:
            continue  # and_masks(...) returns torch's own combinator
        if (stem, key) in STAYS_NESTED:
            assert "<locals>" in fn.__qualname__
        else:
            # Hoisted: one module-level object, the same on every call.
            assert "<locals>" not in fn.__qualname__, (stem, key)
            assert namespace[fn.__name__] is fn


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_blueprint_forward_bit_identical_and_single_mask_function() -> None:
    data = BLUEPRINT.read_bytes()
    fixed = fix_source(data, str(BLUEPRINT), CONFIG).new_source
    assert fixed is not None
    outputs = []
    for tag, source in (("before", data), ("after", fixed)):
        namespace = load(source, f"seed_{tag}")
        torch.manual_seed(0)
        model = namespace["make_transformer_seed"]()()
        x = torch.randn(2, 48, 64)
        with torch.no_grad():
            outputs.append(model(x))
            model(torch.randn(2, 32, 64))  # a second sequence length: a second cached mask
        masks = list(model._block_masks.values())
        assert len(masks) == 2
        if tag == "after":
            # Every cached BlockMask holds the one module-level function, not a copy each.
            assert all(m.mask_mod is namespace["causal"] for m in masks)
        else:
            assert masks[0].mask_mod is not masks[1].mask_mod
    assert torch.equal(outputs[0], outputs[1])


def test_unfixable_fixture_is_untouched_and_still_runs() -> None:
    data = (FIX_DIR / "unfixable.in.py").read_bytes()
    assert fix_source(data, "unfixable.py", CONFIG).new_source is None
    masks = load(data, "unfixable_before")["block_masks"]()
    assert set(masks) == {"captures", "declares_global", "rebinds"}
