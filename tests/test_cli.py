"""The command line as users meet it: exit codes, text and JSON output, rule selection, noqa, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import NESTED, RunCli, write

CAPTURES = """\
from torch.nn.attention.flex_attention import create_block_mask


def build(document_ids, n):
    def same_doc(b, h, q_idx, kv_idx):
        return document_ids[q_idx] == document_ids[kv_idx]

    return create_block_mask(same_doc, None, None, n, n)
"""
LOOP_AND_LAMBDA = """\
from torch.nn.attention.flex_attention import create_block_mask


def build(windows, n):
    masks = [create_block_mask(lambda b, h, q, kv: q - kv < w, None, None, n, n) for w in windows]
    return masks + [create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)]
"""
CLEAN = """\
from torch.nn.attention.flex_attention import create_block_mask


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def build(n):
    return create_block_mask(causal, None, None, n, n)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, {"src/nested.py": NESTED, "src/captures.py": CAPTURES, "src/loops.py": LOOP_AND_LAMBDA})
    return tmp_path


def codes(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("src/")]


def test_clean_code_exits_0_and_says_so(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"ok.py": CLEAN, "unrelated.py": "print('hello')\n"})
    result = run_cli()  # default path: the current folder
    assert (result.exit_code, result.stdout) == (0, "All checks passed.\n")


def test_text_output_lines_and_summary(run_cli: RunCli, project: Path) -> None:
    result = run_cli("src")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("src/loops.py:5:32: ESP004 Mask function lambda (line 5 in `build`) reads loop")
    assert lines[1].startswith("src/loops.py:6:39: ESP002 ")
    assert lines[2].startswith("src/nested.py:8:30: ESP001 Mask function `causal` (line 5 in `build`)")
    assert lines[-2:] == ["", "Found 3 findings (2 fixable with --fix)."]


def test_summary_is_singular_for_one_finding(run_cli: RunCli, project: Path) -> None:
    result = run_cli("src/nested.py")
    assert result.stdout.splitlines()[-1] == "Found 1 finding (1 fixable with --fix)."


def test_json_output_shape(run_cli: RunCli, project: Path) -> None:
    result = run_cli("--output-format", "json", "src/nested.py")
    assert result.exit_code == 1
    [finding] = json.loads(result.stdout)
    assert finding == {
        "path": "src/nested.py",
        "line": 8,
        "column": 30,
        "end_line": 8,
        "end_column": 36,
        "code": "ESP001",
        "name": "nested-mask-mod",
        "message": finding["message"],
        "fixable": True,
    }
    assert finding["message"].startswith("Mask function `causal` (line 5 in `build`)")


def test_json_output_is_an_empty_array_when_clean(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"ok.py": CLEAN})
    result = run_cli("--output-format", "json", "ok.py")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["ESP004", "ESP002", "ESP001"]),
        (("--select", "ESP001"), ["ESP001"]),
        (("--select", "ESP001,ESP004"), ["ESP004", "ESP001"]),
        (("--select", "ESP00"), ["ESP006", "ESP004", "ESP002", "ESP001"]),  # a prefix selects every match
        (("--select", "ALL", "--ignore", "ESP002"), ["ESP006", "ESP004", "ESP001"]),
        (("--ignore", "ESP001", "--ignore", "ESP004"), ["ESP002"]),
        (("--extend-select", "ESP006"), ["ESP006", "ESP004", "ESP002", "ESP001"]),
    ],
)
def test_rule_selection(run_cli: RunCli, project: Path, args: tuple[str, ...], expected: list[str]) -> None:
    result = run_cli(*args, "src")
    assert codes(result.stdout) == expected


def test_esp006_is_off_by_default(run_cli: RunCli, project: Path) -> None:
    assert run_cli("src/captures.py").exit_code == 0
    assert run_cli("--extend-select", "ESP006", "src/captures.py").exit_code == 1


def test_exit_zero_keeps_findings_but_exits_0(run_cli: RunCli, project: Path) -> None:
    result = run_cli("--exit-zero", "src")
    assert result.exit_code == 0 and "Found 3 findings" in result.stdout


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select"])
def test_unknown_code_on_the_command_line_is_named(run_cli: RunCli, project: Path, option: str) -> None:
    result = run_cli(option, "ESP001,XYZ9", "src")
    assert result.exit_code == 2
    assert "unknown rule code(s) XYZ9" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("comment", "suppressed"),
    [
        ("# noqa", True),
        ("# noqa: ESP001", True),
        ("# noqa:ESP001", True),
        ("# NOQA:   esp001", True),
        ("# noqa: E501, ESP001", True),
        ("# noqa: E501 ESP001 because reasons", True),
        ("# noqa: ESP002", False),
        ("# noqa: E501", False),
        ("# no qa", False),
    ],
)
def test_noqa_forms(run_cli: RunCli, tmp_path: Path, comment: str, suppressed: bool) -> None:
    write(tmp_path, {"m.py": NESTED.replace("n, n)\n", f"n, n)  {comment}\n")})
    result = run_cli("m.py")
    assert result.exit_code == (0 if suppressed else 1), result.stdout


def test_noqa_inside_a_string_does_not_suppress(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"m.py": NESTED.replace("n, n)\n", 'n, "# noqa")\n')})
    assert run_cli("m.py").exit_code == 1


def test_syntax_error_is_reported_and_other_files_still_checked(run_cli: RunCli, project: Path) -> None:
    write(project, {"src/broken.py": "from torch.nn.attention.flex_attention import create_block_mask\ndef f(:\n"})
    result = run_cli("src")
    assert result.exit_code == 2
    assert "src/broken.py:2:" in result.stderr and "syntax error" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert codes(result.stdout) == ["ESP004", "ESP002", "ESP001"]


def test_undecodable_file_is_reported(run_cli: RunCli, project: Path) -> None:
    (project / "src" / "latin.py").write_bytes(b"# create_block_mask\nx = '\xff\xfe'\n")
    result = run_cli("src")
    assert result.exit_code == 2 and "src/latin.py" in result.stderr and "decode" in result.stderr


def test_missing_path_is_reported_and_the_rest_checked(run_cli: RunCli, project: Path) -> None:
    result = run_cli("src/nested.py", "nope.py")
    assert result.exit_code == 2
    assert "nope.py" in result.stderr and "no such file" in result.stderr
    assert codes(result.stdout) == ["ESP001"]


def test_exit_zero_does_not_hide_file_errors(run_cli: RunCli, project: Path) -> None:
    assert run_cli("--exit-zero", "src", "nope.py").exit_code == 2


def test_quiet_prints_findings_only(run_cli: RunCli, project: Path) -> None:
    result = run_cli("-q", "src/nested.py")
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("src/nested.py:8:30: ESP001 ")


def test_skips_usual_folders_and_non_python_files(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {".venv/lib/m.py": NESTED, "build/m.py": NESTED, "__pycache__/m.py": NESTED, "notes.txt": NESTED})
    write(tmp_path, {"pkg/m.pyi": NESTED})
    result = run_cli("--output-format", "json")
    assert [f["path"] for f in json.loads(result.stdout)] == ["pkg/m.pyi"]


@pytest.mark.parametrize("value", ["", ",", " "])
def test_empty_select_is_a_usage_error(run_cli: RunCli, project: Path, value: str) -> None:
    """As ruff: `--select ''` selects nothing, which would pass every file unchecked."""
    result = run_cli("--select", value, "src")
    assert result.exit_code == 2 and "--select names no rule code" in result.stderr
    assert result.stdout == ""


def test_rule_code_and_all_together_are_rejected(run_cli: RunCli) -> None:
    result = run_cli("rule", "ESP001", "--all")
    assert result.exit_code == 2 and "not both" in result.stderr and result.stdout == ""
