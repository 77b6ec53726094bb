"""`esper-lint verify` without running a model: option parsing, import roots, fixed sources, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from esper_lint.cli import main
from esper_lint.harness import HarnessError, VerifyOptions, cli_support, driver, options, report, verify
from esper_lint.harness.options import parse_input_shape, parse_kwargs, parse_seq_lens, type_phrase
from esper_lint.harness.source import check_factory, locate, read_sources
from esper_lint.harness.stats import MIN_PAIRS, median_ratio

BLUEPRINTS = Path(__file__).resolve().parent.parent / "fixtures" / "blueprints"


def test_input_shape_marks_the_sequence_dimension() -> None:
    assert parse_input_shape("2,T,64") == (2, None, 64)
    assert parse_input_shape("t, 8") == (None, 8)


@pytest.mark.parametrize("text", ["2,64", "2,T,T", "2,x,64", "0,T"])
def test_bad_input_shapes_are_refused(text: str) -> None:
    with pytest.raises(HarnessError, match="--input-shape"):
        parse_input_shape(text)


def test_seq_lens_and_kwargs() -> None:
    assert parse_seq_lens("16, 32,64") == (16, 32, 64)
    with pytest.raises(HarnessError, match="positive integer"):
        parse_seq_lens("16,-1")
    assert parse_kwargs('{"dim": 32}') == {"dim": 32}
    assert parse_kwargs(None) == {}
    with pytest.raises(HarnessError, match="JSON object"):
        parse_kwargs("[1]")
    with pytest.raises(HarnessError, match="not valid JSON"):
        parse_kwargs("{dim: 32}")


def test_locate_walks_up_packages() -> None:
    location = locate(BLUEPRINTS / "seedpkg" / "attention.py")
    assert (location.root, location.name, location.is_package) == (BLUEPRINTS, "seedpkg.attention", False)
    package = locate(BLUEPRINTS / "seedpkg" / "__init__.py")
    assert (package.name, package.is_package) == ("seedpkg", True)
    plain = locate(BLUEPRINTS / "transformer_seed.py")
    assert (plain.root, plain.name) == (BLUEPRINTS, "transformer_seed")


def test_locate_refuses_unimportable_files(tmp_path: Path) -> None:
    (tmp_path / "my-model.py").write_text("x = 1\n")
    with pytest.raises(HarnessError, match="not a valid module name"):
        locate(tmp_path / "my-model.py")
    with pytest.raises(HarnessError, match="not a Python file"):
        locate(tmp_path / "model.txt")


def test_fixed_source_hoists_the_seed_and_leaves_the_file_alone() -> None:
    path = BLUEPRINTS / "transformer_seed.py"
    before = path.read_bytes()
    sources = read_sources(path)
    assert path.read_bytes() == before
    assert sources.changed and sources.fixes_applied == 1
    assert sources.original == before
    # The nested `def causal` moved to column 0, before the factory.
    assert b"\ndef causal(" in sources.fixed and b"    def causal(" not in sources.fixed
    assert sources.fixed.index(b"\ndef causal(") < sources.fixed.index(b"def make_transformer_seed")


def test_unfixable_variant_keeps_its_source_and_says_why() -> None:
    sources = read_sources(BLUEPRINTS / "seed_late_binding.py")
    assert not sources.changed and sources.fixes_applied == 0
    assert any(r.startswith("ESP004") for r in sources.remaining)


def test_a_missing_fixer_is_an_error_not_equivalence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "esper_lint.fix.file_fixer", types.ModuleType("esper_lint.fix.file_fixer"))
    with pytest.raises(HarnessError, match="no fixer"):
        read_sources(BLUEPRINTS / "transformer_seed.py")


def test_cli_without_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = driver.importlib.util.find_spec
    monkeypatch.setattr(driver.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name))
    args = ["verify", str(BLUEPRINTS / "transformer_seed.py"), "--factory", "make_transformer_seed"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "pip install 'esper-lint[harness]'" in result.output
    assert "Traceback" not in result.output


def test_cli_missing_file_and_bad_options_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["verify", str(tmp_path / "nope.py"), "--factory", "f"])
    assert missing.exit_code == 2 and "no such file" in missing.output
    shape = runner.invoke(
        main, ["verify", str(BLUEPRINTS / "transformer_seed.py"), "--factory", "f", "--input-shape", "2,64"]
    )
    assert shape.exit_code == 2 and "must contain T" in shape.output


def test_importing_the_harness_does_not_import_torch() -> None:
    modules = "esper_lint.cli, esper_lint.harness.driver, esper_lint.harness.report, esper_lint.harness.cli_support"
    modules += ", esper_lint.harness.pytest_plugin"
    code = f"import sys, {modules}; from esper_lint.harness import verify; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# Static checks: a wrong factory or a file that does not parse fails before torch is looked for -----------


def _no_worker(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a worker was started for a run that static checks should have refused")


def test_wrong_factory_fails_before_torch_and_before_any_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver.importlib.util, "find_spec", lambda *a: pytest.fail("torch was looked for"))
    monkeypatch.setattr(driver, "_WorkerProcess", _no_worker)
    path = BLUEPRINTS / "transformer_seed.py"
    expected = r"^factory 'nope' not found in .*transformer_seed.py \(defined there: make_transformer_seed\); "
    with pytest.raises(HarnessError, match=expected + "pass --factory NAME$"):
        driver.run(VerifyOptions(path=path, factory="nope"))


def test_wrong_factory_is_one_line_from_the_real_cli_without_torch(tmp_path: Path) -> None:
    # torch made unimportable: the answer cannot have waited for it.
    code = (
        "import sys; sys.modules['torch'] = None; from esper_lint.cli import entry_point; "
        f"sys.argv = ['esper-lint', 'verify', {str(BLUEPRINTS / 'transformer_seed.py')!r}, '--factory', 'nope']; "
        "entry_point()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "factory 'nope' not found" in done.stderr


def test_a_file_that_does_not_parse_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "_WorkerProcess", _no_worker)
    broken = tmp_path / "model.py"
    broken.write_text("def make():\n    return (\n")
    with pytest.raises(HarnessError, match=r"model.py:2:\d+: the file does not parse \(.*\), so it cannot be"):
        driver.run(VerifyOptions(path=broken, factory="make"))


@pytest.mark.parametrize(
    ("source", "factory"),
    [
        ("from blocks import make_block as make\n", "make"),
        ("import torch\nif torch:\n    def make(): ...\nelse:\n    make = None\n", "make"),
        ("try:\n    from fast import make\nexcept ImportError:\n    from slow import make\n", "make"),
        ("class Block:\n    @classmethod\n    def build(cls): ...\n", "Block.build"),
        ("def setup():\n    global make\n    make = object\n", "make"),
        ("from blocks import *\n", "anything"),  # cannot tell statically: the import decides
        ("def __getattr__(name): ...\n", "anything"),
        ("globals()['make'] = object\n", "make"),
        ("with open('x') as make: ...\n", "make"),
    ],
)
def test_static_factory_check_accepts_every_way_a_module_binds_a_name(
    tmp_path: Path, source: str, factory: str
) -> None:
    path = tmp_path / "model.py"
    path.write_text(source)
    check_factory(path, factory, is_package=False)


def test_static_factory_check_refuses_names_bound_only_inside_functions(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text("def outer():\n    def make(): ...\n    return make\n\nclass _Private: ...\n")
    with pytest.raises(HarnessError, match=r"factory 'make' not found .*\(defined there: outer\)"):
        check_factory(path, "make", is_package=False)
    with pytest.raises(HarnessError, match="not a Python name"):
        check_factory(path, "make-block", is_package=False)


# Whose error, in plain English --------------------------------------------------------------------------


def test_type_phrases_use_the_right_article() -> None:
    assert [type_phrase(v) for v in (1, [], None, "x", object())] == ["an int", "a list", "None", "a str", "an object"]


@pytest.mark.parametrize(
    ("origin", "label"),
    [
        ("check", ""),
        ("module", " (raised in the module under test)"),
        ("harness", " (an error in esper-lint's harness, not in your module)"),
    ],
)
def test_worker_errors_say_whose_they_are(origin: str, label: str) -> None:
    error = "--device cuda: " + options.no_cuda_reason("2.13.0+cpu", None)
    assert error == "--device cuda: torch 2.13.0+cpu was built without CUDA support"
    prefix = "" if origin == "check" else "fixed variant: "
    assert str(driver._worker_error("fixed", {"error": error, "origin": origin})) == prefix + error + label


# Latency verdict ------------------------------------------------------------------------------------------


def test_the_same_code_timed_against_itself_is_no_significant_difference() -> None:
    noise = [0.8, 1.3, 0.95, 1.1, 1.02, 0.9, 1.2, 0.97, 1.05, 0.85, 1.15, 1.0]
    estimate = median_ratio(noise)
    assert estimate.low <= estimate.ratio <= estimate.high and estimate.low < 1.0 < estimate.high
    assert not estimate.significant and estimate.verdict().startswith("no significant difference (95% CI")


def test_a_real_slowdown_is_significant_and_its_interval_excludes_one() -> None:
    slower = [1.9, 2.1, 2.0, 1.8, 2.3, 2.05, 1.95, 2.2]
    estimate = median_ratio(slower)
    assert estimate.significant and 1.0 < estimate.low <= estimate.ratio <= estimate.high
    assert estimate.verdict().startswith("fixed is slower")
    assert median_ratio([1 / r for r in slower]).verdict().startswith("fixed is faster")


def test_a_growth_whose_spread_reaches_zero_is_marked_unclear() -> None:
    mib, kib = 2**20, 2**10
    assert report._growth({"per_1000": 10 * mib, "low": 0.0, "high": 30 * mib}) == "10.0 MiB (unclear)"
    assert report._growth({"per_1000": 700 * kib, "low": 500 * kib, "high": 900 * kib}) == "700.0 KiB"
    assert report._range({"per_1000": 1.0, "low": -kib, "high": 2 * kib}) == "-1.0 KiB .. 2.0 KiB"


def test_too_few_pairs_give_no_verdict() -> None:
    estimate = median_ratio([2.0] * (MIN_PAIRS - 1))
    assert not estimate.significant and "too few" in estimate.verdict()


# Progress, defaults and the Python API's own checks ----------------------------------------------------


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_goes_to_a_terminal_only(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    seen: list[Any] = []

    def fake_run(options: VerifyOptions, on_phase: Any) -> Any:
        seen.append(on_phase("long-running inference", 4))
        raise HarnessError("stop here")

    monkeypatch.setattr(cli_support.driver, "run", fake_run)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    with pytest.raises(HarnessError):
        cli_support.run_verify(VerifyOptions(path=BLUEPRINTS / "transformer_seed.py", factory="f"), None, None, False)
    assert callable(seen[0]) is terminal


def test_cli_defaults_are_the_harness_defaults() -> None:
    params = {p.name: p.default for p in main.commands["verify"].params}
    assert params["iterations"] == options.DEFAULT_ITERATIONS
    assert params["latency_rounds"] == options.DEFAULT_LATENCY_ROUNDS
    assert parse_seq_lens(str(params["seq_lens"])) == options.DEFAULT_SEQ_LENS
    assert parse_input_shape(str(params["input_shape"])) == VerifyOptions(path=Path("x.py"), factory="f").input_shape


@pytest.mark.parametrize(
    ("option", "message"),
    [({"device": "tpu"}, "device 'tpu'"), ({"dtype": "int8"}, "dtype"), ({"iterations": 0}, "iterations")],
)
def test_api_options_are_checked_like_the_cli_options(
    monkeypatch: pytest.MonkeyPatch, option: dict[str, Any], message: str
) -> None:
    monkeypatch.setattr(driver, "_WorkerProcess", _no_worker)
    with pytest.raises(HarnessError, match=message):
        verify(BLUEPRINTS / "transformer_seed.py", factory="make_transformer_seed", **option)


def test_the_plugin_is_inert_without_torch(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    code = (
        "import sys; sys.modules['torch'] = None; import pytest; "
        "import esper_lint.harness.pytest_plugin as plugin; "
        "assert not plugin.HARNESS_AVAILABLE and not hasattr(plugin, 'esper_verify'); "
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '--fixtures']) or pytest.main(['-q']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "esper_verify" not in done.stdout and "1 passed" in done.stdout


def test_ctrl_c_while_a_worker_exits_leaves_no_worker_running(tmp_path: Path) -> None:
    # Ctrl-C lands while the first worker is asked to exit: the second must not be left behind (it was).
    from esper_lint.core.interrupts import Interrupted

    workers = [driver._WorkerProcess(v, tmp_path) for v in driver.VARIANTS]

    first_wait = workers[0].proc.wait
    calls: list[float | None] = []

    def interrupted_wait(timeout: float | None = None) -> int:
        calls.append(timeout)
        if len(calls) == 1:
            raise Interrupted
        return first_wait(timeout)

    workers[0].proc.wait = interrupted_wait  # type: ignore[method-assign]
    try:
        with pytest.raises(Interrupted):
            driver._close_all(workers, kill=False)
    finally:
        workers[0].proc.wait = first_wait  # type: ignore[method-assign]
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait()
    assert workers[1].proc.returncode is not None
