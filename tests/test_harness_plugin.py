"""The pytest plugin used exactly as a user would: `pytest` in a subprocess over a small user project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the esper_verify fixture needs the `harness` extra (torch)")

pytestmark = pytest.mark.torch

BLUEPRINTS = Path(__file__).resolve().parent.parent / "fixtures" / "blueprints"

USER_TESTS = """\
import pytest

SMALL = dict(input_shape="1,T,16", seq_lens="16,32,48", iterations=1, latency_rounds=1, device="cpu")


def test_the_fix_keeps_attention_identical(esper_verify):
    report = esper_verify("src/model/attention.py", factory="make_transformer_seed",
                          kwargs={"dim": 16, "n_heads": 2}, **SMALL)
    assert report.equivalent and report.mask_mod_retained


def test_every_mask_computes_what_it_was_built_from(esper_verify):
    report = esper_verify("src/model/windows.py", factory="make_late_binding_seed",
                          kwargs={"dim": 16, "n_heads": 2, "cache_size": 2}, **SMALL)
    assert report.masks_consistent


@pytest.mark.esper_cuda
def test_on_the_gpu(esper_verify):
    report = esper_verify("src/model/attention.py", factory="make_transformer_seed")
    assert report.equivalent
"""


def test_a_user_project_runs_the_fixture_and_sees_the_table_on_failure(tmp_path: Path) -> None:
    model = tmp_path / "src" / "model"
    model.mkdir(parents=True)
    shutil.copy(BLUEPRINTS / "transformer_seed.py", model / "attention.py")
    shutil.copy(BLUEPRINTS / "seed_late_binding.py", model / "windows.py")
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = '-rfs'\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_attention.py").write_text(textwrap.dedent(USER_TESTS))
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    cuda = torch.cuda.is_available()
    assert ("1 failed, 2 passed" if cuda else "1 failed, 1 passed, 1 skipped") in out, out
    # The failing test shows the assertion on the report and the report's own table.
    assert "FAILED tests/test_attention.py::test_every_mask_computes_what_it_was_built_from" in out
    assert "VerifyReport(equivalent=True, masks_consistent=False, mask_mod_retained=True" in out
    assert "esper-lint verify" in out and "masks_consistent:   false" in out and "calls with a stale mask_mod" in out
    # Without CUDA the marked test is skipped with the reason, never silently.
    if not cuda:
        assert "SKIPPED" in out and "esper_cuda: torch" in out and "CUDA" in out
