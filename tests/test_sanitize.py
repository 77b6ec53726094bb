"""`esper-lint sanitize` through its three entry points (issue 24): for every check, the program with the
mistake (found, with the rule's code, its evidence, the definition and the call site) and the corrected
program (nothing found). The programs are fixtures/sanitize/cases.py; torch runs in a few subprocesses
(one per entry point and variant), each running every case, so the suite stays fast on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

# Module-scoped fixtures run each entry point once over every case: the tests reading one fixture share an
# xdist group, or each worker that got one of them would run it again; one group per entry point, so the
# three runs (each a torch program over every case) can go to different workers.
CONTEXT_RUN = pytest.mark.xdist_group("sanitize-context")
CLI_RUN = pytest.mark.xdist_group("sanitize-cli")
PYTEST_RUN = pytest.mark.xdist_group("sanitize-pytest")
ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "fixtures" / "sanitize"
# case -> the rule its mistake proves (fixtures/sanitize/cases.py's CASES, without importing torch here)
EXPECTED = {
    "esp007": "ESP007",
    "esp028": "ESP028",
    "esp019": "ESP019",
    "esp020": "ESP020",
    "esp029": "ESP029",
    "esp025": "ESP025",
    "esp012": "ESP012",
    "esp011": "ESP011",
    "esp026": "ESP026",
    "esp008": "ESP008",
    "esp021": "ESP021",
    "esp015": "ESP015",
    "esp030": "ESP030",
    "esp016": "ESP016",
}
HAS_TORCH = __import__("importlib.util").util.find_spec("torch") is not None
ESPER = [sys.executable, "-c", "from esper_lint.console import entry_point; entry_point()"]
QUIET = {k: v for k, v in os.environ.items() if k != "TORCH_LOGS"}


def _run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=QUIET, check=False)


def _check_shape(finding: dict[str, Any], case: str) -> None:
    assert finding["code"] == EXPECTED[case]
    assert finding["evidence"], finding  # what was measured
    assert finding["call_site"]["path"].endswith("cases.py")
    assert finding["call_site"]["function"] == f"{case}_mistake", finding["call_site"]
    if finding["definition"] is not None:
        assert finding["definition"]["path"].endswith("cases.py")


# --------------------------------------------------------------------------- context manager
@pytest.fixture(scope="module")
def context_results() -> dict[str, list[dict[str, Any]]]:
    done = _run([sys.executable, "drive.py", "context"], CASES_DIR)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@CONTEXT_RUN
@pytest.mark.torch
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_context_manager_finds_each_mistake_and_nothing_once_fixed(
    context_results: dict[str, list[dict[str, Any]]], case: str
) -> None:
    mistake = context_results[f"{case}/mistake"]
    assert [f["code"] for f in mistake] == [EXPECTED[case]], mistake
    _check_shape(mistake[0], case)
    assert context_results[f"{case}/fixed"] == []


@CONTEXT_RUN
@pytest.mark.torch
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_evidence_is_in_the_message(context_results: dict[str, list[dict[str, Any]]]) -> None:
    (esp007,) = context_results["esp007/mistake"]
    assert "differs between b=0 and b=1 at" in esp007["message"] and "of 4,096 sampled points" in esp007["message"]
    assert esp007["evidence"]["sampled"] == 4096 and 0 < esp007["evidence"]["differing"] <= 4096
    (esp028,) = context_results["esp028/mistake"]
    assert "batch size 4 with a query of batch size 2" in esp028["message"]
    (esp029,) = context_results["esp029/mistake"]
    assert esp029["evidence"] == {"built_for": [256, 256], "called_with": [128, 128], "created_at": "cases.py:104"}
    (esp008,) = context_results["esp008/mistake"]
    assert "q_idx >= kv_idx and" in esp008["evidence"]["source"] and esp008["line"] == esp008["definition"]["line"]
    (esp015,) = context_results["esp015/mistake"]
    assert esp015["evidence"]["captured"] == {"offset": [0, 1, 2, 3]}
    (esp016,) = context_results["esp016/mistake"]
    assert esp016["evidence"] == {"calls": 10}
    (esp026,) = context_results["esp026/mistake"]
    assert esp026["severity"] == "hint"


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # One run (through `-m`; `python script.py` is tested below): every mistake, then every corrected program.
    report = tmp_path_factory.mktemp("sanitize-cli") / "found.json"
    done = _run([*ESPER, "sanitize", "--report", str(report), "--", "-m", "drive", "run", "both"], CASES_DIR)
    found = json.loads(report.read_text())
    mistakes = [f for f in found if f["call_site"]["function"].endswith("_mistake")]
    return {"mistake": (done, mistakes), "fixed": (done, [f for f in found if f not in mistakes])}


@CLI_RUN
@pytest.mark.torch
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_cli_finds_every_mistake_with_the_right_code(cli_results: dict[str, Any]) -> None:
    done, report = cli_results["mistake"]
    assert done.returncode == 0, done.stderr[-3000:]  # the program's own status: report-only mode
    by_case = {f["call_site"]["function"].removesuffix("_mistake"): f for f in report}
    assert sorted(by_case) == sorted(EXPECTED), [(f["code"], f["call_site"]) for f in report]
    for case, finding in by_case.items():
        _check_shape(finding, case)
        assert f"{finding['path']}:{finding['line']}:{finding['column']}: {finding['code']}" in done.stderr
    assert f"esper-lint sanitize: {len(report) - 1} findings, 1 hint" in done.stderr


@CLI_RUN
@pytest.mark.torch
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_cli_finds_nothing_in_the_corrected_program(cli_results: dict[str, Any]) -> None:
    done, report = cli_results["fixed"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert report == []


@CLI_RUN
@pytest.mark.torch
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_json_report_has_the_linters_finding_shape(cli_results: dict[str, Any]) -> None:
    from esper_lint.core.findings import Finding
    from esper_lint.core.span import Span

    linter_keys = set(Finding("a.py", Span(1, 1, 1, 2), "ESP001", "n", "m").to_dict())
    _, report = cli_results["mistake"]
    for finding in report:
        assert linter_keys <= set(finding) and finding["fixable"] is False
        assert {"evidence", "definition", "call_site", "severity", "count", "tests"} <= set(finding)


@pytest.mark.torch
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_cli_strict_refuses_the_call_that_would_crash_and_exits_1(tmp_path: Path) -> None:
    # Without the sanitizer this program dies of SIGFPE or SIGSEGV in the compiled kernel (measured: 136/139).
    program = tmp_path / "partial_batch.py"
    program.write_text(
        "import torch\n"
        "from torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"
        "def causal(b, h, q, kv):\n    return q >= kv\n"
        "block_mask = create_block_mask(causal, 4, 1, 128, 128, device='cpu')\n"
        "q = torch.randn(2, 1, 128, 16)\n"
        "torch.compile(flex_attention)(q, q, q, block_mask=block_mask)\n"
    )
    report = tmp_path / "out" / "found.json"
    done = _run([*ESPER, "sanitize", "--strict", "--report", str(report), "--", sys.executable, program.name], tmp_path)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "SanitizerError" in done.stderr and "refused the flex_attention call" in done.stderr
    assert [f["code"] for f in json.loads(report.read_text())] == ["ESP028"]


def test_cli_exit_status_is_the_programs(tmp_path: Path) -> None:
    (tmp_path / "exits.py").write_text("import sys\nprint(sys.argv[1:])\nsys.exit(3)\n")
    done = _run([*ESPER, "sanitize", "--", sys.executable, "exits.py", "a", "--flag"], tmp_path)
    assert done.returncode == 3
    assert done.stdout == "['a', '--flag']\n"
    assert "no FlexAttention mistakes found" in done.stderr
    done = _run([*ESPER, "sanitize", "--", "exits.py"], tmp_path)  # the interpreter may be left out
    assert done.returncode == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to run"),
        (["missing.py"], "no such file: missing.py"),
        (["python", "-c", "pass"], "`-c CODE` is not supported"),
        (["-m"], "`-m` needs a module name"),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = _run([*ESPER, "sanitize", "--", *args], tmp_path, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr


# --------------------------------------------------------------------------- pytest option
_UNDER_PYTEST = """\
import pytest
from cases import CASES

@pytest.mark.parametrize("case", sorted(CASES))
def test_mistake(case):
    CASES[case][1]("cpu")

@pytest.mark.parametrize("case", sorted(CASES))
def test_fixed(case):
    CASES[case][2]("cpu")
"""


@pytest.fixture(scope="module")
def pytest_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Any, Any]:
    out = tmp_path_factory.mktemp("sanitize-pytest")
    (out / "pytest.ini").write_text("[pytest]\n")
    (out / "test_cases.py").write_text(_UNDER_PYTEST)
    args = [sys.executable, "-m", "pytest", "-c", str(out / "pytest.ini"), "--rootdir", str(out), "-p", "no:xdist"]
    args += ["-p", "no:cacheprovider", "--esper-sanitize=strict", "--esper-sanitize-report", str(out / "r.json")]
    args += ["--junitxml", str(out / "j.xml"), str(out / "test_cases.py")]
    env = {**QUIET, "PYTHONPATH": str(CASES_DIR)}
    done = subprocess.run(args, cwd=out, capture_output=True, text=True, timeout=400, env=env, check=False)
    outcomes = {}
    for testcase in ET.parse(out / "j.xml").getroot().iter("testcase"):
        failure = testcase.find("failure")
        outcomes[testcase.get("name")] = (
            failure.get("message", "") + (failure.text or "") if failure is not None else None
        )
    return done, outcomes, json.loads((out / "r.json").read_text())


@PYTEST_RUN
@pytest.mark.torch
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_pytest_strict_fails_the_test_with_the_mistake_and_passes_the_fixed_one(
    pytest_results: tuple[subprocess.CompletedProcess[str], Any, Any], case: str
) -> None:
    done, outcomes, report = pytest_results
    failure = outcomes[f"test_mistake[{case}]"]
    if EXPECTED[case] == "ESP026":  # a hint: reported, never fails a test
        assert failure is None
    else:
        assert failure is not None and EXPECTED[case] in failure, (case, failure, done.stdout[-2000:])
    assert outcomes[f"test_fixed[{case}]"] is None, outcomes[f"test_fixed[{case}]"]
    attributed = [f for f in report if f["code"] == EXPECTED[case]]
    assert [f["tests"] for f in attributed] == [[f"test_cases.py::test_mistake[{case}]"]]


@PYTEST_RUN
@pytest.mark.torch
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_pytest_summary_lists_the_findings(pytest_results: tuple[subprocess.CompletedProcess[str], Any, Any]) -> None:
    done, _, report = pytest_results
    assert "esper-lint sanitize" in done.stdout
    assert f"esper-lint sanitize: {len(report) - 1} findings, 1 hint" in done.stdout


def test_pytest_bare_option_leaves_the_next_path_a_path(tmp_path: Path) -> None:
    # `--esper-sanitize tests/x.py`: argparse would take the path as the option's value.
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\ndef test_no_torch():\n    assert 'torch' not in sys.modules\n"
    )
    args = [sys.executable, "-m", "pytest", "-c", "pytest.ini", "-p", "no:xdist", "-p", "no:cacheprovider"]
    done = _run([*args, "--esper-sanitize", "test_plain.py"], tmp_path, timeout=120)
    assert done.returncode == (0 if HAS_TORCH else 4), done.stdout[-2000:] + done.stderr[-2000:]
    if HAS_TORCH:  # the checks wait for the program to import flex_attention: torch is not imported for them
        assert "1 passed" in done.stdout and "no FlexAttention mistakes found" in done.stdout
    done = _run([*args, "--esper-sanitize=loud", "test_plain.py"], tmp_path, timeout=120)
    assert (
        done.returncode == 4 and "--esper-sanitize=loud: use --esper-sanitize or --esper-sanitize=strict" in done.stderr
    )


def test_pytest_plugin_without_the_option_imports_no_torch(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\ndef test_no_torch():\n    assert 'torch' not in sys.modules\n"
        "    assert 'esper_lint.sanitizer' not in sys.modules\n"
    )
    done = _run([sys.executable, "-m", "pytest", "-c", "pytest.ini", "-p", "no:xdist", "test_plain.py"], tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
