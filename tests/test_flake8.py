"""The flake8 plugin, run through the real flake8: same findings, codes, lines and columns as the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from esper_lint.rules import ALL_RULES

REPO = Path(__file__).resolve().parents[1]

# Column checks need the argument away from column 1, after non-ASCII text and a tab-free indent.
UNICODE_PREFIX = """\
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx
    étiquette = "ü"; return create_block_mask(causal, None, None, n, n)
"""

DOC_MASK = """\
from torch.nn.attention.flex_attention import create_block_mask


def doc_block_mask(document_ids, n):
    def same_doc(b, h, q, kv):
        return document_ids[q] == document_ids[kv]
    return create_block_mask(same_doc, None, None, n, n)
"""

FINDING = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>ESP\d{3}) (?P<message>.*)$")


def _run(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, input=stdin, timeout=120)


def flake8(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # --isolated: ignore any flake8 configuration around the temporary folder.
    return _run([sys.executable, "-m", "flake8", "--isolated", "-j", "1", *args], cwd, stdin)


def esper(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "esper_lint", "check", "-q", *args], cwd, stdin)


def findings(output: str) -> list[tuple[str, int, int, str, str]]:
    out = []
    for line in output.splitlines():
        match = FINDING.match(line)
        if match:
            out.append((match["path"], int(match["line"]), int(match["col"]), match["code"], match["message"]))
    return sorted(out)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Every rule's INVALID examples, the seed blueprint, and a line with non-ASCII text before the mask."""
    src = tmp_path / "src"
    src.mkdir()
    for rule in ALL_RULES:
        for i, example in enumerate(rule.INVALID):
            (src / f"{rule.code.lower()}_{i}.py").write_text(example, encoding="utf-8")
    (src / "seed.py").write_text((REPO / "fixtures/blueprints/transformer_seed.py").read_text(encoding="utf-8"))
    (src / "unicode.py").write_text(UNICODE_PREFIX, encoding="utf-8")
    return tmp_path


def test_plugin_is_registered_with_flake8(tmp_path: Path) -> None:
    proc = flake8("--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert "esper-lint:" in proc.stdout


def test_flake8_reports_exactly_what_the_cli_reports(corpus: Path) -> None:
    via_flake8 = flake8("--select", "ESP", "src", cwd=corpus)
    via_cli = esper("src", cwd=corpus)
    assert via_flake8.returncode == via_cli.returncode == 1, via_flake8.stderr + via_cli.stderr
    expected = findings(via_cli.stdout)
    # One finding per default-on rule at least, so a plugin that reports nothing cannot pass.
    assert {f[3] for f in expected} >= {r.code for r in ALL_RULES if r.default_enabled}
    assert findings(via_flake8.stdout) == expected


def test_columns_count_characters_like_the_cli(corpus: Path) -> None:
    via_flake8 = findings(flake8("--select", "ESP", "src/unicode.py", cwd=corpus).stdout)
    line = UNICODE_PREFIX.splitlines()[6]
    assert [(f[1], f[2]) for f in via_flake8] == [(7, line.index("causal, None") + 1)]


def test_flake8_noqa_suppresses_esper_codes(tmp_path: Path) -> None:
    lines = UNICODE_PREFIX.splitlines()
    lines[6] += "  # noqa: ESP001"
    (tmp_path / "m.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = flake8("--select", "ESP", "m.py", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_off_by_default_rules_follow_flake8_selection(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(DOC_MASK)
    assert flake8("--select", "ESP", "m.py", cwd=tmp_path).stdout == ""
    enabled = flake8("--select", "ESP", "--extend-select", "ESP006", "m.py", cwd=tmp_path)
    assert [f[3] for f in findings(enabled.stdout)] == ["ESP006"]
    assert findings(enabled.stdout) == findings(esper("--extend-select", "ESP006", "m.py", cwd=tmp_path).stdout)


def test_flake8_honours_the_esper_lint_configuration(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nper-file-ignores = { "legacy/*" = ["ESP001"] }\n')
    for folder in ("legacy", "new"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "m.py").write_text(UNICODE_PREFIX, encoding="utf-8")
    via_flake8 = flake8("--select", "ESP", "legacy", "new", cwd=tmp_path)
    assert [f[0] for f in findings(via_flake8.stdout)] == ["new/m.py"]
    assert findings(via_flake8.stdout) == findings(esper("legacy", "new", cwd=tmp_path).stdout)


def test_flake8_from_stdin(tmp_path: Path) -> None:
    proc = flake8("--select", "ESP", "-", cwd=tmp_path, stdin=UNICODE_PREFIX)
    [(path, line, _col, code, _msg)] = findings(proc.stdout)
    assert (path, line, code) == ("stdin", 7, "ESP001")


def test_flake8_leaves_syntax_errors_to_flake8(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("from torch.nn.attention.flex_attention import create_block_mask\ndef f(:\n")
    proc = flake8("m.py", cwd=tmp_path)
    assert "E999" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_invalid_configuration_is_reported_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nselect = ["ESP999"]\n')
    (tmp_path / "m.py").write_text(UNICODE_PREFIX, encoding="utf-8")
    proc = flake8("--select", "ESP", "m.py", cwd=tmp_path)
    assert proc.returncode != 0
    assert "ESP999" in proc.stdout + proc.stderr
