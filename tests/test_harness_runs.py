"""`esper-lint verify` end to end on the blueprints: real subprocesses, real torch, CPU, small sizes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch", reason="the runtime harness needs the `harness` extra (torch)")

from esper_lint.cli import main  # noqa: E402
from esper_lint.harness import HarnessError, VerifyOptions, driver  # noqa: E402
from esper_lint.harness.source import Sources  # noqa: E402

pytestmark = pytest.mark.torch

BLUEPRINTS = Path(__file__).resolve().parent.parent / "fixtures" / "blueprints"
SMALL_CACHE = 2
SMALL_LENS = (16, 32, 48)  # one more than the cache holds: every pass evicts


def _run(file: str, factory: str, kwargs: dict[str, Any] | None = None, device: str = "cpu") -> dict[str, Any]:
    options = VerifyOptions(
        path=BLUEPRINTS / file,
        factory=factory,
        kwargs={"dim": 32, "n_heads": 2, "cache_size": SMALL_CACHE} if kwargs is None else kwargs,
        input_shape=(1, None, 32),
        seq_lens=SMALL_LENS,
        iterations=12,
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
        '{"dim": 32, "n_heads": 2}',
        "--input-shape",
        "1,T,32",
        "--seq-lens",
        "16,32,48,64,80,96,112,128,144",
        "--iterations",
        "20",
        "--latency-rounds",
        "1",
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
    _, _, report, _ = seed_cli
    for name in ("original", "fixed"):
        memory = report["variants"][name]["memory"]
        assert memory["iterations"] == 20 and memory["samples"][-1]["iteration"] == 20
        assert memory["block_mask_builds"] == 20  # 9 lengths cycling through 8 entries: every forward misses
        assert {"tracemalloc_bytes", "rss_bytes"} <= set(memory["growth_per_1000_iterations"])
    assert report["variants"]["original"]["memory"]["distinct_functions_created"] == 20
    assert report["variants"]["fixed"]["memory"]["distinct_functions_created"] == 1
    latency = report["latency"]
    assert latency["forwards_per_variant"] == 9 and latency["original_median_ms"] > 0
    assert latency["ratio_fixed_over_original"] == pytest.approx(
        latency["fixed_median_ms"] / latency["original_median_ms"]
    )


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
    args += ["--kwargs", '{"dim": 32, "n_heads": 2, "cache_size": 2}', "--input-shape", "1,T,32"]
    args += ["--seq-lens", ",".join(map(str, SMALL_LENS)), "--iterations", "3", "--latency-rounds", "1"]
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


def test_package_with_registry_runs_each_variant_once() -> None:
    report = _run("seedpkg/attention.py", "make_package_seed")
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


def test_factory_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"factory 'nope' not found.*make_transformer_seed"):
        _run("transformer_seed.py", "nope")
    model = tmp_path / "broken_model.py"
    model.write_text("def make():\n    raise ValueError('bad config')\n")
    with pytest.raises(HarnessError, match=r"ValueError: bad config \(at .*broken_model.py:2\)"):
        driver.run(VerifyOptions(path=model, factory="make", seq_lens=(16,), iterations=1, latency_rounds=1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_seed_on_cuda() -> None:
    report = _run("transformer_seed.py", "make_transformer_seed", {"dim": 32, "n_heads": 2}, device="cuda")
    assert report["device"].startswith("cuda") and report["equivalent"] and report["mask_mod_retained"]
    assert "cuda_allocated_bytes" in report["variants"]["original"]["memory"]["growth_per_1000_iterations"]
