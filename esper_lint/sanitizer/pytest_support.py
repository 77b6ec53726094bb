"""`pytest --esper-sanitize` / `--esper-sanitize=strict`: the checks around the whole test session, each
finding attributed to the test that triggered it (setup, call or teardown), strict failing that test.

Loaded by the esper-lint pytest plugin (harness/pytest_plugin.py) only when the option is given. The
findings travel on each test report (`user_properties`), so under pytest-xdist the controller, which runs
no test, still prints them all and writes the report.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Generator
from typing import Any, cast

import pytest

from .records import HINT, RuntimeFinding, fails_strict, summary_line
from .session import STATE, Session

PROPERTY = "esper_sanitize"


def start(strict: bool) -> Session:
    """Before conftest files load: a session, and the checks installed when torch's flex_attention is imported."""
    from .install import install_on_import, installed_torch_version, version_problem

    version = installed_torch_version()
    if version is None:
        raise pytest.UsageError("--esper-sanitize needs torch (install esper-lint[harness])")
    problem = version_problem(version)
    if problem is not None:
        raise pytest.UsageError(problem)
    session = Session(strict)
    with STATE.lock:
        STATE.sessions.append(session)
    install_on_import()
    return session


class SanitizePlugin:
    def __init__(self, session: Session, report_path: str | None) -> None:
        self.session = session
        self.report_path = report_path
        self.hits: list[RuntimeFinding] = []  # found since the last test phase was reported
        self.collected: dict[tuple[str, str, str], RuntimeFinding] = {}
        session.listener = self._on_finding

    def _on_finding(self, finding: RuntimeFinding, first: bool) -> None:
        if not any(hit is finding for hit in self.hits):
            self.hits.append(finding)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
        STATE.set_test(item.nodeid)
        try:
            return (yield)
        finally:
            STATE.set_test(None)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report: pytest.TestReport = yield
        if call.when == "teardown":  # eager-path counts are per test
            calls = sys.modules.get(__package__ + ".calls")
            if calls is not None:
                calls.flush()
        hits, self.hits = self.hits, []
        if not hits:
            return report
        report.user_properties.append((PROPERTY, [finding.to_dict() for finding in hits]))
        if self.session.strict and report.passed and fails_strict(hits):
            report.outcome = "failed"
            report.longrepr = "esper-lint sanitize (strict) found:\n" + "\n".join(
                f.render() for f in hits if f.severity != HINT
            )
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name != PROPERTY:
                continue
            for data in cast(list[dict[str, Any]], value):
                finding = RuntimeFinding.from_dict(data)
                known = self.collected.get(finding.key)
                if known is None:
                    finding.tests = [report.nodeid]
                    self.collected[finding.key] = finding
                else:
                    known.message, known.evidence = finding.message, finding.evidence
                    if report.nodeid not in known.tests:
                        known.tests.append(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.report_path and not hasattr(session.config, "workerinput"):
            from ..core.atomic_files import write_text_atomic

            findings = [f.to_dict() for f in self.collected.values()]
            write_text_atomic(self.report_path, json.dumps(findings, indent=2) + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        findings = list(self.collected.values())
        terminalreporter.section("esper-lint sanitize")
        for finding in findings:
            terminalreporter.write_line(finding.render())
        terminalreporter.write_line(summary_line(findings))
