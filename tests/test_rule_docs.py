"""Rule documentation: `esper-lint rule`, docs/rules/*.md and the README's table all come from the Rule classes."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from esper_lint.rules import ALL_RULES

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gen_rule_docs.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_rule_docs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_script()


def esper(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esper_lint", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_generated_rule_docs_are_up_to_date() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_page_is_what_the_cli_prints(rule: type) -> None:
    proc = esper("rule", rule.code)
    assert proc.returncode == 0
    page = (REPO / "docs" / "rules" / f"{rule.code}.md").read_text(encoding="utf-8")
    assert proc.stdout == page
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Fix safety", "## References"):
        assert heading in page
    assert re.search(r"^- https://\S+$", page, re.MULTILINE)
    # Names work as well as codes, case-insensitively.
    assert esper("rule", rule.name.upper()).stdout == page


def test_readme_rule_table_matches_the_rules() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert gen.TABLE_START in readme and gen.TABLE_END in readme, "README.md needs the rules-table markers"
    current = readme[readme.index(gen.TABLE_START) + len(gen.TABLE_START) : readme.index(gen.TABLE_END)]
    assert current.strip() == gen.readme_table().strip(), (
        "README.md's rule table is stale: run `python scripts/gen_rule_docs.py --readme README.md`"
    )


def test_table_rows_describe_each_rule() -> None:
    rows = [line for line in gen.readme_table().splitlines() if line.startswith("| [ESP")]
    assert len(rows) == len(ALL_RULES)
    for row, rule in zip(rows, ALL_RULES, strict=True):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0] == f"[{rule.code}](docs/rules/{rule.code}.md)"
        assert cells[1] == f"`{rule.name}`"
        assert cells[3] == ("on" if rule.default_enabled else "off")
        assert cells[4] == {"safe": "safe fix", "unsafe": "unsafe fix"}.get(rule.fix, "none")
        assert (REPO / cells[0].split("(")[1].rstrip(")")).is_file()


def test_rule_all_lists_every_rule_with_state_and_fix() -> None:
    proc = esper("rule", "--all")
    assert proc.returncode == 0
    lines = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.startswith("ESP")}
    assert list(lines) == [r.code for r in ALL_RULES]
    for rule in ALL_RULES:
        _, state, fix, name = lines[rule.code][:4]
        assert state == ("on" if rule.default_enabled else "off")
        assert fix == (rule.fix if rule.fix in ("safe", "unsafe") else "-")
        assert name == rule.name
    # Columns line up, two spaces apart at least, whatever the longest name or fix word.
    starts = {line.index(rule.summary) for rule in ALL_RULES for line in proc.stdout.splitlines() if rule.code in line}
    assert len(starts) == 1
    assert all("  " + r.summary in proc.stdout for r in ALL_RULES)


def test_rule_all_as_json() -> None:
    proc = esper("rule", "--all", "--output-format", "json")
    assert proc.returncode == 0
    rows = json.loads(proc.stdout)
    assert rows == [
        {"code": r.code, "name": r.name, "summary": r.summary, "default": r.default_enabled, "fix": r.fix}
        for r in ALL_RULES
    ]


def test_single_rule_as_json_includes_the_documentation() -> None:
    data = json.loads(esper("rule", "ESP004", "--output-format", "json").stdout)
    assert data["code"] == "ESP004"
    assert data["documentation"] == (REPO / "docs/rules/ESP004.md").read_text(encoding="utf-8")


def test_unknown_rule_is_a_usage_error() -> None:
    proc = esper("rule", "ESP999")
    assert proc.returncode == 2
    assert "unknown rule 'ESP999'" in proc.stderr and "rule --all" in proc.stderr


def test_script_rewrites_only_the_marked_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{gen.TABLE_START}\nold table\n{gen.TABLE_END}\n\nAfter.\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--readme", str(readme)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = readme.read_text()
    assert text == f"# Title\n\n{gen.TABLE_START}\n{gen.readme_table()}{gen.TABLE_END}\n\nAfter.\n"
    readme.write_text("# No markers\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--readme", str(readme)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "rules-table" in proc.stderr
    assert readme.read_text() == "# No markers\n"


def test_check_reports_stale_and_orphaned_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules_dir = tmp_path / "docs" / "rules"
    monkeypatch.setattr(gen, "RULES_DIR", rules_dir)
    monkeypatch.setattr(gen, "REPO", tmp_path)
    assert gen.main(["--check"]) == 1  # nothing generated yet
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    (rules_dir / "ESP001.md").write_text("edited by hand\n")
    (rules_dir / "ESP999.md").write_text("a rule that no longer exists\n")
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0
    assert not (rules_dir / "ESP999.md").exists()
    assert gen.main(["--check"]) == 0
