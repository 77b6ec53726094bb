"""Each body rule's rationale, measured: what torch really does with the code ESP008-ESP015 report.

If a future torch changes one of these behaviours, the failing test names the rule whose documentation
no longer holds. CPU only, the smallest sizes that still show the effect; compiling uses the "eager" /
"aot_eager" backends (no C++ compiler needed).
"""

from __future__ import annotations

import os
import shutil
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
)

B, H, S, D = 2, 2, 256, 16


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "flex_attention called without torch.compile" and friends
        yield
    torch._dynamo.reset()


def _qkv() -> tuple[Any, Any, Any]:
    gen = torch.Generator().manual_seed(0)
    return tuple(torch.randn(B, H, S, D, generator=gen) for _ in range(3))  # type: ignore[return-value]


def causal(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx


# --------------------------------------------------------------------------- ESP008
def window_with_and(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx and q_idx - kv_idx < 64


def window_with_if(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    if q_idx >= kv_idx:  # noqa: SIM103 (the Python branch is the point)
        return True
    return False


def window_chained(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return 0 <= q_idx - kv_idx < 64


def reads_item(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return kv_idx <= q_idx.item()


VMAP_CONTROL_FLOW = "vmap: It looks like you're attempting to use a Tensor in some data-dependent control flow"


@pytest.mark.parametrize("mask_mod", [window_with_and, window_with_if, window_chained], ids=lambda f: f.__name__)
def test_esp008_python_branch_in_mask_mod_fails_under_vmap(mask_mod: Callable[..., Any]) -> None:
    with pytest.raises(RuntimeError, match=VMAP_CONTROL_FLOW):
        create_block_mask(mask_mod, None, None, S, S, device="cpu")


def test_esp008_item_in_mask_mod_fails_under_vmap() -> None:
    with pytest.raises(RuntimeError, match=r"vmap: It looks like you're calling \.item\(\) on a Tensor"):
        create_block_mask(reads_item, None, None, S, S, device="cpu")


def test_esp008_the_tensor_form_works_and_builds_the_intended_mask() -> None:
    def window(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return (q_idx >= kv_idx) & (q_idx - kv_idx < 64)

    dense = create_mask(window, 1, 1, S, S, device="cpu")[0, 0]
    q = torch.arange(S).view(S, 1)
    kv = torch.arange(S).view(1, S)
    assert torch.equal(dense, (q >= kv) & (q - kv < 64))


def capped_window(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return max(q_idx - kv_idx, 0) < 64


def test_esp008_builtin_max_fails_under_plain_vmap_and_works_where_dynamo_traces() -> None:
    with pytest.raises(RuntimeError, match=VMAP_CONTROL_FLOW):
        create_block_mask(capped_window, None, None, S, S, device="cpu")
    # dynamo rewrites builtin max/min to torch.maximum/minimum: a compiled create_block_mask and a
    # score_mod (always traced) accept them, so ESP008 reports them only for an uncompiled mask API.
    compiled = torch.compile(create_block_mask, backend="eager")(capped_window, None, None, S, S, device="cpu")
    expected = create_block_mask(lambda b, h, q, kv: (q - kv).clamp(min=0) < 64, None, None, S, S, device="cpu")
    assert torch.equal(compiled.to_dense(), expected.to_dense())
    q, k, v = _qkv()
    flex_attention(q, k, v, score_mod=lambda s, b, h, q_idx, kv_idx: min(s, q_idx - kv_idx))


def branching_score(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return score if q_idx >= kv_idx else -float("inf")


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_esp008_python_branch_in_score_mod_is_unsupported(compiled: bool) -> None:
    q, k, v = _qkv()
    attend = torch.compile(flex_attention, backend="eager", fullgraph=True) if compiled else flex_attention
    with pytest.raises(torch._dynamo.exc.Unsupported, match="Data-dependent branching"):
        attend(q, k, v, score_mod=branching_score)


# --------------------------------------------------------------------------- ESP011
def bias_in_place(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    score += (q_idx - kv_idx) * 0.01
    return score


def bias_new_tensor(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return score + (q_idx - kv_idx) * 0.01


def test_esp011_in_place_score_mod_runs_eagerly_with_the_right_result() -> None:
    q, k, v = _qkv()
    in_place = flex_attention(q, k, v, score_mod=bias_in_place)
    assert torch.allclose(in_place, flex_attention(q, k, v, score_mod=bias_new_tensor), atol=1e-6)


def test_esp011_in_place_score_mod_fails_when_compiled() -> None:
    q, k, v = _qkv()
    attend = torch.compile(flex_attention, backend="aot_eager", fullgraph=True)
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed, match="Mutations detected in score_mod"):
        attend(q, k, v, score_mod=bias_in_place)
    torch._dynamo.reset()
    attend(q, k, v, score_mod=bias_new_tensor)  # the out-of-place form compiles


# --------------------------------------------------------------------------- ESP012
def causal_as_score(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx


def test_esp012_boolean_score_mod_is_silently_wrong_in_eager() -> None:
    q, k, v = _qkv()
    dense = create_mask(causal, 1, 1, S, S, device="cpu")
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=dense)
    block_mask = create_block_mask(causal, None, None, S, S, device="cpu")
    intended = flex_attention(q, k, v, block_mask=block_mask)
    assert torch.allclose(intended, expected, atol=1e-5)  # the comparison itself is sound
    wrong = flex_attention(q, k, v, score_mod=causal_as_score)  # no error
    assert (wrong - expected).abs().max().item() > 0.5


@pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None and shutil.which("c++") is None,
    reason="inductor on CPU needs a C++ compiler (g++/c++) to show the compiled failure",
)
def test_esp012_boolean_score_mod_fails_to_compile_with_inductor() -> None:
    q, k, v = (t[:1, :1, :128] for t in _qkv())
    with pytest.raises(torch._inductor.exc.InductorError, match="C\\+\\+ compile error"):
        torch.compile(flex_attention)(q, k, v, score_mod=causal_as_score)


# --------------------------------------------------------------------------- ESP014
def causal_swapped_names(b: Any, h: Any, kv_idx: Any, q_idx: Any) -> Any:
    return kv_idx <= q_idx  # meant as causal, but torch passes the query index first


def test_esp014_swapped_names_give_the_transposed_mask() -> None:
    intended = create_mask(causal, 1, 1, S, S, device="cpu")
    swapped = create_mask(causal_swapped_names, 1, 1, S, S, device="cpu")
    assert not torch.equal(swapped, intended)
    assert torch.equal(swapped, intended.transpose(-2, -1))  # anti-causal, without any error


# --------------------------------------------------------------------------- ESP015
def _counted(fn: Callable[..., Any]) -> tuple[Callable[..., Any], Any]:
    from torch._dynamo.testing import CompileCounter

    counter = CompileCounter()
    return torch.compile(fn, backend=counter, dynamic=False), counter


def test_esp015_captured_python_scalar_recompiles_then_falls_back() -> None:
    q, k, v = _qkv()

    def attend(q: Any, k: Any, v: Any, offset: Any) -> Any:
        def shifted(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
            return score + (q_idx - kv_idx + offset) * 0.01

        return flex_attention(q, k, v, score_mod=shifted)

    limit = torch._dynamo.config.recompile_limit
    compiled, counter = _counted(attend)
    for offset in range(limit + 4):  # a Python int that changes per call
        compiled(q, k, v, offset)
    assert counter.frame_count == limit  # one compile per value, then the cache limit: eager from then on

    torch._dynamo.reset()
    compiled, counter = _counted(attend)
    for offset in range(limit + 4):  # the same values as 0-d tensors
        compiled(q, k, v, torch.tensor(offset))
    assert counter.frame_count == 1
