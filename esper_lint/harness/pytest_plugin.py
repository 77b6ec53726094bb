"""pytest plugin (entry point `pytest11`): the `esper_verify` fixture, the `esper_cuda` marker, and
`--esper-sanitize[=strict]` (FlexAttention's run-time checks around the test session; esper_lint/sanitizer).

    def test_fix_is_safe(esper_verify):
        report = esper_verify("src/model/attention.py", factory="make_block", kwargs={"dim": 64})
        assert report.equivalent and report.masks_consistent

    @pytest.mark.esper_cuda  # runs on CUDA; skipped, with the reason, where there is none
    def test_fix_is_safe_on_gpu(esper_verify): ...

pytest loads every installed plugin, so this module is imported even where esper-lint was installed
without the `harness` extra: it then defines nothing (and imports nothing heavy). With torch available it
still never imports torch into the test process: each run happens in worker subprocesses.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import no_cuda_reason

HARNESS_AVAILABLE = importlib.util.find_spec("torch") is not None
CUDA_MARKER = "esper_cuda"

if HARNESS_AVAILABLE:
    if TYPE_CHECKING:
        from .api import VerifyReport

    # `verify` (driver, reports, statistics) is imported by the fixture when a test asks for it: every
    # pytest run in an environment with torch loads this plugin.
    _REPORTS = pytest.StashKey[list["VerifyReport"]]()
    _CUDA = pytest.StashKey[str | None]()  # None: CUDA usable; otherwise why not

    def _add_markers(config: pytest.Config) -> None:
        config.addinivalue_line(
            "markers", f"{CUDA_MARKER}: esper_verify runs on CUDA (skipped with the reason where there is none)"
        )

    def pytest_runtest_setup(item: pytest.Item) -> None:
        if item.get_closest_marker(CUDA_MARKER) is None:
            return
        if _CUDA not in item.config.stash:
            item.config.stash[_CUDA] = _why_no_cuda()
        reason = item.config.stash[_CUDA]
        if reason is not None:
            pytest.skip(f"{CUDA_MARKER}: {reason}")

    @pytest.fixture
    def esper_verify(request: pytest.FixtureRequest) -> Callable[..., VerifyReport]:
        """`esper_verify(path, factory=..., **options)`: `esper_lint.harness.verify` with the path relative
        to pytest's rootdir, on CUDA under the `esper_cuda` marker, and the report table shown on failure."""
        on_cuda = request.node.get_closest_marker(CUDA_MARKER) is not None

        def run(path: str | Path, **options: Any) -> VerifyReport:
            if on_cuda:
                options.setdefault("device", "cuda")
            from .api import verify

            report = verify(Path(request.config.rootpath, path), **options)
            request.node.stash.setdefault(_REPORTS, []).append(report)
            return report

        return run

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        result: pytest.TestReport = outcome.get_result()
        if result.when == "call" and result.failed:
            for report in item.stash.get(_REPORTS, []):
                result.sections.append((f"esper-lint verify {report.file}", report.table()))


# --------------------------------------------------------------------------- --esper-sanitize
# Only the option is defined here; the sanitizer (and torch) load only when it is given.
SANITIZE = "--esper-sanitize"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("esper-lint")
    group.addoption(
        SANITIZE,
        nargs="?",
        const="report",
        default=None,
        metavar="strict",  # checked in pytest_load_initial_conftests: argparse's choices would refuse a path
        help="Check every FlexAttention call at run time and report per test; =strict fails those tests.",
    )
    group.addoption(f"{SANITIZE}-report", metavar="FILE", default=None, help="Write the sanitizer's findings as JSON.")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # A bare `--esper-sanitize` would take the next argument (a test path) as its value.
    rewritten: list[str] = []
    for arg in args:
        if rewritten[-1:] == [SANITIZE] and arg in ("report", "strict"):
            rewritten[-1] = f"{SANITIZE}={arg}"
        else:
            rewritten.append(arg)
    args[:] = [f"{SANITIZE}=report" if arg == SANITIZE else arg for arg in rewritten]
    mode = next((a.partition("=")[2] for a in reversed(args) if a.startswith(f"{SANITIZE}=")), None)
    if mode is not None:  # before conftest files import torch
        if mode not in ("report", "strict"):
            raise pytest.UsageError(f"{SANITIZE}={mode}: use {SANITIZE} or {SANITIZE}=strict")
        from ..sanitizer.pytest_support import start

        early_config.stash[_SANITIZE_SESSION] = start(mode == "strict")


_SANITIZE_SESSION = pytest.StashKey[Any]()


def pytest_configure(config: pytest.Config) -> None:
    if HARNESS_AVAILABLE:
        _add_markers(config)
    session = config.stash.get(_SANITIZE_SESSION, None)
    if session is not None:
        from ..sanitizer.pytest_support import SanitizePlugin

        config.pluginmanager.register(SanitizePlugin(session, config.getoption(f"{SANITIZE}-report")), "esper-sanitize")


def _why_no_cuda() -> str | None:
    """Asked of a subprocess, so that the test process itself never imports torch."""
    code = "import json, torch; print(json.dumps([torch.cuda.is_available(), torch.__version__, torch.version.cuda]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"torch could not be imported ({(done.stderr.strip().splitlines() or ['?'])[-1]})"
    available, version, cuda = json.loads(done.stdout)
    return None if available else no_cuda_reason(version, cuda)
