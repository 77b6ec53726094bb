"""The rationale of ESP017, ESP021, ESP025 and ESP026, measured: what torch really does with what they report.

If a future torch changes one of these behaviours, the failing test names the rule whose documentation no
longer holds. CPU only, small sizes; compiling uses the "eager" backend (dynamo, no C++ compiler).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the rationale tests run torch (the `harness` extra)")
pytestmark = pytest.mark.torch

from torch.nn.attention.flex_attention import (  # noqa: E402
    create_block_mask,
    create_mask,
    flex_attention,
    noop_mask,
)

S = 128
VMAP_CONTROL_FLOW = "vmap: It looks like you're attempting to use a Tensor in some data-dependent control flow"
VMAP_ITEM = r"vmap: It looks like you're calling \.item\(\) on a Tensor"


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "flex_attention called without torch.compile" and friends
        yield
    torch._dynamo.reset()


def _qkv(heads: int = 2, length: int = S) -> tuple[Any, Any, Any]:
    gen = torch.Generator().manual_seed(0)
    return tuple(torch.randn(1, heads, length, 16, generator=gen) for _ in range(3))  # type: ignore[return-value]


def _compiled(api: Callable[..., Any]) -> Callable[..., Any]:
    return torch.compile(api, backend="eager")  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- ESP017
def prefix_misgrouped(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return (q_idx >= kv_idx) & kv_idx < 100  # ((q >= kv) & kv) < 100


def prefix(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return (q_idx >= kv_idx) & (kv_idx < 100)


def not_seven_misgrouped(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx & (kv_idx != 7)  # q >= (kv & (kv != 7))


def not_seven(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return (q_idx >= kv_idx) & (kv_idx != 7)


def range_chained(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return kv_idx >= 30 & kv_idx < 606  # kv >= (30 & kv) < 606


@pytest.mark.parametrize(
    ("wrong", "meant", "share"),
    [(prefix_misgrouped, prefix, 0.52), (not_seven_misgrouped, not_seven, 0.50)],
    ids=["prefix", "not-seven"],
)
def test_esp017_misgrouped_mask_is_silently_wrong_eager_and_compiled(
    wrong: Callable[..., Any], meant: Callable[..., Any], share: float
) -> None:
    intended = create_mask(meant, 1, 1, S, S, device="cpu")
    built = create_mask(wrong, 1, 1, S, S, device="cpu")  # no error
    assert built.dtype == torch.bool
    assert (built != intended).float().mean().item() == pytest.approx(share, abs=0.01)
    if wrong is prefix_misgrouped:  # compiled: the same wrong mask (once is enough: compiling costs seconds)
        assert torch.equal(_compiled(create_mask)(wrong, 1, 1, S, S, device="cpu"), built)
    q, k, v = _qkv()
    right = flex_attention(q, k, v, block_mask=create_block_mask(meant, None, None, S, S, device="cpu"))
    off = flex_attention(q, k, v, block_mask=create_block_mask(wrong, None, None, S, S, device="cpu"))
    assert (right - off).abs().max().item() > 1.0


def test_esp017_chain_by_mistake_fails_under_vmap_compiled_or_not() -> None:
    with pytest.raises(RuntimeError, match=VMAP_CONTROL_FLOW):
        create_block_mask(range_chained, None, None, S, S, device="cpu")
    with pytest.raises(RuntimeError, match=VMAP_CONTROL_FLOW):
        _compiled(create_block_mask)(range_chained, None, None, S, S, device="cpu")


# --------------------------------------------------------------------------- ESP021
LENGTHS = [100, 60]
LENGTHS_BY_BATCH = {0: 100, 1: 60}
SINKS = [0, 5, 9]


def padding_list(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return kv_idx < LENGTHS[b]


def padding_dict(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return kv_idx < LENGTHS_BY_BATCH[b]


def sinks_in_list(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return kv_idx in SINKS


def sinks_compared(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return (kv_idx == 0) | (kv_idx == 5) | (kv_idx == 9)


def first_four(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return kv_idx in range(4)


def log_window(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return math.log(kv_idx + 1) < 3


def test_esp021_python_list_or_dict_indexed_by_a_tensor_fails() -> None:
    with pytest.raises(RuntimeError, match=VMAP_ITEM):
        create_block_mask(padding_list, 2, None, S, S, device="cpu")
    with pytest.raises(KeyError):
        create_block_mask(padding_dict, 2, None, S, S, device="cpu")
    q, k, v = _qkv()
    with pytest.raises(Exception, match="data-dependent"):  # a score_mod: dynamo cannot index a list with it
        flex_attention(q, k, v, score_mod=lambda score, b, h, q_idx, kv_idx: score + LENGTHS[h])


def test_esp021_in_a_list_fails_under_plain_vmap_and_works_where_dynamo_traces() -> None:
    with pytest.raises(RuntimeError, match=VMAP_CONTROL_FLOW):
        create_block_mask(sinks_in_list, None, None, S, S, device="cpu")
    compiled = _compiled(create_mask)(sinks_in_list, 1, 1, S, S, device="cpu")
    assert torch.equal(compiled, create_mask(sinks_compared, 1, 1, S, S, device="cpu"))


def test_esp021_range_membership_and_math_fail_compiled_or_not() -> None:
    with pytest.raises(RuntimeError, match=VMAP_CONTROL_FLOW):
        create_block_mask(first_four, None, None, S, S, device="cpu")
    with pytest.raises(RuntimeError, match=VMAP_ITEM):
        create_block_mask(log_window, None, None, S, S, device="cpu")
    with pytest.raises(Exception, match="not a constant"):  # dynamo cannot build a range from a tensor
        _compiled(create_block_mask)(first_four, None, None, S, S, device="cpu")
    torch._dynamo.reset()
    with pytest.raises(Exception, match="fake tensor"):  # math.log on a traced tensor
        _compiled(create_block_mask)(log_window, None, None, S, S, device="cpu")


def test_esp021_numpy_fails_in_a_mask_mod_and_works_in_a_score_mod() -> None:
    np = pytest.importorskip("numpy")
    with pytest.raises(RuntimeError, match="Cannot access data pointer of Tensor"):
        create_block_mask(lambda b, h, q_idx, kv_idx: np.abs(q_idx - kv_idx) < 8, None, None, S, S, device="cpu")
    q, k, v = _qkv()
    with_numpy = flex_attention(q, k, v, score_mod=lambda score, b, h, q_idx, kv_idx: score - np.abs(q_idx - kv_idx))
    with_torch = flex_attention(q, k, v, score_mod=lambda score, b, h, q_idx, kv_idx: score - (q_idx - kv_idx).abs())
    assert torch.allclose(with_numpy, with_torch, atol=1e-6)


# --------------------------------------------------------------------------- ESP025
def as_int(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return (q_idx >= kv_idx).int()


def as_float(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return (q_idx >= kv_idx).float()


def additive(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return torch.where(q_idx >= kv_idx, 0.0, -float("inf"))


@pytest.mark.parametrize("mask_mod", [as_int, as_float, additive], ids=lambda f: f.__name__)
def test_esp025_create_block_mask_rejects_a_non_bool_mask(mask_mod: Callable[..., Any]) -> None:
    with pytest.raises(AssertionError, match=r"mask\.dtype must be torch\.bool"):
        create_block_mask(mask_mod, None, None, S, S, device="cpu")
    dense = create_mask(mask_mod, 1, 1, S, S, device="cpu")  # create_mask accepts it
    assert dense.dtype != torch.bool


def test_esp025_compiled_create_block_mask_rejects_it_too() -> None:
    with pytest.raises(AssertionError, match=r"mask\.dtype must be torch\.bool"):
        _compiled(create_block_mask)(additive, None, None, S, S, device="cpu")


# --------------------------------------------------------------------------- ESP026
WINDOW, LONG = 128, 1024


def window_score(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return torch.where((q_idx >= kv_idx) & (q_idx - kv_idx < WINDOW), score, -float("inf"))


def window(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return (q_idx >= kv_idx) & (q_idx - kv_idx < WINDOW)


def test_esp026_masking_score_mod_gives_the_block_mask_output_without_its_sparsity() -> None:
    q, k, v = _qkv(heads=1, length=LONG)
    block_mask = create_block_mask(window, None, None, LONG, LONG, device="cpu")
    as_score = flex_attention(q, k, v, score_mod=window_score)  # flex_attention's default: every block
    assert torch.allclose(as_score, flex_attention(q, k, v, block_mask=block_mask), atol=1e-5)
    everything = create_block_mask(noop_mask, None, None, LONG, LONG, device="cpu")  # what no BlockMask means
    assert everything.sparsity() == 0.0
    assert block_mask.sparsity() > 75.0  # the BlockMask skips three quarters of the blocks
