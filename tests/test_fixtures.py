"""fixtures/lint: every rule fires exactly where its `.expected` file says, and nowhere else.

Each fixture is checked through the real command line (what users run) and against the analysis directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from check_fixtures import FIXTURES, read_expected
from conftest import RunCli

from esper_lint.config import load_config
from esper_lint.engine import analyze_fast
from esper_lint.rules import ALL_RULES

FIXTURE_FILES = sorted(FIXTURES.glob("*.py"))
CONFIG = load_config(FIXTURES / "esper-lint.toml", FIXTURES)


def _lines(findings: list[tuple[int, int, str]]) -> list[str]:
    return [f"{line}:{column}: {code}" for line, column, code in findings]


def test_every_fixture_has_expectations() -> None:
    assert FIXTURE_FILES, "fixtures/lint is empty"
    missing = [f.name for f in FIXTURE_FILES if not f.with_suffix(".expected").exists()]
    assert not missing, f"fixtures without a .expected file: {missing}"


def test_every_rule_fires_somewhere_and_every_fixture_is_exercised() -> None:
    codes = {line.split()[-1] for f in FIXTURE_FILES for line in read_expected(f.with_suffix(".expected"))}
    assert codes == {r.code for r in ALL_RULES}


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.name)
def test_analysis_matches_expectations(fixture: Path) -> None:
    import ast

    text = fixture.read_text(encoding="utf-8")
    findings = analyze_fast(ast.parse(text), text, str(fixture), CONFIG)
    got = _lines([(f.span.line, f.span.column, f.code) for f in findings])
    assert got == read_expected(fixture.with_suffix(".expected"))


def test_command_line_matches_expectations(run_cli: RunCli, tmp_path: Path) -> None:
    # --no-cache: a cache left by an older build must not stand in for the analysis under test.
    result = run_cli(
        "--config", str(FIXTURES / "esper-lint.toml"), "--output-format", "json", "--no-cache", str(FIXTURES)
    )
    assert result.exit_code == 1, result.stderr
    got: dict[str, list[str]] = {}
    for f in json.loads(result.stdout):
        got.setdefault(Path(f["path"]).name, []).append(f"{f['line']}:{f['column']}: {f['code']}")
    expected = {f.name: read_expected(f.with_suffix(".expected")) for f in FIXTURE_FILES}
    assert {k: v for k, v in got.items()} == {k: v for k, v in expected.items() if v}


def test_blueprint_fixture_is_the_bundled_blueprint() -> None:
    blueprint = FIXTURES.parent / "blueprints" / "transformer_seed.py"
    assert (FIXTURES / "seed_blueprint.py").read_text() == blueprint.read_text()
