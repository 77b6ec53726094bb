"""The body-rule fixes (ESP024, ESP025) and declines (ESP008 around ESP017), proven by running programs.

Each program in tests/behaviour_bodies/ says `# expect: fixed|unsafe|declined CODE` and prints one line
per probe (a value, or the exception it raised). It runs before and after `--fix` (in-process, with real
torch), while `create_block_mask`/`flex_attention` record the functions they receive, so the harness can
also call those very functions directly, with Python ints and 0-d tensors, and under `create_mask`.

- `fixed`: the safe fix applies; every probe that worked before prints the same after; nothing raises
  after; and each recorded function computes, wherever the original returned a value, the value the
  original meant (the boolean of a numeric mask; the 0-d form of a one-element result).
- `unsafe`: no safe fix; with `--unsafe-fixes` the edit applies and some probe that worked before prints
  something else after: calling the fix unsafe is necessary.
- `declined`: the finding stays and nothing is edited, even with `--unsafe-fixes`.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from esper_lint.config import Config
from esper_lint.engine import lint_source
from esper_lint.fix.file_fixer import fix_source

torch = pytest.importorskip("torch", reason="the programs run torch (the `harness` extra)")
pytestmark = pytest.mark.torch

import torch.nn.attention.flex_attention as flex  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS_DIR = ROOT / "tests" / "behaviour_bodies"
PROGRAMS = sorted(p for p in PROGRAMS_DIR.glob("esp*.py"))
CONFIG = Config(root=ROOT)
UNSAFE = Config(root=ROOT, unsafe_fixes=True)
GRID = range(6)


@pytest.fixture(autouse=True)
def _setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(PROGRAMS_DIR))
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def expectation(text: str) -> tuple[str, str]:
    match = re.search(r"^# expect: (fixed|unsafe|declined) (ESP\d{3})$", text, re.MULTILINE)
    assert match, "every program says what --fix must do, and for which rule"
    return match.group(1), match.group(2)


def run(source: str, name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[tuple[str, Any]]]:
    """The program's output lines, and the (role, function) pairs the mask APIs received."""
    received: list[tuple[str, Any]] = []
    real_block_mask, real_attention = flex.create_block_mask, flex.flex_attention

    def create_block_mask(mask_mod: Any, *args: Any, **kwargs: Any) -> Any:
        received.append(("mask_mod", mask_mod))
        return real_block_mask(mask_mod, *args, **kwargs)

    def flex_attention(*args: Any, score_mod: Any = None, **kwargs: Any) -> Any:
        received.append(("score_mod", score_mod))
        return real_attention(*args, score_mod=score_mod, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(flex, "create_block_mask", create_block_mask)
        patch.setattr(flex, "flex_attention", flex_attention)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(source, name, "exec"), {"__name__": "__main__"})
    return out.getvalue().splitlines(), received


def _fix(source: str, name: str, config: Config) -> str | None:
    result = fix_source(source.encode(), name, config)
    assert not result.errors, result.errors
    return result.new_source.decode() if result.new_source is not None else None


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_body_fix_keeps_behaviour_or_is_labelled(program: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = program.read_text()
    kind, code = expectation(source)
    findings = [f for f in lint_source(source.encode(), program.name, CONFIG).findings if f.code == code]
    assert findings, f"{code} must be reported"
    before, received_before = run(source, program.name, monkeypatch)
    fixed = _fix(source, program.name, CONFIG)
    if kind == "fixed":
        assert fixed is not None and all(f.fixable for f in findings)
        assert code not in [f.code for f in lint_source(fixed.encode(), program.name, CONFIG).findings]
        after, received_after = run(fixed, program.name, monkeypatch)
        assert not [line for line in after if "-> raises" in line], after
        for old, new in zip(before, after, strict=True):
            if "-> raises" not in old:
                assert new == old
        assert len(received_before) == len(received_after)
        for (role, old_fn), (_, new_fn) in zip(received_before, received_after, strict=True):
            _same_meaning(role, old_fn, new_fn)
        return
    assert fixed is None or code in [f.code for f in lint_source(fixed.encode(), program.name, CONFIG).findings]
    assert not any(f.fixable for f in findings)
    unsafe = _fix(source, program.name, UNSAFE)
    if kind == "declined":
        assert unsafe == fixed
        return
    assert unsafe is not None and unsafe != fixed
    after, _ = run(unsafe, program.name, monkeypatch)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if "-> raises" not in old and old != new]
    assert changed, "an unsafe label must be necessary: some working probe prints something else after"


def _meaning(values: list[Any]) -> Callable[[Any], Any]:
    """How the original's results read as a mask: booleans as they are; numbers as an additive mask (0
    kept, negative masked) when any is negative, else non-zero kept; a one-element result as its 0-d value."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    additive = any(bool((v < 0).any()) for v in tensors if v.dtype != torch.bool)

    def meant(value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            return value
        if value.dtype != torch.bool:
            value = value == 0 if additive else value != 0
        return value.reshape(()) if value.numel() == 1 else value

    return meant


def _results(fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
    """The function's result for each call, or None where it raises (the original fails there)."""
    out = []
    for args in calls:
        try:
            out.append(fn(*args))
        except Exception:
            out.append(None)
    return out


def _same_meaning(role: str, old: Callable[..., Any], new: Callable[..., Any]) -> None:
    """Wherever the original returns a value (direct calls with Python ints and 0-d tensors, `create_mask`),
    the fixed function returns what it meant."""
    if role == "score_mod":
        score = torch.tensor(0.25)
        for q in GRID:
            for kv in GRID:
                indices = (torch.tensor(0), torch.tensor(0), torch.tensor(q), torch.tensor(kv))
                assert torch.equal(new(score, *indices), old(score, *indices).reshape(()))
        return
    for wrap in (int, torch.tensor):  # Python ints, then 0-d tensors
        calls = [(wrap(0), wrap(0), wrap(q), wrap(kv)) for q in GRID for kv in GRID]
        originals = _results(old, calls)
        meant = _meaning(originals)
        for args, original in zip(calls, originals, strict=True):
            if original is None:
                continue
            got, expected = new(*args), meant(original)
            assert bool(got) == bool(expected) and getattr(got, "shape", ()) == getattr(expected, "shape", ())
    size = len(GRID)
    dense_old = flex.create_mask(old, 1, 1, size, size, device="cpu")
    dense_new = flex.create_mask(new, 1, 1, size, size, device="cpu")
    expected_dense = _meaning([dense_old])(dense_old.squeeze(-1) if dense_old.dim() == 5 else dense_old)
    assert dense_new.dtype == torch.bool and torch.equal(dense_new, expected_dense)
