"""Measured facts behind issue 21's changes, on the real torch 2.13 (CPU, small sizes).

- ESP008 per call: builtin `max` on index tensors fails under plain vmap (an uncompiled `create_block_mask`)
  and works compiled (dynamo rewrites it), whatever else the module compiles.
- ESP008 and loops: a loop over a captured tensor's rows runs eager and compiled; `range()` of a parameter
  and iterating a parameter's 0-d value fail both ways.
- ESP010 on a compiled alias: `torch.compile` of a compiled function compiles the original again, dropping the
  options it was compiled with (its backend, `dynamic=False`), while `_compile=True` through the alias builds
  the same BlockMask as the alias alone: deleting `_compile=True` is the fix that keeps the program.
- Bound methods: torch counts `self` (`_get_mod_type`), so `create_block_mask` refuses a bound mask method,
  while `flex_attention` calls a bound score_mod as intended (why call rules skip bound methods and body
  rules check them without `self`).

If a torch release changes one of these, the failing assertion names the rule whose rationale no longer holds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="needs the `harness` extra (torch)")
pytestmark = pytest.mark.torch

from torch.nn.attention.flex_attention import create_block_mask, flex_attention  # noqa: E402

N = 128


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch._dynamo.reset()


SEGMENTS = torch.tensor([[[0, 64], [64, 64]], [[0, 32], [32, 96]]])


def by_segment(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    keep = q_idx >= kv_idx
    for start, length in SEGMENTS[b]:
        keep = keep & ((q_idx < start) | (q_idx >= start + length) | (kv_idx >= start))
    return keep


def by_range(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    keep = q_idx >= kv_idx
    for i in range(kv_idx):
        keep = keep & (q_idx != i)
    return keep


def by_value(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    keep = q_idx >= kv_idx
    for i in q_idx:
        keep = keep & (i != 0)
    return keep


def capped(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return max(q_idx - kv_idx, 0) < 64


def _builders() -> list[tuple[str, Callable[..., Any]]]:
    return [("eager", create_block_mask), ("compiled", torch.compile(create_block_mask, backend="eager"))]


def test_esp008_a_loop_over_a_captured_tensors_rows_runs_eager_and_compiled() -> None:
    for how, build in _builders():
        mask = build(by_segment, 2, None, N, N, device="cpu")
        assert mask.kv_num_blocks.shape == (2, 1, 1), f"ESP008: a loop over captured rows no longer runs ({how})"


@pytest.mark.parametrize(("mask_mod", "error"), [(by_range, RuntimeError), (by_value, Exception)])
def test_esp008_loops_over_a_parameters_value_fail_eager_and_compiled(mask_mod: Any, error: type) -> None:
    for how, build in _builders():
        with pytest.raises(error) as raised:
            build(mask_mod, None, None, N, N, device="cpu")
        if mask_mod is by_range:
            assert ".item()" in str(raised.value), f"ESP008: range() of a parameter fails differently ({how})"
    with pytest.raises(TypeError, match="0-d tensor"):
        create_block_mask(by_value, None, None, N, N, device="cpu")


def test_esp008_builtin_max_fails_under_plain_vmap_and_works_compiled() -> None:
    with pytest.raises(RuntimeError, match="data-dependent control flow"):
        create_block_mask(capped, None, None, N, N, device="cpu")
    compiled = torch.compile(create_block_mask, backend="eager")
    assert compiled(capped, None, None, N, N, device="cpu").to_dense().any(), "ESP008: compiled max() changed"


def _recorder(log: list[bool]) -> Callable[..., Any]:
    """A dynamo backend that records, per graph, whether any input size is symbolic (a dynamic-shape graph)."""

    def backend(gm: Any, inputs: list[Any]) -> Any:
        sizes = [d for x in inputs if isinstance(x, torch.Tensor) for d in x.shape]
        log.append(any(isinstance(s, torch.SymInt) for s in [*sizes, *inputs]))
        return gm.forward

    return backend


def causal(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx


def test_esp010_compiling_a_compiled_alias_drops_its_options() -> None:
    alias_graphs: list[bool] = []
    outer_graphs: list[bool] = []
    alias = torch.compile(create_block_mask, dynamic=False, backend=_recorder(alias_graphs))
    wrapped = torch.compile(alias, backend=_recorder(outer_graphs))  # what wrapping the alias again does
    for n in (N, 2 * N):
        wrapped(causal, None, None, n, n, device="cpu")
    assert alias_graphs == [], "ESP010: torch.compile of a compiled function now keeps the inner compile"
    # The second length gives a dynamic-shape graph: the alias's dynamic=False is gone.
    assert outer_graphs == [False, True], "ESP010: compiling a compiled alias no longer drops dynamic=False"


def test_esp010_compile_flag_through_a_compiled_alias_builds_the_same_block_mask() -> None:
    graphs: list[bool] = []
    alias = torch.compile(create_block_mask, dynamic=False, backend=_recorder(graphs))
    flagged = alias(causal, None, None, N, N, device="cpu", _compile=True)
    plain = alias(causal, None, None, N, N, device="cpu")
    assert torch.equal(flagged.to_dense(), plain.to_dense())
    for attr in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices"):
        assert torch.equal(getattr(flagged, attr), getattr(plain, attr)), f"ESP010: {attr} differs"
    assert graphs and not any(graphs), "ESP010: the alias's own options no longer apply with _compile=True"


class _Masks:
    def causal(self, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return q_idx >= kv_idx

    def bias(self, score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return score + (q_idx - kv_idx)


def test_bound_methods_create_block_mask_counts_self_flex_attention_does_not() -> None:
    masks = _Masks()
    with pytest.raises(AssertionError, match="requires a mask_mod"):
        create_block_mask(masks.causal, None, None, N, N, device="cpu")
    q = torch.randn(1, 1, 16, 8)
    expected = flex_attention(q, q, q, score_mod=lambda s, b, h, qi, kv: s + (qi - kv))
    assert torch.allclose(flex_attention(q, q, q, score_mod=masks.bias), expected)
