"""The ESP008 / ESP011 fixes keep what the function computes: run before and after on real tensors.

The original is called element by element with 0-d tensors (where Python's `and`/`if`/`+=` still work),
the fixed version the same way and under FlexAttention, where only the fixed one runs. The fixes of `not`,
`x if c else y` and `score += x` are unsafe (docs/fix.md: a direct call with Python numbers or a caller's
tensor sees a difference), so those are applied here as `--unsafe-fixes` applies them.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esper_lint.config import Config
from esper_lint.fix.edits import apply_edit_fixes

torch = pytest.importorskip("torch", reason="running the functions needs torch (the `harness` extra)")
pytestmark = pytest.mark.torch

from torch.nn.attention.flex_attention import create_mask, flex_attention  # noqa: E402

S = 32
HEADER = """\
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

"""


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _fix(body: str, code: str, unsafe: bool = False) -> tuple[str, str]:
    """The source and its fixed text; `unsafe`: with `--unsafe-fixes` (the fix of `not`, `torch.where` and
    `score += x` changes what a direct call with numbers or a caller's tensor sees: docs/fix.md)."""
    source = HEADER + textwrap.dedent(body)
    config = Config(root=Path.cwd())
    outcome = apply_edit_fixes(source.encode(), "module.py", config)
    if unsafe:
        assert not outcome.fixed  # offered only behind --unsafe-fixes
        outcome = apply_edit_fixes(source.encode(), "module.py", config, unsafe=True)
    assert [f.code for f in outcome.fixed] == [code]
    fixed = outcome.source.decode()
    assert code not in [f.code for f in outcome.findings]
    again = apply_edit_fixes(outcome.source, "module.py", config, unsafe)
    assert again.source == outcome.source and not again.fixed  # idempotent
    return source, fixed


def _load(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "module.py", "exec"), namespace)
    return namespace


def _elementwise(fn: Any, *leading: Any) -> Any:
    rows = [[fn(*leading, torch.tensor(q), torch.tensor(kv)) for kv in range(S)] for q in range(S)]
    return torch.tensor([[bool(x) if isinstance(x, bool) else float(x) for x in row] for row in rows])


MASK_CASES = {
    "and-or": """
        def window(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx and (q_idx - kv_idx < 8 or q_idx // 4 == kv_idx // 4)

        def build(n):
            return create_block_mask(window, None, None, n, n, device="cpu")
    """,
    "and-or-not": """
        def window(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx and (q_idx - kv_idx < 8 or not kv_idx > q_idx)

        def build(n):
            return create_block_mask(window, None, None, n, n, device="cpu")
    """,
    "if-else-comparisons": """
        def window(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx if q_idx < 16 else q_idx - kv_idx < 4

        def build(n):
            return create_block_mask(window, None, None, n, n, device="cpu")
    """,
    "if-else": """
        def window(b, h, q_idx, kv_idx):
            return True if q_idx - kv_idx < 8 else False

        def build(n):
            return create_block_mask(window, None, None, n, n, device="cpu")
    """,
}


SAFE_CASES = {"and-or"}  # the others are unsafe fixes: applied with --unsafe-fixes
FIXED_LINES = {
    "and-or": "return (q_idx >= kv_idx) & ((q_idx - kv_idx < 8) | (q_idx // 4 == kv_idx // 4))",
    "and-or-not": "return (q_idx >= kv_idx) & ((q_idx - kv_idx < 8) | (kv_idx <= q_idx))",
    "if-else": "return torch.where(q_idx - kv_idx < 8, True, False)",
    "if-else-comparisons": "return torch.where(q_idx < 16, q_idx >= kv_idx, q_idx - kv_idx < 4)",
}


@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_esp008_fixed_mask_mod_computes_the_same_mask_and_builds(case: str) -> None:
    source, fixed = _fix(MASK_CASES[case], "ESP008", unsafe=case not in SAFE_CASES)
    assert FIXED_LINES[case] in fixed
    before, after = _load(source)["window"], _load(fixed)["window"]
    zero = torch.tensor(0)
    expected = _elementwise(before, zero, zero)
    assert torch.equal(_elementwise(after, zero, zero), expected)
    if case == "and-or":  # and called with Python numbers, as a test's reference loop might
        assert all(after(0, 0, q, kv) == before(0, 0, q, kv) for q in range(S) for kv in range(S))
    with pytest.raises(RuntimeError, match="data-dependent control flow"):
        _load(source)["build"](S)
    _load(fixed)["build"](S)  # builds now
    dense = create_mask(after, 1, 1, S, S, device="cpu")[0, 0]
    assert torch.equal(dense.float(), expected.float())


def test_esp008_fixed_score_mod_computes_the_same_scores_and_runs() -> None:
    source, fixed = _fix(
        """
        def causal_bias(score, b, h, q_idx, kv_idx):
            return score + 1.0 if q_idx >= kv_idx else -float("inf")

        def attend(q, k, v):
            return flex_attention(q, k, v, score_mod=causal_bias)
        """,
        "ESP008",
        unsafe=True,
    )
    assert 'torch.where(q_idx >= kv_idx, score + 1.0, -float("inf"))' in fixed
    before, after = _load(source)["causal_bias"], _load(fixed)["causal_bias"]
    score, zero = torch.tensor(0.25), torch.tensor(0)
    assert torch.equal(_elementwise(after, score, zero, zero), _elementwise(before, score, zero, zero))
    q = torch.randn(1, 1, S, 8)
    with pytest.raises(torch._dynamo.exc.Unsupported):
        _load(source)["attend"](q, q, q)
    out = _load(fixed)["attend"](q, q, q)
    dense = create_mask(lambda b, h, q_idx, kv_idx: q_idx >= kv_idx, 1, 1, S, S, device="cpu")
    scores = (q @ q.transpose(-2, -1)) / 8**0.5 + 1.0
    expected = torch.softmax(scores.masked_fill(~dense, -float("inf")), dim=-1) @ q
    assert torch.allclose(out, expected, atol=1e-5)


def test_esp008_no_fix_where_torch_is_not_the_torch_module() -> None:
    body = """
        def causal_bias(score, b, h, q_idx, kv_idx):
            return score if q_idx >= kv_idx else -float("inf")

        def attend(q, k, v):
            return flex_attention(q, k, v, score_mod=causal_bias)
    """
    source = HEADER.replace("import torch\n", "import torch as th\n") + textwrap.dedent(body)
    outcome = apply_edit_fixes(source.encode(), "module.py", Config(root=Path.cwd()), unsafe=True)
    assert not outcome.fixed and "ESP008" in [f.code for f in outcome.findings]


def test_esp011_fixed_score_mod_computes_the_same_scores_and_compiles() -> None:
    source, fixed = _fix(
        """
        def relative_bias(score, b, h, q_idx, kv_idx):
            score += q_idx - kv_idx
            return score

        def attend(q, k, v):
            return flex_attention(q, k, v, score_mod=relative_bias)
        """,
        "ESP011",
        unsafe=True,
    )
    assert "score = score + (q_idx - kv_idx)" in fixed
    before, after = _load(source)["relative_bias"], _load(fixed)["relative_bias"]
    zero = torch.tensor(0)
    for dtype in (torch.float32, torch.bfloat16):
        score = torch.tensor(0.5, dtype=dtype)
        for q_idx, kv_idx in ((3, 1), (1, 3)):
            a = before(score.clone(), zero, zero, torch.tensor(q_idx, dtype=torch.int32), torch.tensor(kv_idx))
            b = after(score.clone(), zero, zero, torch.tensor(q_idx, dtype=torch.int32), torch.tensor(kv_idx))
            assert a.dtype == b.dtype == dtype and torch.equal(a, b)
    q = torch.randn(1, 1, S, 8)
    compiled = torch.compile(flex_attention, backend="aot_eager", fullgraph=True)
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed, match="Mutations detected"):
        compiled(q, q, q, score_mod=before)
    torch._dynamo.reset()
    assert torch.allclose(compiled(q, q, q, score_mod=after), flex_attention(q, q, q, score_mod=before), atol=1e-5)
