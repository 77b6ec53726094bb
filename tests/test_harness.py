"""`esper-lint verify` without running a model: option parsing, import roots, fixed sources, errors."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper_lint.cli import main
from esper_lint.harness import HarnessError, driver
from esper_lint.harness.options import parse_input_shape, parse_kwargs, parse_seq_lens
from esper_lint.harness.source import locate, read_sources

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
    monkeypatch.setitem(sys.modules, "esper_lint.fix", types.ModuleType("esper_lint.fix"))
    with pytest.raises(HarnessError, match="no fixer"):
        read_sources(BLUEPRINTS / "transformer_seed.py")


def test_cli_without_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = driver.importlib.util.find_spec
    monkeypatch.setattr(driver.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name))
    result = CliRunner().invoke(main, ["verify", str(BLUEPRINTS / "transformer_seed.py"), "--factory", "x"])
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
    import subprocess

    modules = "esper_lint.cli, esper_lint.harness.driver, esper_lint.harness.report, esper_lint.harness.cli_support"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
