"""`esper-lint verify` end to end on the blueprints: real subprocesses, real torch, CPU, small sizes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch", reason="the runtime harness needs the `harness` extra (torch)")

from esper_lint.cli import main  # noqa: E402
from esper_lint.harness import HarnessError, VerifyOptions, VerifyReport, driver  # noqa: E402
from esper_lint.harness.report import render_text  # noqa: E402
from esper_lint.harness.source import Sources  # noqa: E402

pytestmark = pytest.mark.torch

BLUEPRINTS = Path(__file__).resolve().parent.parent / "fixtures" / "blueprints"
SMALL_CACHE = 2
SMALL_LENS = (16, 32, 48)  # one more than the cache holds: every pass evicts


def _run(
    file: str,
    factory: str,
    kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    seq_lens: tuple[int, ...] = SMALL_LENS,
    iterations: int = 2,
) -> dict[str, Any]:
    options = VerifyOptions(
        path=BLUEPRINTS / file,
        factory=factory,
        kwargs={"dim": 16, "n_heads": 2, "cache_size": SMALL_CACHE} if kwargs is None else kwargs,
        input_shape=(1, None, 16),
        seq_lens=seq_lens,
        iterations=iterations,
        latency_rounds=1,
        device=device,
    )
    return driver.run(options)


@pytest.fixture(scope="module")
def seed_cli(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict[str, Any], Path]:
    """The seed exactly as the README runs it (8-entry cache, 9 lengths), with small tensors."""
    out = tmp_path_factory.mktemp("seed")
    args = [
        "verify",
        str(BLUEPRINTS / "transformer_seed.py"),
        "--factory",
        "make_transformer_seed",
        "--kwargs",
        '{"dim": 16, "n_heads": 2}',
        "--input-shape",
        "1,T,16",
        "--seq-lens",
        "16,32,48,64,80,96,112,128,144",
        "--iterations",
        "20",
        "--latency-rounds",
        "5",
        "--device",
        "cpu",
        "--json",
        str(out / "report.json"),
        "--plot",
        str(out / "memory.png"),
    ]
    result = CliRunner().invoke(main, args)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    return result.exit_code, result.output, report, out


def test_seed_is_equivalent_and_keeps_its_mask_function(seed_cli: tuple[int, str, dict[str, Any], Path]) -> None:
    code, output, report, out = seed_cli
    assert code == 0, output
    assert report["equivalent"] is True and report["mask_mod_retained"] is True
    assert report["masks_consistent"] is True
    assert report["max_abs_diff"] == 0.0 and report["comparison"]["bit_identical"]
    assert report["comparison"]["block_masks_equal"] and report["comparison"]["weights_identical"]
    assert report["device"] == "cpu" and report["torch_version"] == torch.__version__
    assert set(report["variants"]) == {"original", "fixed"}
    assert report["fix"]["changed"] and report["fix"]["fixes_applied"] == 1
    assert "equivalent:         true" in output and "mask_mod_retained:  true" in output
    assert (out / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The Python API's report carries exactly the JSON's fields.
    assert [f.name for f in fields(VerifyReport)] == list(report)
    assert VerifyReport(**report).ok
    # stderr is not a terminal here: no progress bar, not even its label.
    assert "long-running inference" not in output


def test_seed_retention_before_and_after_the_fix(seed_cli: tuple[int, str, dict[str, Any], Path]) -> None:
    _, _, report, _ = seed_cli
    original = report["variants"]["original"]["retention"]
    fixed = report["variants"]["fixed"]["retention"]
    lens = 9
    # First forward at 16 (reused by the first pass), then 9 lengths through an 8-entry LRU: every access misses.
    misses = 2 * lens
    for retention in (original, fixed):
        assert retention["mask_mod_is_function_passed"] and retention["function_alive_while_cached"]
        assert retention["cache_misses"] == misses
        assert retention["freed_without_gc"] and retention["bytes_held_until_gc"] == 0
        assert retention["captures"] == []
    # Nested: one new function per miss, alive as long as its cached BlockMask (8), dead after eviction.
    assert original["distinct_functions_created"] == misses
    assert original["functions_alive"] == 8
    assert not original["function_alive_after_eviction"]
    # Hoisted: one function for the whole run.
    assert fixed["distinct_functions_created"] == 1 and fixed["functions_alive"] == 1
    assert fixed["function_alive_after_eviction"]


def test_seed_long_run_and_latency_are_reported(seed_cli: tuple[int, str, dict[str, Any], Path]) -> None:
    _, output, report, _ = seed_cli
    for name in ("original", "fixed"):
        memory = report["variants"][name]["memory"]
        assert memory["iterations"] == 20 and memory["samples"][-1]["iteration"] == 20
        assert memory["block_mask_builds"] == 20  # 9 lengths cycling through 8 entries: every forward misses
        # 20 forwards say nothing about a growth rate: none is reported, and the report says so.
        assert not memory["growth_measured"] and memory["growth_per_1000_iterations"] == {}
        assert memory["growth_note"].startswith("too short to tell: 10 forwards after warm-up")
    assert "memory growth: too short to tell" in output and "/ 1k" not in output
    assert report["variants"]["original"]["memory"]["distinct_functions_created"] == 20
    assert report["variants"]["fixed"]["memory"]["distinct_functions_created"] == 1
    latency = report["latency"]
    assert latency["pairs"] == 5 and latency["original_median_ms"] > 0 and latency["fixed_median_ms"] > 0
    low, high = report["latency_ratio_ci"]
    assert low <= report["latency_ratio"] == latency["ratio_fixed_over_original"] <= high
    assert report["latency_significant"] is (not low <= 1.0 <= high)
    # On the CPU the verdict is on CPU time (wall time on a shared machine measures the wait for a core);
    # the wall-clock ratio is reported beside it.
    assert latency["clock"] == "process CPU time" and latency["original_median_cpu_ms"] > 0
    wall_low, wall_high = latency["wall_ratio_ci95"]
    assert wall_low <= latency["wall_ratio"] <= wall_high
    assert f"latency: {latency['verdict']}" in output


def test_growth_is_reported_with_its_spread_from_enough_forwards() -> None:
    # One length: after the first forward every one is a cache hit, so 120 forwards stay cheap.
    report = _run(
        "transformer_seed.py", "make_transformer_seed", {"dim": 16, "n_heads": 2}, seq_lens=(16,), iterations=120
    )
    for name in ("original", "fixed"):
        memory = report["variants"][name]["memory"]
        assert memory["growth_measured"] and memory["measured_iterations"] == 120 - memory["warmup_iterations"] >= 100
        assert memory["growth_note"].startswith(f"from {memory['measured_iterations']} forwards after")
        for key in ("tracemalloc_bytes", "rss_bytes"):
            growth = memory["growth_per_1000_iterations"][key]
            assert growth["low"] <= growth["per_1000"] <= growth["high"]
    table = render_text(report)
    assert "Python heap growth / 1k forwards" in table and "    spread" in table and "too short" not in table


def test_self_capture_is_a_cycle_that_only_the_gc_frees() -> None:
    report = _run("seed_captures_self.py", "make_self_capture_seed")
    assert report["equivalent"] and not report["fix"]["changed"]
    assert any(f.startswith("ESP003") for f in report["fix"]["remaining_findings"])
    for name in ("original", "fixed"):
        retention = report["variants"][name]["retention"]
        assert {"name": "self", "type": "SlidingWindowSeed", "kind": "the module itself"} in retention["captures"]
        assert retention["freed_without_gc"] is False
        assert retention["bytes_held_until_gc"] == retention["weight_bytes"] > 0
        assert retention["freed_after_gc"] is True


def test_tensor_capture_keeps_each_cached_table_alive() -> None:
    report = _run("seed_captures_tensor.py", "make_tensor_capture_seed")
    retention = report["variants"]["original"]["retention"]
    # After the passes the LRU holds the last SMALL_CACHE lengths, each closure an int64 (T x T) table.
    expected = sum(8 * n * n for n in SMALL_LENS[-SMALL_CACHE:])
    assert retention["captured_tensor_bytes_alive"] == expected
    assert retention["functions_alive"] == SMALL_CACHE
    assert [c["name"] for c in retention["captures"]] == ["relative"]


def test_late_binding_outputs_differ_from_the_mask_as_built(tmp_path: Path) -> None:
    args = ["verify", str(BLUEPRINTS / "seed_late_binding.py"), "--factory", "make_late_binding_seed"]
    args += ["--kwargs", '{"dim": 16, "n_heads": 2, "cache_size": 2}', "--input-shape", "1,T,16"]
    args += ["--seq-lens", ",".join(map(str, SMALL_LENS)), "--iterations", "1", "--latency-rounds", "1"]
    args += ["-q", "--json", str(tmp_path / "report.json")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["equivalent"] is True  # no safe fix: both variants run the same (wrong) code
    assert report["masks_consistent"] is False
    for name in ("original", "fixed"):
        eq = report["variants"][name]["equivalence"]
        # Two windows (16, 64) per forward; the window-16 mask runs with the last window's mask_mod, which
        # computes a different mask wherever the sequence is longer than 16.
        assert eq["checked_calls"] == 2 * eq["forwards"]
        assert eq["stale_mask_mod_calls"] == 2 * sum(1 for n in SMALL_LENS if n > 16)
        assert eq["reference_mismatches"] > 0 and eq["reference_max_abs_diff"] > 1e-3
    assert any("no longer computes" in p for p in report["problems"])


def test_package_with_registry_runs_each_variant_once_through_the_python_api() -> None:
    # The API as a user's script calls it, in a fresh interpreter: the caller never imports torch.
    code = (
        "import json, sys; from esper_lint.harness import verify; "
        f"report = verify({str(BLUEPRINTS / 'seedpkg' / 'attention.py')!r}, factory='make_package_seed', "
        "kwargs={'dim': 16, 'n_heads': 2, 'cache_size': 2}, input_shape='1,T,16', seq_lens=(16, 32, 48), "
        "iterations=1, latency_rounds=1, device='cpu'); "
        "print(json.dumps({'torch_imported': 'torch' in sys.modules, 'report': report.to_dict()}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["torch_imported"] is False
    report = answer["report"]
    assert report["module"] == "seedpkg.attention"
    assert report["equivalent"] and report["fix"]["changed"]
    assert report["variants"]["fixed"]["retention"]["distinct_functions_created"] == 1


def test_a_fix_that_changes_behaviour_is_not_equivalent(monkeypatch: pytest.MonkeyPatch) -> None:
    original = (BLUEPRINTS / "seedpkg" / "attention.py").read_bytes()
    broken = original.replace(b"return q_idx >= kv_idx", b"return q_idx >= kv_idx - 16")
    assert broken != original
    monkeypatch.setattr(driver, "read_sources", lambda path: Sources(original, broken, 1, []))
    report = _run("seedpkg/attention.py", "make_package_seed")
    assert report["equivalent"] is False
    assert report["max_abs_diff"] > 0 and not report["comparison"]["bit_identical"]
    assert not report["comparison"]["block_masks_equal"]


def test_errors_say_whose_they_are_in_one_line(tmp_path: Path) -> None:
    model = tmp_path / "broken_model.py"
    model.write_text("def make():\n    raise ValueError('bad config')\n\n\ndef make_number():\n    return 3\n")
    options = VerifyOptions(path=model, factory="make", seq_lens=(16,), iterations=1, latency_rounds=1, device="cpu")
    module_error = (
        r"^original variant: ValueError: bad config \(at .*broken_model.py:2\) \(raised in the module under test\)$"
    )
    with pytest.raises(HarnessError, match=module_error):
        driver.run(options)
    # The harness's own checks are neither the module's error nor a harness fault, and read as English.
    with pytest.raises(
        HarnessError, match=r"^make_number\(\.\.\.\) returned an int; the factory must return an nn.Module"
    ) as caught:
        driver.run(VerifyOptions(**{**vars(options), "factory": "make_number"}))
    assert "raised in" not in str(caught.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA; this one has it")
def test_cuda_without_cuda_says_so_plainly() -> None:
    with pytest.raises(HarnessError) as caught:
        _run("transformer_seed.py", "make_transformer_seed", {"dim": 16, "n_heads": 2}, device="cuda")
    why = "was built without CUDA support" if torch.version.cuda is None else "sees no CUDA device"
    assert str(caught.value).startswith(f"--device cuda: torch {torch.__version__}") and why in str(caught.value)
    assert "raised in" not in str(caught.value) and "variant" not in str(caught.value)


def _cpp_compiler() -> str | None:
    return next((c for c in ("g++", "clang++", "c++") if shutil.which(c)), None)


def test_mask_reading_b_under_broadcast_batch_is_reported(tmp_path: Path) -> None:
    """ESP007 at run time: eager attention is right, the BlockMask (batch 0's) is not, compiled output is off."""
    if _cpp_compiler() is None:
        pytest.skip("torch.compile on CPU (inductor) needs a C++ compiler (g++ or clang++); none is on PATH")
    args = ["verify", str(BLUEPRINTS / "seed_batch_lengths.py"), "--factory", "make_batch_lengths_seed"]
    # Batch 2, T=64: sample 1 keeps 32 tokens, so blocks that batch 0 marks full cover its padding.
    args += ["--kwargs", '{"dim": 16, "n_heads": 2}', "--input-shape", "2,T,16", "--seq-lens", "64"]
    args += ["--iterations", "1", "--latency-rounds", "1", "--compile", "-q", "--json", str(tmp_path / "r.json")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["masks_consistent"] is False and report["equivalent"] is True  # no fix: same code twice
    for name in ("original", "fixed"):
        eq = report["variants"][name]["equivalence"]
        assert eq["broadcast_mask_calls"] == eq["checked_calls"] == eq["forwards"] > 0
        assert eq["reference_mismatches"] == 0 and eq["stale_mask_mod_calls"] == 0  # eager is right
        compiled = report["variants"][name]["compile"]
        assert compiled["forwards_off_eager"] == 1 and compiled["max_abs_diff_vs_eager"] > 1e-3  # rounding: ~1e-6
    assert any("B=None or H=None" in p and "ESP007" in p for p in report["problems"])
    assert any("compiled forwards differ from the eager ones" in p for p in report["problems"])


def test_the_batch_lengths_blueprint_is_fine_when_built_per_batch(tmp_path: Path) -> None:
    """The same blueprint with B=<batch> is consistent: the check above is about B=None, not the mask."""
    source = (BLUEPRINTS / "seed_batch_lengths.py").read_text().replace("B=None, H=None", "B=batch, H=None")
    fixed = tmp_path / "per_batch.py"
    fixed.write_text(source)
    options = VerifyOptions(
        path=fixed,
        factory="make_batch_lengths_seed",
        kwargs={"dim": 16, "n_heads": 2},
        input_shape=(2, None, 16),
        seq_lens=(64,),
        iterations=1,
        latency_rounds=1,
        device="cpu",
    )
    report = driver.run(options)
    assert report["masks_consistent"] is True, report["problems"]
    assert report["variants"]["original"]["equivalence"]["broadcast_mask_calls"] == 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_seed_on_cuda() -> None:
    report = _run(
        "transformer_seed.py", "make_transformer_seed", {"dim": 16, "n_heads": 2}, device="cuda", iterations=120
    )
    assert report["device"].startswith("cuda") and report["equivalent"] and report["mask_mod_retained"]
    assert "cuda_allocated_bytes" in report["variants"]["original"]["memory"]["growth_per_1000_iterations"]
