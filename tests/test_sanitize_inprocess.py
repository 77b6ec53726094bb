"""`esper_lint.sanitize` in this process: it never changes what the program computes, leaves the random state
alone, is transparent to dynamo (no graph break), restores torch afterwards, refuses unsupported torch
releases, and `import esper_lint` stays free of torch."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from esper_lint.sanitizer.install import version_problem


def test_unsupported_torch_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESPER_SANITIZE_ANY_TORCH", raising=False)
    assert version_problem("2.13.0+cpu") is None
    problem = version_problem("2.5.1")
    assert problem is not None and "supports torch 2.13" in problem and "torch 2.5.1" in problem
    monkeypatch.setenv("ESPER_SANITIZE_ANY_TORCH", "1")
    assert version_problem("2.5.1") is None


def test_importing_esper_lint_and_the_sanitizer_imports_no_torch() -> None:
    code = (
        "import sys, esper_lint, esper_lint.sanitizer\n"
        "assert callable(esper_lint.sanitize)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


torch = pytest.importorskip("torch", reason="needs the `harness` extra (torch)")
pytestmark = pytest.mark.torch

import esper_lint  # noqa: E402
from esper_lint.sanitizer import SanitizerError  # noqa: E402

S = 128


def _program() -> list[torch.Tensor]:
    from torch.nn.attention import flex_attention as module

    lengths = torch.tensor([S, 40])

    def padding(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
        return kv_idx < lengths[b]

    def bias(score, b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
        return score + (q_idx - kv_idx) * 0.01

    generator = torch.Generator().manual_seed(0)
    q = torch.randn(2, 2, S, 16, generator=generator)
    block_mask = module.create_block_mask(padding, None, None, S, S, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = module.flex_attention(q, q, q, score_mod=bias, block_mask=block_mask)
    return [out, block_mask.to_dense(), module.create_mask(padding, 2, 1, S, S, device="cpu")]


def test_results_and_random_state_are_unchanged() -> None:
    plain = _program()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    with esper_lint.sanitize() as found:
        sanitized = _program()
    assert torch.equal(torch.get_rng_state(), state)  # the checks use their own generator
    assert [f.code for f in found] == ["ESP007"]  # the checks did run
    for a, b in zip(plain, sanitized, strict=True):
        assert torch.equal(a, b)


def test_torch_is_restored_after_the_block() -> None:
    from torch.nn.attention import flex_attention as module

    before = (module.create_block_mask, module.flex_attention, module.create_mask, torch.compile)
    with esper_lint.sanitize():
        assert module.flex_attention is not before[1]
    assert (module.create_block_mask, module.flex_attention, module.create_mask, torch.compile) == before


def test_no_graph_break_where_dynamo_traces_the_wrappers() -> None:
    from torch._dynamo.testing import CompileCounter

    def causal(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
        return q_idx >= kv_idx

    def counted() -> tuple[int, int]:
        from torch.nn.attention import flex_attention as module

        torch._dynamo.reset()
        counter = CompileCounter()
        block_mask = module.create_block_mask(causal, None, None, S, S, device="cpu")
        compiled_flex = torch.compile(module.flex_attention, backend="eager")

        @torch.compile(fullgraph=True, backend=counter)  # fullgraph: a graph break would raise
        def model(q: torch.Tensor) -> torch.Tensor:
            inner = module.create_block_mask(causal, None, None, S, S, device="cpu")
            return module.flex_attention(q, q, q, block_mask=block_mask) + compiled_flex(q, q, q, block_mask=inner)

        model(torch.randn(1, 1, S, 16))
        return counter.frame_count, counter.op_count

    plain = counted()
    with esper_lint.sanitize():
        assert counted() == plain == (1, plain[1])


def test_strict_block_raises_at_the_end_and_refuses_a_crashing_call() -> None:
    from torch.nn.attention import flex_attention as module

    def causal(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
        return q_idx >= kv_idx

    q = torch.randn(2, 1, S, 16)
    with pytest.raises(SanitizerError, match="ESP028"), esper_lint.sanitize(strict=True):
        block_mask = module.create_block_mask(causal, 4, None, S, S, device="cpu")
        with pytest.raises(SanitizerError, match="refused the flex_attention call"):
            torch.compile(module.flex_attention)(q, q, q, block_mask=block_mask)
    with pytest.raises(SanitizerError, match="ESP012"):

        @esper_lint.sanitize(strict=True)
        def returns_a_mask() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module.flex_attention(q, q, q, score_mod=lambda s, b, h, qi, ki: qi >= ki)

        returns_a_mask()


@pytest.mark.gpu
def test_the_checks_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from pathlib import Path

    cases = Path(__file__).resolve().parent.parent / "fixtures" / "sanitize"
    done = subprocess.run([sys.executable, "drive.py", "context", "cuda"], cwd=cases, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    results = json.loads(done.stdout.strip().splitlines()[-1])
    for key, found in results.items():
        case, variant = key.split("/")
        expected = [] if variant == "fixed" else [case.upper()]
        assert [f["code"] for f in found] == expected, (key, found)
