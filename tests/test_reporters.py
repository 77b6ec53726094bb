"""Output formats, checked by parsing the real formats: GitHub workflow commands, SARIF 2.1.0 (validated
against the official schema), JUnit XML, `-o FILE`, and the text reporter's --statistics/--show-fixes/--quiet."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import NESTED
from hypothesis import given
from hypothesis import strategies as st

from esper_lint.core.findings import FileError, FileResult, Finding
from esper_lint.core.span import Span
from esper_lint.reporters import ReportContext, formats, get_reporter
from esper_lint.reporters.github import escape_data, escape_property
from esper_lint.reporters.sarif import file_fix, sarif_log
from esper_lint.rules import ALL_RULES
from esper_lint.runner import Mode, RunResult

REPO = Path(__file__).resolve().parents[1]
# The official SARIF 2.1.0 schema (OASIS), kept in the repository so the tests need nothing beside it.
SARIF_SCHEMA = REPO / "tests" / "data" / "sarif-schema-2.1.0.json"


# Two findings of different rules (ESP003 twice would dedupe), plus non-ASCII text before the argument.
MIXED = """\
from torch.nn.attention.flex_attention import create_block_mask


class M:
    def _mask(self, n):
        def window(b, h, q, kv):
            return (q - kv).abs() <= self.window
        return create_block_mask(window, None, None, n, n)


def build(n, label="é"):
    return create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)
"""

CLEAN = """\
from torch.nn.attention.flex_attention import create_block_mask


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def build(n):
    return create_block_mask(causal, None, None, n, n)
"""


def esper(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esper_lint", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "nested.py").write_text(NESTED)
    (tmp_path / "pkg" / "mixed.py").write_text(MIXED, encoding="utf-8")
    (tmp_path / "pkg" / "clean.py").write_text(CLEAN)
    return tmp_path


def json_findings(cwd: Path, *paths: str) -> list[dict[str, Any]]:
    proc = esper("check", "--output-format", "json", *paths, cwd=cwd)
    assert proc.returncode in (0, 1), proc.stderr
    findings: list[dict[str, Any]] = json.loads(proc.stdout)
    return findings


def test_every_advertised_format_is_registered() -> None:
    assert set(formats()) == {"text", "json", "github", "sarif", "junit"}


# --- GitHub Actions workflow commands ---------------------------------------------------------------

GITHUB_COMMAND = re.compile(r"^::(?P<level>error|warning|notice) (?P<props>[^:]*)::(?P<message>.*)$")


def _unescape(value: str) -> str:
    return value.replace("%2C", ",").replace("%3A", ":").replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")


def parse_github(output: str) -> list[dict[str, str]]:
    """Parse workflow commands the way the Actions runner does: split properties on `,` and `=`."""
    commands = []
    for line in output.splitlines():
        match = GITHUB_COMMAND.match(line)
        assert match, f"not a workflow command: {line!r}"
        props = dict(item.split("=", 1) for item in match["props"].split(","))
        command = {key: _unescape(value) for key, value in props.items()}
        command["level"] = match["level"]
        command["message"] = _unescape(match["message"])
        commands.append(command)
    return commands


def test_github_escaping_follows_the_actions_runner() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a,b:c%\n") == "a%2Cb%3Ac%25%0A"
    # `:` and `,` are legal in message data: only properties need them escaped.
    assert escape_data("a:b,c") == "a:b,c"


def test_github_annotations_match_the_findings(project: Path) -> None:
    proc = esper("check", "--output-format", "github", "pkg", cwd=project)
    assert proc.returncode == 1, proc.stderr
    commands = parse_github(proc.stdout)
    expected = json_findings(project, "pkg")
    assert len(expected) == 3
    assert len(commands) == len(expected)
    for command, finding in zip(commands, expected, strict=True):
        assert command["level"] == "error"
        assert command["file"] == finding["path"]
        assert (int(command["line"]), int(command["col"])) == (finding["line"], finding["column"])
        assert (int(command["endLine"]), int(command["endColumn"])) == (finding["end_line"], finding["end_column"])
        assert finding["code"] in command["title"]
        assert command["message"].endswith(f"{finding['code']} {finding['message']}")


def test_github_escapes_paths_that_would_break_the_command(tmp_path: Path) -> None:
    # A path with `,` and `:` would otherwise end the `file=` property early; `%` must not be decoded twice.
    odd = tmp_path / "odd,dir:100%"
    odd.mkdir()
    (odd / "m.py").write_text(NESTED)
    proc = esper("check", "--output-format", "github", "odd,dir:100%/m.py", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    [command] = parse_github(proc.stdout)
    assert command["file"] == "odd,dir:100%/m.py"
    assert command["line"] == "8"


def test_github_annotates_files_that_could_not_be_checked(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("from torch.nn.attention.flex_attention import create_block_mask\ndef f(:\n")
    proc = esper("check", "--output-format", "github", "broken.py", cwd=tmp_path)
    assert proc.returncode == 2
    [command] = parse_github(proc.stdout)
    assert command["file"] == "broken.py"
    assert command["line"] == "2"
    assert "syntax error" in command["title"]
    assert "broken.py" in proc.stderr  # the plain error line still goes to stderr


def test_github_prints_nothing_for_a_clean_run(project: Path) -> None:
    proc = esper("check", "--output-format", "github", "pkg/clean.py", cwd=project)
    assert (proc.returncode, proc.stdout) == (0, "")


# --- SARIF ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def assert_valid(validator: jsonschema.protocols.Validator, log: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def test_sarif_validates_and_matches_the_findings(project: Path, sarif_validator: Any) -> None:
    proc = esper("check", "--output-format", "sarif", "pkg", cwd=project)
    assert proc.returncode == 1, proc.stderr
    log = json.loads(proc.stdout)
    assert_valid(sarif_validator, log)
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"
    rules = run["tool"]["driver"]["rules"]
    expected = json_findings(project, "pkg")
    assert len(run["results"]) == len(expected) == 3
    for result, finding in zip(run["results"], expected, strict=True):
        assert result["ruleId"] == finding["code"]
        assert rules[result["ruleIndex"]]["id"] == finding["code"]
        assert result["message"]["text"] == finding["message"]
        assert result["properties"]["fixable"] is finding["fixable"]
        [location] = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert (artifact["uri"], artifact["uriBaseId"]) == (finding["path"], "%SRCROOT%")
        region = location["physicalLocation"]["region"]
        assert (region["startLine"], region["startColumn"], region["endLine"], region["endColumn"]) == (
            finding["line"],
            finding["column"],
            finding["end_line"],
            finding["end_column"],
        )
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_sarif_rule_metadata_comes_from_the_rule_classes(sarif_validator: Any) -> None:
    log = sarif_log(RunResult())
    assert_valid(sarif_validator, log)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [rule.code for rule in ALL_RULES]
    for descriptor, rule in zip(rules, ALL_RULES, strict=True):
        assert descriptor["name"] == rule.name
        assert descriptor["shortDescription"]["text"] == rule.summary
        assert rule.what_it_does in descriptor["fullDescription"]["text"]
        assert descriptor["help"]["markdown"] == rule.documentation()
        assert "helpUri" not in descriptor  # no project URL declared: no link rather than a wrong one
        assert descriptor["defaultConfiguration"]["enabled"] is rule.default_enabled
        assert descriptor["properties"]["fix"] == rule.fix
    assert log["runs"][0]["results"] == []


def test_sarif_reports_unreadable_files_as_notifications(tmp_path: Path, sarif_validator: Any) -> None:
    (tmp_path / "broken.py").write_text("from torch.nn.attention.flex_attention import create_block_mask\ndef f(:\n")
    proc = esper("check", "--output-format", "sarif", "broken.py", "missing.py", cwd=tmp_path)
    assert proc.returncode == 2
    log = json.loads(proc.stdout)
    assert_valid(sarif_validator, log)
    [invocation] = log["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    uris = sorted(n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for n in notes)
    assert uris == ["broken.py", "missing.py"]


def test_sarif_uris_are_percent_encoded(tmp_path: Path, sarif_validator: Any) -> None:
    (tmp_path / "my dir").mkdir()
    (tmp_path / "my dir" / "m#1.py").write_text(NESTED)
    proc = esper("check", "--output-format", "sarif", "my dir", cwd=tmp_path)
    log = json.loads(proc.stdout)
    assert_valid(sarif_validator, log)
    [result] = log["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "my%20dir/m%231.py"


def _finding(path: str, line: int, fixable: bool) -> Finding:
    return Finding(path, Span(line, 5, line, 11), "ESP001", "nested-mask-mod", "msg", fixable)


def apply_replacements(text: str, fix: dict[str, Any]) -> str:
    [change] = fix["artifactChanges"]
    # Replacements are given against the original text; apply from the end so offsets stay valid.
    for r in sorted(change["replacements"], key=lambda r: r["deletedRegion"]["charOffset"], reverse=True):
        start, length = r["deletedRegion"]["charOffset"], r["deletedRegion"]["charLength"]
        text = text[:start] + r.get("insertedContent", {}).get("text", "") + text[start + length :]
    return text


def test_sarif_carries_each_findings_own_fix(sarif_validator: Any) -> None:
    old = "import x\n\ndef build(n):\n    def causal(b, h, q, kv):\n        return q >= kv\n    return f(causal)\n"
    new = "import x\n\ndef causal(b, h, q, kv):\n    return q >= kv\n\ndef build(n):\n    return f(causal)\n"
    fixable = _finding("pkg/m.py", 6, True)
    fixable.fixed_source = new.encode()
    manual = _finding("pkg/m.py", 6, False)
    manual.fixed_source = new.encode()  # not fixable: never offered, whatever was computed
    result = FileResult("pkg/m.py", findings=[fixable, manual], original_source=old.encode())
    log = sarif_log(RunResult(files=[result]))
    assert_valid(sarif_validator, log)
    fixable_result, manual_result = log["runs"][0]["results"]
    assert "fixes" not in manual_result
    [fix] = fixable_result["fixes"]
    assert apply_replacements(old, fix) == new
    assert fix["artifactChanges"][0]["artifactLocation"]["uri"] == "pkg/m.py"
    # The reporter attaches edits only to a check run: after --fix the findings describe the new text.
    run = RunResult(files=[result])
    assert "fixes" in json.loads(get_reporter("sarif")(run, ReportContext(mode=Mode.CHECK)))["runs"][0]["results"][0]
    for mode in (Mode.FIX, Mode.DIFF):
        after = json.loads(get_reporter("sarif")(run, ReportContext(mode=mode)))["runs"][0]["results"]
        assert all("fixes" not in r for r in after)


TWO_FIXABLE = """\
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    full = create_block_mask(lambda b, h, q, kv: q >= 0, None, None, n, n)
    return create_block_mask(causal, None, None, n, n), full
"""


def test_sarif_results_in_one_file_each_carry_only_their_own_edit(tmp_path: Path, sarif_validator: Any) -> None:
    """ESP001 and ESP002 in one file used to carry the same whole-file edit; each now fixes itself only."""
    (tmp_path / "m.py").write_text(TWO_FIXABLE)
    proc = esper("check", "--output-format", "sarif", "m.py", cwd=tmp_path)
    log = json.loads(proc.stdout)
    assert_valid(sarif_validator, log)
    results = log["runs"][0]["results"]
    assert sorted(r["ruleId"] for r in results) == ["ESP001", "ESP002"]
    edited = {}
    for result in results:
        [fix] = result["fixes"]
        text = apply_replacements(TWO_FIXABLE, fix)
        compile(text, "m.py", "exec")
        (tmp_path / "m.py").write_text(text)
        left = [f["code"] for f in json_findings(tmp_path, "m.py")]
        other = {"ESP001": "ESP002", "ESP002": "ESP001"}[result["ruleId"]]
        assert left == [other], (result["ruleId"], text)  # its own finding is fixed, the other one is not
        edited[result["ruleId"]] = text
    assert edited["ESP001"] != edited["ESP002"]


def test_sarif_paths_are_relative_to_the_project_root(tmp_path: Path, sarif_validator: Any) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(NESTED)
    (tmp_path / "pkg" / "bad.py").write_bytes(b"# create_block_mask\nx = '\xff'\n")
    proc = esper("check", "--output-format", "sarif", "m.py", "bad.py", cwd=tmp_path / "pkg")
    log = json.loads(proc.stdout)
    assert_valid(sarif_validator, log)
    [run] = log["runs"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"
    [result] = run["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "pkg/m.py",
        "uriBaseId": "%SRCROOT%",
    }
    [note] = run["invocations"][0]["toolExecutionNotifications"]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "pkg/bad.py"
    # The decode error says once that the file was not checked.
    assert note["message"]["text"].lower().count("not checked") == 1, note["message"]["text"]


def test_sarif_help_uri_is_the_rules_own_page(monkeypatch: pytest.MonkeyPatch, sarif_validator: Any) -> None:
    from esper_lint.reporters import sarif

    monkeypatch.setattr(sarif, "_project_urls", lambda: {"repository": "https://example.org/team/esper-lint"})
    log = sarif_log(RunResult())
    assert_valid(sarif_validator, log)
    for descriptor in log["runs"][0]["tool"]["driver"]["rules"]:
        code = descriptor["id"]
        assert descriptor["helpUri"] == f"https://example.org/team/esper-lint/blob/HEAD/docs/rules/{code}.md"
        assert (REPO / "docs" / "rules" / f"{code}.md").is_file()
    monkeypatch.setattr(sarif, "_project_urls", lambda: {"documentation": "https://docs.example.org/esper-lint"})
    [first, *_] = sarif_log(RunResult())["runs"][0]["tool"]["driver"]["rules"]
    assert first["helpUri"] == "https://docs.example.org/esper-lint/rules/ESP001.md"


line_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=8)
lines = st.lists(st.builds(lambda s, end: s + end, line_text, st.sampled_from(["\n", "\r\n", ""])), max_size=8)


@given(lines, lines)
def test_sarif_fix_replacements_rebuild_the_new_text(old_lines: list[str], new_lines: list[str]) -> None:
    old, new = "".join(old_lines), "".join(new_lines)
    result = FileResult("m.py", original_source=old.encode(), new_source=new.encode())
    fix = file_fix(result)
    if old == new:
        assert fix is None
    else:
        assert fix is not None
        assert apply_replacements(old, fix) == new


# --- JUnit ------------------------------------------------------------------------------------------


def test_junit_has_one_failing_testcase_per_finding(project: Path) -> None:
    proc = esper("check", "--output-format", "junit", "pkg", cwd=project)
    assert proc.returncode == 1, proc.stderr
    root = ET.fromstring(proc.stdout.encode())
    expected = json_findings(project, "pkg")
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "3", "0")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["pkg/mixed.py", "pkg/nested.py"]
    cases = [case for suite in suites for case in suite.findall("testcase")]
    assert len(cases) == len(expected)
    for case, finding in zip(cases, expected, strict=True):
        failure = case.find("failure")
        assert failure is not None
        assert case.get("classname") == finding["path"]
        assert case.get("line") == str(finding["line"])
        assert failure.get("type") == finding["code"]
        assert failure.get("message") == finding["message"]
        where = f"{finding['path']}:{finding['line']}:{finding['column']}"
        assert failure.text == f"{where}: {finding['code']} {finding['message']}"


def test_junit_clean_run_is_one_passing_testcase(project: Path) -> None:
    proc = esper("check", "--output-format", "junit", "pkg/clean.py", cwd=project)
    assert proc.returncode == 0
    root = ET.fromstring(proc.stdout.encode())
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "0", "0")
    [case] = root.iter("testcase")
    assert list(case) == []


def test_junit_reports_unreadable_files_as_errors(tmp_path: Path) -> None:
    source = b"from torch.nn.attention.flex_attention import create_block_mask\nx = '\xff'\n"  # not UTF-8
    (tmp_path / "latin.py").write_bytes(source)
    proc = esper("check", "--output-format", "junit", "latin.py", cwd=tmp_path)
    assert proc.returncode == 2
    root = ET.fromstring(proc.stdout.encode())
    assert root.get("errors") == "1"
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.get("type") == "decode-error"


# --- -o FILE ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif", "junit"])
def test_output_file_holds_the_same_report_as_stdout(project: Path, fmt: str) -> None:
    to_stdout = esper("check", "--output-format", fmt, "pkg", cwd=project)
    to_file = esper("check", "--output-format", fmt, "-o", "reports/out.txt", "pkg", cwd=project)
    assert to_file.returncode == to_stdout.returncode == 1
    assert to_file.stdout == ""
    assert (project / "reports" / "out.txt").read_text(encoding="utf-8") == to_stdout.stdout


def test_output_file_that_cannot_be_written_is_an_error(project: Path) -> None:
    (project / "taken").write_text("a file, not a folder")
    proc = esper("check", "-o", "taken/out.json", "--output-format", "json", "pkg", cwd=project)
    assert proc.returncode == 2
    assert "cannot write report" in proc.stderr


# --- text reporter options --------------------------------------------------------------------------


def test_statistics_counts_per_code(project: Path) -> None:
    proc = esper("check", "--statistics", "pkg", cwd=project)
    assert proc.returncode == 1
    rows = [line.split("\t") for line in proc.stdout.splitlines() if "\t" in line]
    assert sorted(rows) == [
        ["1", "ESP001", "[*] nested-mask-mod"],
        ["1", "ESP002", "[*] lambda-mask-mod"],
        ["1", "ESP003", "mask-mod-captures-self"],
    ]
    assert "pkg/" not in proc.stdout  # as ruff: the table replaces the listing
    assert proc.stdout.rstrip().endswith("Found 3 findings (2 fixable with --fix).")


def test_quiet_prints_findings_only(project: Path) -> None:
    proc = esper("check", "--quiet", "pkg", cwd=project)
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    assert len(out) == 3 and all(re.match(r"^pkg/\w+\.py:\d+:\d+: ESP00\d ", line) for line in out)
    clean = esper("check", "-q", "pkg/clean.py", cwd=project)
    assert (clean.returncode, clean.stdout) == (0, "")


def test_show_fixes_lists_fixed_files() -> None:
    run = RunResult(files=[FileResult("a.py", fixed=2), FileResult("b.py"), FileResult("c.py", fixed=1)])
    text = get_reporter("text")(run, ReportContext(mode=Mode.FIX, show_fixes=True))
    assert "Fixed:\n  a.py: 2 findings\n  c.py: 1 finding\n" in text
    assert "Fixed 3 findings in 2 files." in text
    without = get_reporter("text")(run, ReportContext(mode=Mode.FIX))
    assert "Fixed:" not in without


def test_show_fixes_after_a_real_fix(project: Path) -> None:
    proc = esper("check", "--fix", "--show-fixes", "pkg/nested.py", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Fixed:\n  pkg/nested.py: 1 finding\n" in proc.stdout
    assert "def causal" in (project / "pkg" / "nested.py").read_text().split("def build")[0]


def test_machine_formats_keep_file_errors_off_stdout(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("from torch.nn.attention.flex_attention import create_block_mask\ndef f(:\n")
    proc = esper("check", "--output-format", "json", "broken.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == []
    assert "broken.py:2" in proc.stderr


def test_reporters_accept_errors_without_positions() -> None:
    run = RunResult(errors=[FileError("gone.py", "no such file or directory", kind="io-error")])
    for name in formats():
        out = get_reporter(name)(run, ReportContext())
        assert out.endswith("\n")
        if name not in ("json", "text"):  # these list findings only; the CLI prints errors to stderr
            assert "gone.py" in out
