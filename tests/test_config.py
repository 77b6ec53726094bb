"""`[tool.esper-lint]` configuration: discovery, selection, excludes, per-file ignores, mask APIs, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import RunCli, write
from test_cli import CAPTURES, NESTED

WRAPPER_USE = """\
from mylib.attention import build_block_mask


def build(n):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    return build_block_mask(n, causal)
"""


def found(stdout: str) -> list[tuple[str, str]]:
    return [(f["path"], f["code"]) for f in json.loads(stdout)]


def pyproject(root: Path, table: str) -> None:
    write(root, {"pyproject.toml": f"[project]\nname = 'demo'\n\n[tool.esper-lint]\n{table}\n"})


def test_nearest_pyproject_with_a_table_is_used(run_cli: RunCli, tmp_path: Path) -> None:
    pyproject(tmp_path, 'extend-select = ["ESP006"]')
    write(tmp_path, {"pkg/sub/pyproject.toml": "[project]\nname = 'inner'\n"})  # no table: keep looking up
    write(tmp_path, {"pkg/sub/m.py": CAPTURES})
    result = run_cli("--output-format", "json", "pkg/sub/m.py")
    assert found(result.stdout) == [("pkg/sub/m.py", "ESP006")]


def test_config_is_discovered_from_the_checked_path_not_the_cwd(run_cli: RunCli, tmp_path: Path) -> None:
    pyproject(tmp_path / "proj", 'ignore = ["ESP001"]')
    write(tmp_path, {"proj/m.py": NESTED})
    assert run_cli("proj").exit_code == 0
    assert run_cli("m.py", cwd=tmp_path / "proj").exit_code == 0


def test_select_and_ignore_from_the_file(run_cli: RunCli, tmp_path: Path) -> None:
    pyproject(tmp_path, 'select = ["ESP006"]')
    write(tmp_path, {"a.py": NESTED, "b.py": CAPTURES})
    assert found(run_cli("--output-format", "json").stdout) == [("b.py", "ESP006")]
    # The command line wins over the file.
    assert found(run_cli("--output-format", "json", "--select", "ESP001").stdout) == [("a.py", "ESP001")]


def test_explicit_config_file(run_cli: RunCli, tmp_path: Path) -> None:
    pyproject(tmp_path, 'ignore = ["ESP001"]')
    write(tmp_path, {"a.py": NESTED, "lint.toml": 'select = ["ESP001", "ESP006"]\n'})
    assert run_cli("a.py").exit_code == 0
    assert run_cli("--config", "lint.toml", "a.py").exit_code == 1


def test_missing_config_file_is_an_error(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"a.py": NESTED})
    result = run_cli("--config", "nope.toml", "a.py")
    assert result.exit_code == 2 and "nope.toml" in result.stderr


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ("selct = ['ESP001']", "unknown key(s) in [tool.esper-lint]: selct"),
        ("select = ['ESP001', 'ESP999']", "unknown rule code(s) ESP999"),
        ("ignore = ['NOPE1']", "unknown rule code(s) NOPE1"),
        ("extend-select = ['ESP7']", "unknown rule code(s) ESP7"),
        ("per-file-ignores = { 'x.py' = ['BAD1'] }", "unknown rule code(s) BAD1"),
        ("select = 'ESP001'", "`select` must be a list"),
        ("[[tool.esper-lint.mask-apis]]\nname = 'a.b'\nmask-pos = 1", "unknown key(s) in mask-apis entry: mask-pos"),
        ("[[tool.esper-lint.mask-apis]]\nname = 'nodots'", "fully qualified name"),
        ("select = [", "invalid TOML"),
    ],
)
def test_bad_configuration_names_the_problem(run_cli: RunCli, tmp_path: Path, table: str, named: str) -> None:
    pyproject(tmp_path, table)
    write(tmp_path, {"a.py": NESTED})
    result = run_cli("a.py")
    assert result.exit_code == 2
    assert named in result.stderr and "pyproject.toml" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_per_file_ignores(run_cli: RunCli, tmp_path: Path) -> None:
    pyproject(tmp_path, "per-file-ignores = { 'tests/*' = ['ESP001'], 'legacy_*.py' = ['ESP'] }")
    write(tmp_path, {"tests/t.py": NESTED, "src/legacy_model.py": NESTED, "src/model.py": NESTED})
    assert found(run_cli("--output-format", "json").stdout) == [("src/model.py", "ESP001")]


def test_exclude_and_extend_exclude(run_cli: RunCli, tmp_path: Path) -> None:
    pyproject(tmp_path, "extend-exclude = ['generated', '*_pb2.py']")
    write(tmp_path, {"generated/m.py": NESTED, "src/api_pb2.py": NESTED, "src/m.py": NESTED, "build/m.py": NESTED})
    assert found(run_cli("--output-format", "json").stdout) == [("src/m.py", "ESP001")]
    # `exclude` replaces the defaults: build/ is checked again.
    pyproject(tmp_path, "exclude = ['generated']")
    paths = [p for p, _ in found(run_cli("--output-format", "json").stdout)]
    assert paths == ["build/m.py", "src/api_pb2.py", "src/m.py"]
    # --extend-exclude on the command line adds to the file.
    paths = [p for p, _ in found(run_cli("--output-format", "json", "--extend-exclude", "src").stdout)]
    assert paths == ["build/m.py"]


def test_gitignored_files_are_skipped(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path, {".gitignore": "scratch/\n", "scratch/m.py": NESTED, "m.py": NESTED})
    assert found(run_cli("--output-format", "json").stdout) == [("m.py", "ESP001")]


def test_configured_mask_api(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path, {"m.py": WRAPPER_USE})
    assert run_cli("m.py").exit_code == 0  # unknown to esper-lint until configured
    pyproject(
        tmp_path,
        "[[tool.esper-lint.mask-apis]]\nname = 'mylib.attention.build_block_mask'\nmask-arg = 1\n"
        "mask-keyword = 'mask_fn'\nbuilds-block-mask = true\n",
    )
    result = run_cli("--output-format", "json", "m.py")
    [finding] = json.loads(result.stdout)
    assert (finding["code"], finding["line"], finding["column"]) == ("ESP001", 8, 32)
    write(tmp_path, {"m.py": WRAPPER_USE.replace("build_block_mask(n, causal)", "build_block_mask(n, mask_fn=causal)")})
    assert [f["column"] for f in json.loads(run_cli("--output-format", "json", "m.py").stdout)] == [40]


def test_configured_api_is_matched_by_qualified_name(run_cli: RunCli, tmp_path: Path) -> None:
    pyproject(tmp_path, "[[tool.esper-lint.mask-apis]]\nname = 'otherlib.build_block_mask'\nmask-arg = 1\n")
    write(tmp_path, {"m.py": WRAPPER_USE})
    assert run_cli("m.py").exit_code == 0


@pytest.mark.parametrize("spelling", ["esper_lint", "esperlint", "Esper-Lint"])
def test_misspelled_table_is_a_warning_naming_the_right_spelling(
    run_cli: RunCli, tmp_path: Path, spelling: str
) -> None:
    write(tmp_path, {"pyproject.toml": f"[tool.{spelling}]\nselect = ['ESP004']\n", "src/nested.py": NESTED})
    result = run_cli("src")
    assert result.stderr == (
        f"esper-lint: warning: {tmp_path.resolve() / 'pyproject.toml'}: [tool.{spelling}] is not read; "
        "the table is spelled [tool.esper-lint]\n"
    )
    assert result.exit_code == 1 and " ESP001 " in result.stdout  # the defaults, as the warning says
