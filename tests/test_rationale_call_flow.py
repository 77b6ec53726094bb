"""The measured consequence behind ESP018-ESP020, ESP023 and ESP027-ESP030, on real torch (CPU, small sizes).

Each test reproduces what the rule's message and docs page say happens at run time. If a torch release
changes the behaviour, the failing test names the rule whose rationale no longer holds. Compiling is the
expensive part: only the rules whose consequence shows only when compiled (ESP019, ESP028, ESP030's
`dynamic=False`) compile anything.
"""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import subprocess
import sys
import textwrap
import typing
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the rationale tests need the `harness` extra (torch)")

import torch.nn.functional as F  # noqa: E402
from torch.nn.attention import flex_attention as flex_module  # noqa: E402
from torch.nn.attention.flex_attention import (  # noqa: E402
    AuxRequest,
    create_block_mask,
    create_mask,
    flex_attention,
)

from esper_lint.core.flex_kernel_options import (  # noqa: E402
    BACKENDS,
    FLEX_KERNEL_OPTIONS,
    UNDECLARED_BUT_READ,
    is_known,
    nearest,
)

pytestmark = pytest.mark.torch

D = 16
needs_compiler = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("c++", "g++", "clang++")),
    reason="compiling flex_attention on CPU needs a C++ compiler (torch inductor); none is installed",
)


def causal(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
    return q_idx >= kv_idx


def right_aligned(q_len: int, kv_len: int):  # type: ignore[no-untyped-def]
    def mask(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
        return q_idx + (kv_len - q_len) >= kv_idx

    return mask


def _tensors(*shape: int, n: int = 3) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(*shape, generator=generator) for _ in range(n)]


def _eager(*args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "flex_attention called without torch.compile()"
        return flex_attention(*args, **kwargs)


def test_esp018_adjust_keeps_a_mask_that_reads_its_length_and_gives_wrong_output() -> None:
    full, q_len, kv_len = 512, 128, 256
    q = _tensors(1, 2, q_len, D, n=1)[0]
    k, v = _tensors(1, 2, kv_len, D, n=2)
    wanted = right_aligned(q_len, kv_len)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=create_mask(wanted, 1, 1, q_len, kv_len, device="cpu"))
    adjusted = create_block_mask(right_aligned(full, full), None, None, full, full, device="cpu")._adjust(q_len, kv_len)
    error = (_eager(q, k, v, block_mask=adjusted) - expected).abs().max().item()
    assert error > 0.5, (
        f"ESP018 rationale no longer holds on torch {torch.__version__}: `_adjust` of a right-aligned mask now "
        f"gives the new length's output (max error {error})"
    )
    # The rule spares masks that read only their indices: cropping those is right.
    cropped = create_block_mask(causal, None, None, full, full, device="cpu")._adjust(q_len, kv_len)
    dense = create_mask(causal, 1, 1, q_len, kv_len, device="cpu")
    right = F.scaled_dot_product_attention(q, k, v, attn_mask=dense)
    assert (_eager(q, k, v, block_mask=cropped) - right).abs().max().item() < 1e-4


@needs_compiler
def test_esp019_h_from_key_value_heads_gives_wrong_compiled_output_only() -> None:
    windows = torch.tensor([256, 32, 64, 16])

    def per_head_window(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
        return (q_idx >= kv_idx) & (q_idx - kv_idx < windows[h])

    s = 256
    q = _tensors(1, 4, s, D, n=1)[0]
    k, v = _tensors(1, 2, s, D, n=2)
    dense = create_mask(per_head_window, 1, 4, s, s, device="cpu")
    expected = F.scaled_dot_product_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), attn_mask=dense)
    block_mask = create_block_mask(per_head_window, None, k.shape[1], s, s, device="cpu")  # ESP019: kv heads
    eager = (_eager(q, k, v, block_mask=block_mask, enable_gqa=True) - expected).abs().max().item()
    compiled_out = torch.compile(flex_attention)(q, k, v, block_mask=block_mask, enable_gqa=True)
    compiled = (compiled_out - expected).abs().max().item()
    assert eager < 1e-4, f"ESP019 rationale: eager flex_attention was expected to be right (error {eager})"
    assert compiled > 0.1, (
        f"ESP019 rationale no longer holds on torch {torch.__version__}: a BlockMask with H = key/value heads "
        f"now gives the right compiled GQA output (max error {compiled})"
    )


def test_esp020_sliced_block_mask_fails_unless_the_original_mask_mod_is_assigned() -> None:
    q, k, v = _tensors(1, 1, 256, D)
    block_mask = create_block_mask(causal, 2, None, 256, 256, device="cpu")
    with pytest.raises(RuntimeError, match="Cannot use mask_mod from a sliced BlockMask"):
        _eager(q, k, v, block_mask=block_mask[0:1])
    wrapped = block_mask[0:1]
    inner = wrapped.mask_mod
    wrapped.mask_mod = lambda b, h, q_idx, kv_idx: inner(b, h, q_idx, kv_idx)
    with pytest.raises(torch._dynamo.exc.Unsupported, match="Observed exception"):
        _eager(q, k, v, block_mask=wrapped)
    assigned = block_mask[0:1]
    assigned.mask_mod = block_mask.mask_mod
    assert _eager(q, k, v, block_mask=assigned).shape == q.shape


def test_esp023_table_is_torchs_flex_kernel_options() -> None:
    declared = tuple(typing.get_type_hints(flex_module.FlexKernelOptions))
    assert declared == FLEX_KERNEL_OPTIONS, (
        f"ESP023: torch {torch.__version__}'s FlexKernelOptions keys changed; update "
        "esper_lint/core/flex_kernel_options.py"
    )
    assert typing.get_args(flex_module._Backend) == BACKENDS
    # Each key we accept without FlexKernelOptions declaring it is still read by torch's compiler.
    # Imported by name: as an attribute chain it exists only once some other test has imported it.
    flex_kernels = Path(inspect.getfile(importlib.import_module("torch._inductor.kernel.flex.common"))).parent
    source = "".join(p.read_text(encoding="utf-8") for p in flex_kernels.glob("*.py"))
    for key in UNDECLARED_BUT_READ:
        assert re.search(rf"""kernel_options(\.get\(|\[|\.setdefault\()\s*["']{key}["']""", source), key
    assert nearest("BLOCK_m") == "BLOCK_M" and nearest("num_warp") == "num_warps"
    assert nearest("PRESCALE_QK ") == "PRESCALE_QK" and nearest("fwd_BLOCK_m") == "fwd_BLOCK_M"
    assert is_known("bwd_BLOCK_N1") and not is_known("BLOCK_m")


def test_esp023_unknown_keys_are_ignored_silently_but_torch_checks_backend() -> None:
    q, k, v = _tensors(1, 2, 128, D)
    block_mask = create_block_mask(causal, None, None, 128, 128, device="cpu")
    baseline = _eager(q, k, v, block_mask=block_mask)
    for typo in ({"BLOCK_m": 64}, {"num_warp": 2}, {"PRESCALE_QK ": True}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = flex_attention(q, k, v, block_mask=block_mask, kernel_options=typo)
        told = [str(w.message) for w in caught if "without torch.compile" not in str(w.message)]
        assert torch.equal(out, baseline) and not told, (
            f"ESP023 rationale no longer holds on torch {torch.__version__}: {typo} now changes the output or "
            f"warns ({told})"
        )
    conflict = {"BACKEND": "TRITON", "FORCE_USE_FLEX_ATTENTION": True}
    with pytest.raises(RuntimeError, match="BACKEND cannot be combined with legacy FORCE_USE_FLEX_ATTENTION"):
        _eager(q, k, v, block_mask=block_mask, kernel_options=conflict)
    with pytest.raises(ValueError, match="Invalid BACKEND value"):
        _eager(q, k, v, block_mask=block_mask, kernel_options={"BACKEND": "CUDA"})


def test_esp027_return_lse_warns_and_return_aux_gives_the_same_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    q, k, v = _tensors(1, 2, 128, D)
    block_mask = create_block_mask(causal, None, None, 128, 128, device="cpu")
    monkeypatch.setattr(flex_module, "_WARNINGS_SHOWN", set())  # torch warns once per process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, lse = flex_attention(q, k, v, block_mask=block_mask, return_lse=True)
    future = [w for w in caught if issubclass(w.category, FutureWarning)]
    assert future and "return_lse is deprecated and will be removed" in str(future[0].message), (
        f"ESP027 rationale no longer holds on torch {torch.__version__}: `return_lse=True` no longer warns"
    )
    out_aux, aux = _eager(q, k, v, block_mask=block_mask, return_aux=AuxRequest(lse=True))
    assert torch.equal(out, out_aux) and torch.equal(lse, aux.lse)  # what the fix relies on
    with pytest.raises(ValueError, match="Cannot specify both return_lse and return_aux"):
        _eager(q, k, v, block_mask=block_mask, return_lse=True, return_aux=AuxRequest(lse=True))


_FIXED_BATCH = textwrap.dedent("""\
    import torch, warnings
    warnings.simplefilter("ignore")
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    LENGTHS = torch.tensor([256, 64, 128, 32])
    def padding(b, h, q_idx, kv_idx):
        return kv_idx < LENGTHS[b]
    block_mask = create_block_mask(padding, 4, None, 256, 256, device="cpu")  # built once for B=4
    q, k, v = (torch.randn(2, 1, 256, 16) for _ in range(3))  # the last, partial batch
    torch.compile(flex_attention)(q, k, v, block_mask=block_mask)
    print("survived")
    """)


@needs_compiler
def test_esp028_fixed_batch_block_mask_crashes_compiled_flex_attention(tmp_path: Path) -> None:
    lengths = torch.tensor([256, 64, 128, 32])

    def padding(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
        return kv_idx < lengths[b]

    q, k, v = _tensors(2, 1, 256, D)
    block_mask = create_block_mask(padding, 4, None, 256, 256, device="cpu")
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=create_mask(padding, 2, 1, 256, 256, device="cpu"))
    eager = (_eager(q, k, v, block_mask=block_mask) - expected).abs().max().item()
    assert eager < 1e-4, f"ESP028 rationale: eager flex_attention was expected to be right (error {eager})"
    program = tmp_path / "compiled.py"  # the crash would take pytest down with it
    program.write_text(_FIXED_BATCH, encoding="utf-8")
    done = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=600)
    assert done.returncode < 0, (  # killed by a signal: SIGFPE (-8) on torch 2.13 CPU, SIGSEGV (-11) for 6 vs 4
        f"ESP028 rationale no longer holds on torch {torch.__version__}: compiled flex_attention with a batch "
        f"of 2 against a BlockMask built for 4 exited with {done.returncode} instead of crashing"
    )


def test_esp029_block_mask_built_for_one_length_refuses_another() -> None:
    block_mask = create_block_mask(causal, None, None, 256, 256, device="cpu")
    for length in (128, 384):
        q, k, v = _tensors(1, 2, length, D)
        with pytest.raises(ValueError, match=r"block_mask was created for block_mask.shape=\(1, 1, 256, 256\)"):
            _eager(q, k, v, block_mask=block_mask)


_EAGER_MEMORY = textwrap.dedent("""\
    import re, torch
    from torch.nn.attention.flex_attention import create_block_mask
    def peak():  # this process's own high-water mark (ru_maxrss would include the parent's, kept across exec)
        with open("/proc/self/status") as status:
            return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) * 1024
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx
    create_block_mask(causal, None, None, 128, 128, device="cpu")  # warm up
    before = peak()
    create_block_mask(causal, None, None, {size}, {size}, device="cpu")
    print(peak() - before)
    """)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from /proc (Linux)")
def test_esp030_eager_create_block_mask_materializes_the_whole_mask(tmp_path: Path) -> None:
    size = 2048
    program = tmp_path / "eager.py"
    program.write_text(_EAGER_MEMORY.format(size=size), encoding="utf-8")
    done = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=600, check=True)
    grown = int(done.stdout.split()[-1])
    assert grown > size * size, (  # one byte per mask element at least (measured: about 10)
        f"ESP030 rationale no longer holds on torch {torch.__version__}: eager create_block_mask at S={size} "
        f"grew the peak memory by {grown} bytes only, less than the {size}x{size} mask"
    )


def test_esp030_dynamic_false_compiles_each_length_then_runs_eagerly() -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    # Dynamo's guards (what recompiles) are the same whatever the backend: `eager` spares inductor's work.
    build = torch.compile(create_block_mask, dynamic=False, backend="eager")
    with torch._dynamo.config.patch(recompile_limit=2):
        for length in (128, 256, 384):
            build(causal, None, None, length, length, device="cpu")
    graphs = counters["stats"]["unique_graphs"]
    limited = [reason for reason in counters["unimplemented"] if "recompile limit exceeded" in reason]
    torch._dynamo.reset()
    assert graphs == 2 and limited, (
        f"ESP030 rationale no longer holds on torch {torch.__version__}: with dynamic=False three lengths gave "
        f"{graphs} compilations and {len(limited)} fall-backs past the recompile limit"
    )
