"""What teams adopting esper-lint from ruff expect: --add-noqa, file-level `# esper-lint: noqa`,
--show-settings / --show-files, --exclude / --per-file-ignores on the command line, --statistics, --diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import NESTED, RunCli, write
from test_cli import LOOP_AND_LAMBDA

from esper_lint.rules import ALL_RULES

# Three findings in one file: ESP001 (8:30, fixable), ESP004 (12:32, not fixable), ESP002 (13:39, fixable).
MIXED = NESTED + "\n\n" + LOOP_AND_LAMBDA.split("\n", 3)[3].replace("def build(", "def build2(")


def findings(run_cli: RunCli, *args: str) -> list[tuple[str, int, str]]:
    result = run_cli("--output-format", "json", "--no-cache", *args)
    assert result.exit_code in (0, 1), result.stderr
    return [(f["path"], f["line"], f["code"]) for f in json.loads(result.stdout)]


# --- --add-noqa -------------------------------------------------------------------------------------


def test_add_noqa_then_a_second_run_is_clean(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"m.py": MIXED})
    (tmp_path / "crlf.py").write_bytes(NESTED.replace("\n", "\r\n").encode())
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbf" + NESTED.encode())
    result = run_cli("--add-noqa", "--no-cache", ".")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Added 5 noqa directives.\n", "")
    lines = (tmp_path / "m.py").read_text().splitlines()
    assert lines[7].endswith("n, n)  # noqa: ESP001") and lines[11].endswith("# noqa: ESP004")
    assert (tmp_path / "crlf.py").read_bytes().endswith(b"n, n)  # noqa: ESP001\r\n")
    assert (tmp_path / "bom.py").read_bytes().startswith(b"\xef\xbb\xbf")
    assert findings(run_cli, ".") == []
    again = run_cli("--add-noqa", "--no-cache", ".")
    assert again.stdout == "Added 0 noqa directives.\n"
    compile((tmp_path / "m.py").read_text(), "m.py", "exec")


def test_add_noqa_merges_with_an_existing_noqa_comment(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"m.py": NESTED.replace("n, n)\n", "n, n)  # noqa: ESP004 (kept)\n")})
    assert run_cli("--add-noqa", "--no-cache", "m.py").exit_code == 0
    assert (tmp_path / "m.py").read_text().splitlines()[7].endswith("n, n)  # noqa: ESP004, ESP001 (kept)")
    assert findings(run_cli, "m.py") == []


def test_add_noqa_never_writes_into_a_string(run_cli: RunCli, tmp_path: Path) -> None:
    """A finding whose line ends inside a triple-quoted string cannot take a comment: warned, file kept."""
    source = NESTED.replace("n, n)\n", 'n, n), """\n    text"""\n')
    write(tmp_path, {"m.py": source})
    result = run_cli("--add-noqa", "--no-cache", "m.py")
    assert result.exit_code == 0 and "m.py:8: no `# noqa` added" in result.stderr
    assert (tmp_path / "m.py").read_text() == source


def test_add_noqa_reports_files_it_cannot_check(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"m.py": NESTED, "broken.py": "# create_block_mask\ndef f(:\n"})
    result = run_cli("--add-noqa", "--no-cache", ".")
    assert result.exit_code == 2 and "broken.py:2:" in result.stderr
    assert "# noqa: ESP001" in (tmp_path / "m.py").read_text()


def test_add_noqa_is_exclusive_with_fix(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("--add-noqa", "--fix", ".")
    assert result.exit_code == 2 and "--fix and --add-noqa cannot be used together" in result.stderr


# --- file-level suppression -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("comment", "left"),
    [
        ("# esper-lint: noqa", []),
        ("# esper-lint: noqa: ESP001", [12, 13]),
        ("#ESPER-LINT:NOQA: ESP001, ESP002", [12]),
        ("x = '# esper-lint: noqa'  # in a string: no suppression", [8, 12, 13]),
    ],
)
def test_file_level_noqa_anywhere_in_the_file(run_cli: RunCli, tmp_path: Path, comment: str, left: list[int]) -> None:
    write(tmp_path, {"m.py": MIXED.replace("\n\n\ndef build2", f"\n\n{comment}\n\ndef build2", 1)})
    # The comment's line moves the findings after it down by one.
    assert [line for _, line, _ in findings(run_cli, "m.py")] == [n + (n > 8) for n in left]


def test_file_level_noqa_also_holds_for_fix(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"m.py": NESTED + "# esper-lint: noqa: ESP001\n"})
    assert run_cli("--fix", "--no-cache", "m.py").exit_code == 0
    assert (tmp_path / "m.py").read_text() == NESTED + "# esper-lint: noqa: ESP001\n"


# --- --show-settings, --show-files ------------------------------------------------------------------


def test_show_settings_says_where_each_value_came_from(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[tool.esper-lint]\nextend-select = ['ESP006']\ntimeout = 5\n"})
    result = run_cli("--show-settings", "--ignore", "ESP003", "--per-file-ignores", "tests/*:ESP001")
    assert result.exit_code == 0, result.stderr
    toml = tmp_path.resolve() / "pyproject.toml"
    settings = {line.split(" = ")[0]: line.split(" = ", 1)[1] for line in result.stdout.splitlines() if " = " in line}
    selected = sorted({r.code for r in ALL_RULES if r.default_enabled} - {"ESP003"} | {"ESP006"})
    assert settings["select"] == (json.dumps(selected) + f"  # {toml} (extend-select); command line (--ignore)")
    assert settings["timeout"] == f"5.0  # {toml} (timeout)"
    assert settings["per-file-ignores"] == '{"tests/*": ["ESP001"]}  # command line (--per-file-ignores)'
    assert settings["force-exclude"] == "false  # default"
    assert f"# configuration file: {toml}" in result.stdout
    assert settings["unsafe-fixes"] == "false  # default"
    unsafe = run_cli("--show-settings", "--unsafe-fixes").stdout
    assert "unsafe-fixes = true  # command line (--unsafe-fixes)" in unsafe.splitlines()


def test_show_files_lists_what_would_be_checked(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"b.py": "", "a/m.pyi": "", "build/x.py": "", "notes.txt": ""})
    result = run_cli("--show-files")
    assert (result.exit_code, result.stdout) == (0, "a/m.pyi\nb.py\n")


# --- --exclude and --per-file-ignores on the command line -------------------------------------------


def test_exclude_and_per_file_ignores_on_the_command_line(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"src/m.py": NESTED, "tests/t.py": NESTED, "build/b.py": NESTED})
    write(tmp_path, {"pyproject.toml": "[tool.esper-lint]\nper-file-ignores = { 'src/*' = ['ESP001'] }\n"})
    assert [p for p, _, _ in findings(run_cli)] == ["tests/t.py"]
    # --exclude replaces `exclude` (so build/ is walked again); --per-file-ignores replaces the table.
    assert [p for p, _, _ in findings(run_cli, "--exclude", "tests", "--per-file-ignores", "build/*:ESP")] == [
        "src/m.py"
    ]


@pytest.mark.parametrize("value", ["tests", "tests/*:", ":ESP001", "tests/*:NOPE"])
def test_bad_per_file_ignores_is_a_usage_error(run_cli: RunCli, tmp_path: Path, value: str) -> None:
    result = run_cli("--per-file-ignores", value)
    assert result.exit_code == 2 and "--per-file-ignores" in result.stderr


# --- --statistics -----------------------------------------------------------------------------------


def test_statistics_replace_the_listing_and_survive_quiet(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"m.py": MIXED, "n.py": NESTED})
    table = "2\tESP001\t[*] nested-mask-mod\n1\tESP002\t[*] lambda-mask-mod\n1\tESP004\tmask-mod-late-binding\n"
    result = run_cli("--statistics", "--no-cache")
    assert result.exit_code == 1 and result.stdout.startswith(table) and "m.py:" not in result.stdout
    quiet = run_cli("--statistics", "-q", "--no-cache")
    assert (quiet.exit_code, quiet.stdout) == (1, table)
    as_json = json.loads(run_cli("--statistics", "--output-format", "json", "--no-cache").stdout)
    assert as_json[0] == {"code": "ESP001", "name": "nested-mask-mod", "count": 2, "fixable": True}
    assert [row["count"] for row in as_json] == [2, 1, 1]


# --- --diff -----------------------------------------------------------------------------------------


def test_diff_exits_1_only_for_a_diff_and_lists_lines_of_the_file_on_disk(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"m.py": MIXED})
    result = run_cli("--diff", "--no-cache", "--output-format", "json", "m.py")
    assert result.exit_code == 1 and result.stdout.startswith("--- a/m.py")
    remaining = json.loads(result.stdout[result.stdout.index("\n[") :])
    assert [(f["line"], f["column"], f["code"]) for f in remaining] == [(12, 32, "ESP004")]
    assert "(line 12 in `build2`)" in remaining[0]["message"]
    # Only an unfixable finding left: nothing to diff, exit 0 (as ruff), though a finding remains.
    unfixable = run_cli("--diff", "--no-cache", "--select", "ESP004", "m.py")
    assert unfixable.exit_code == 0 and unfixable.stdout == "", unfixable.stdout
    assert run_cli("--diff", "--exit-zero", "--no-cache", "m.py").exit_code == 0
    assert (tmp_path / "m.py").read_text() == MIXED


@pytest.mark.parametrize("output_format", ["sarif", "github", "junit"])
def test_statistics_in_another_format_is_a_usage_error(run_cli: RunCli, tmp_path: Path, output_format: str) -> None:
    write(tmp_path, {"m.py": NESTED})
    result = run_cli("--statistics", "--output-format", output_format, "m.py")
    assert result.exit_code == 2 and "--statistics is written as text or json" in result.stderr
