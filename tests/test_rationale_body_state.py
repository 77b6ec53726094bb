"""The rationale of ESP022 and ESP024, measured: side effects in mask/score functions, one-element captures.

If a future torch changes one of these behaviours, the failing test names the rule whose documentation no
longer holds. CPU only, small sizes; compiling uses the "eager" backend (dynamo, no C++ compiler).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the rationale tests run torch (the `harness` extra)")
pytestmark = pytest.mark.torch

from torch.nn.attention.flex_attention import create_block_mask, create_mask, flex_attention  # noqa: E402

S = 128


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch._dynamo.reset()


def _qkv() -> tuple[Any, Any, Any]:
    gen = torch.Generator().manual_seed(0)
    return tuple(torch.randn(1, 2, S, 16, generator=gen) for _ in range(3))  # type: ignore[return-value]


# --------------------------------------------------------------------------- ESP022
CALLS = 0
SEEN: list[Any] = []


def counted(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    global CALLS
    CALLS += 1
    return q_idx >= kv_idx


def counted_score(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    global CALLS
    CALLS += 1
    return score


def appending_score(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    SEEN.append(q_idx)
    return score


def printing_score(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    print("score_mod called")
    return score


def test_esp022_a_counter_counts_one_call_for_every_element_of_the_mask() -> None:
    global CALLS
    CALLS = 0
    create_block_mask(counted, None, None, S, S, device="cpu")
    assert CALLS == 1  # for S * S = 16,384 elements
    CALLS = 0
    create_mask(counted, 1, 1, S, S, device="cpu")
    assert CALLS == 1


@pytest.mark.parametrize(
    ("score_mod", "reason"),
    [(counted_score, "side effect"), (appending_score, "side effect"), (printing_score, "builtin")],
    ids=["counter", "append", "print"],
)
def test_esp022_eager_flex_attention_refuses_side_effects(score_mod: Any, reason: str) -> None:
    q, k, v = _qkv()
    with pytest.raises(torch._dynamo.exc.Unsupported, match=reason):
        flex_attention(q, k, v, score_mod=score_mod)
    assert SEEN == []


def test_esp022_an_appended_index_is_one_batched_tensor() -> None:
    SEEN.clear()
    create_block_mask(lambda b, h, q_idx, kv_idx: SEEN.append(q_idx) or q_idx >= kv_idx, None, None, S, S)
    assert len(SEEN) == 1  # not 16,384 values: one tensor that escaped vmap
    SEEN.clear()


# --------------------------------------------------------------------------- ESP024
OFFSET = torch.tensor([16])
SCALAR = torch.tensor(16)


def shifted(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx - kv_idx < OFFSET


def shifted_scalar(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx - kv_idx < SCALAR


def test_esp024_one_element_capture_breaks_create_block_mask_and_create_mask() -> None:
    with pytest.raises(ValueError, match=r"too many values to unpack \(expected 4\)"):
        create_block_mask(shifted, None, None, S, S, device="cpu")
    assert create_mask(shifted, 1, 1, S, S, device="cpu").shape == (1, 1, S, S, 1)  # a 5-D mask
    # The 0-d tensor works and gives the mask meant.
    assert create_mask(shifted_scalar, 1, 1, S, S, device="cpu").shape == (1, 1, S, S)
    create_block_mask(shifted_scalar, None, None, S, S, device="cpu")


def test_esp024_one_element_capture_breaks_an_eager_score_mod() -> None:
    q, k, v = _qkv()
    with pytest.raises(RuntimeError, match="must match the size"):
        flex_attention(q, k, v, score_mod=lambda score, b, h, q_idx, kv_idx: score + OFFSET)
    flex_attention(q, k, v, score_mod=lambda score, b, h, q_idx, kv_idx: score + SCALAR)
