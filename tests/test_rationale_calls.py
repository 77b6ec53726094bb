"""The measured consequence behind each call-site rule (ESP007, ESP009, ESP010, ESP013, ESP016), on real torch.

Each test reproduces what the rule's message and docs page say happens at run time, on CPU at small sizes.
If a torch release changes the behaviour, the failing test names the rule whose rationale no longer holds.
"""

from __future__ import annotations

import shutil
import warnings

import pytest

torch = pytest.importorskip("torch", reason="the rationale tests need the `harness` extra (torch)")

import torch.nn.functional as F  # noqa: E402
from torch.nn.attention import flex_attention as flex_module  # noqa: E402
from torch.nn.attention.flex_attention import (  # noqa: E402
    create_block_mask,
    create_mask,
    flex_attention,
)

pytestmark = pytest.mark.torch

B, H, S, D = 2, 2, 256, 16
LENGTHS = torch.tensor([S, 64])  # batch 1 is padded after 64 keys: differs from batch 0
WINDOWS = torch.tensor([S, 32])  # head 1 sees a 32-key window: differs from head 0

needs_compiler = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("c++", "g++", "clang++")),
    reason="compiling flex_attention on CPU needs a C++ compiler (torch inductor); none is installed",
)


def causal(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
    return q_idx >= kv_idx


def padding(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
    return kv_idx < LENGTHS[b]


def per_head_window(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
    return (q_idx - kv_idx).abs() < WINDOWS[h]


def _qkv() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, S, D, generator=generator) for _ in range(3))
    return q, k, v


@needs_compiler
@pytest.mark.parametrize(("mask_mod", "dim"), [(padding, "B"), (per_head_window, "H")], ids=["reads-b", "reads-h"])
def test_esp007_broadcast_dim_gives_wrong_compiled_output_but_right_eager_output(mask_mod, dim) -> None:  # type: ignore[no-untyped-def]
    q, k, v = _qkv()
    broadcast = {"B": None, "H": None}  # B=None/H=None: computed for batch 0 / head 0 and broadcast
    block_mask = create_block_mask(mask_mod, broadcast["B"], broadcast["H"], S, S, device="cpu")
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=create_mask(mask_mod, B, H, S, S, device="cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = flex_attention(q, k, v, block_mask=block_mask)
    compiled = torch.compile(flex_attention)(q, k, v, block_mask=block_mask)
    eager_error = (eager - expected).abs().max().item()
    compiled_error = (compiled - expected).abs().max().item()
    assert eager_error < 1e-4, f"ESP007 rationale: eager flex_attention was expected to be right (error {eager_error})"
    assert compiled_error > 0.1, (
        f"ESP007 rationale no longer holds on torch {torch.__version__}: compiled flex_attention with {dim}=None "
        f"and a mask reading {dim.lower()} now matches the dense mask (max error {compiled_error})"
    )


def test_esp007_a_literal_1_builds_the_same_block_mask_as_none() -> None:
    """`B=1, H=1` is the broadcast `B=None, H=None` is (ESP007's claim holds for both); for a real batch (head) of
    one it is simply the size, which is why a literal 1 is reported only where more are in sight."""
    one = create_block_mask(padding, 1, 1, S, S, device="cpu")
    none = create_block_mask(padding, None, None, S, S, device="cpu")
    same = [
        torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
        for a, b in zip(one.as_tuple(), none.as_tuple(), strict=True)
        if not callable(a)
    ]
    assert one.shape == none.shape and all(same), (
        f"ESP007 rationale no longer holds on torch {torch.__version__}: B=1 and B=None build different BlockMasks"
    )


def test_esp009_sizes_make_the_block_mask_b_times_h_larger() -> None:
    sized = create_block_mask(causal, B, H, S, S, device="cpu", BLOCK_SIZE=32)
    broadcast = create_block_mask(causal, None, None, S, S, device="cpu", BLOCK_SIZE=32)
    sized_elements = sum(t.numel() for t in sized.as_tuple() if isinstance(t, torch.Tensor))
    broadcast_elements = sum(t.numel() for t in broadcast.as_tuple() if isinstance(t, torch.Tensor))
    assert sized.shape[:2] == (B, H) and broadcast.shape[:2] == (1, 1)
    assert sized_elements == B * H * broadcast_elements, (
        f"ESP009 rationale no longer holds on torch {torch.__version__}: a BlockMask with B={B}, H={H} has "
        f"{sized_elements} elements, not B*H times the broadcast one's {broadcast_elements}"
    )
    # The masks agree: the sizes only repeat the same mask.
    assert torch.equal(sized.to_dense()[:1, :1], broadcast.to_dense())


def test_esp010_compile_flag_is_deprecated() -> None:
    with warnings.catch_warnings():
        # The warning is raised before anything is compiled: as an error it stops the call right there.
        warnings.simplefilter("error", DeprecationWarning)
        with pytest.raises(DeprecationWarning, match="_compile flag on create_block_mask"):
            create_block_mask(causal, None, None, 128, 128, device="cpu", _compile=True)


def test_esp013_block_mask_in_score_mod_slot_fails() -> None:
    q, k, v = (t[:1, :1, :128] for t in _qkv())
    block_mask = create_block_mask(causal, None, None, 128, 128, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(torch._dynamo.exc.Unsupported, match="Unsupported function call"):
            flex_attention(q, k, v, block_mask)  # ESP013: the 4th positional argument is score_mod
        with pytest.raises(AttributeError, match="'function' object has no attribute 'BLOCK_SIZE'"):
            flex_attention(q, k, v, block_mask=causal)  # ESP013: a mask function where a BlockMask goes
        # The fix's form works.
        assert flex_attention(q, k, v, block_mask=block_mask).shape == q.shape


@needs_compiler
def test_esp016_eager_flex_attention_is_the_unfused_path_and_compiling_keeps_the_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    q, k, v = _qkv()
    block_mask = create_block_mask(causal, None, None, S, S, device="cpu")
    monkeypatch.setattr(flex_module, "_WARNINGS_SHOWN", set())  # torch warns once per process
    with pytest.warns(UserWarning, match="without torch.compile.*unfused implementation"):
        eager = flex_attention(q, k, v, block_mask=block_mask)
    compiled = torch.compile(flex_attention)(q, k, v, block_mask=block_mask)
    assert torch.allclose(eager, compiled, atol=1e-4), (
        f"ESP016 rationale: compiling flex_attention on torch {torch.__version__} changed its output"
    )
