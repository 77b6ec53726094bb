"""The sanitizer's state: the active sessions, the findings they collected, and the check budget.

Torch-free. A session is one `with sanitize():` block, one CLI run or one pytest session; sessions nest
(a `with sanitize():` inside a sanitized pytest run), and a finding goes to every active one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .records import RuntimeFinding

# Findings whose message carries a running count: reported again as it grows, counted once.
CUMULATIVE = frozenset({"ESP015", "ESP016", "ESP030"})

Listener = Callable[[RuntimeFinding, bool], None]  # (finding, first time seen)


class Session:
    def __init__(self, strict: bool = False, listener: Listener | None = None) -> None:
        self.strict = strict
        self.findings: dict[tuple[str, str, str], RuntimeFinding] = {}
        self.listener = listener
        self.current_test: str | None = None  # pytest: the test running now

    def add(self, finding: RuntimeFinding) -> RuntimeFinding:
        known = self.findings.get(finding.key)
        first = known is None
        if known is None:
            known = finding
            self.findings[finding.key] = finding
        else:
            if finding.code not in CUMULATIVE:
                known.count += 1
            known.message = finding.message  # the latest count (ESP016's calls, ESP015's graphs)
            known.evidence.update(finding.evidence)
        if self.current_test is not None and self.current_test not in known.tests:
            known.tests.append(self.current_test)
        if self.listener is not None:
            self.listener(known, first)
        return known

    def all(self) -> list[RuntimeFinding]:
        return list(self.findings.values())


class Budget:
    """Bounded cost: after a first allowance, checks may take at most `share` of the time the program has
    run since the sanitizer started; a check that would go over is skipped (the real call always runs)."""

    def __init__(self, share: float = 0.1, allowance_s: float = 1.0) -> None:
        self.share = share
        self.allowance_s = allowance_s
        self.started = time.perf_counter()
        self.spent = 0.0
        self.skipped = 0

    def allows(self) -> bool:
        elapsed = time.perf_counter() - self.started
        if self.spent <= self.allowance_s + self.share * elapsed:
            return True
        self.skipped += 1
        return False

    def charge(self, seconds: float) -> None:
        self.spent += seconds


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.sessions: list[Session] = []
        share = os.environ.get("ESPER_SANITIZE_BUDGET", "")  # the checks' share of run time (default 0.1)
        self.budget = Budget(float(share)) if share.replace(".", "", 1).isdigit() else Budget()
        self.local = threading.local()  # `.depth`: inside an entry point already (torch calls its own)

    @property
    def strict(self) -> bool:
        return any(s.strict for s in self.sessions)

    def report(self, finding: RuntimeFinding) -> list[RuntimeFinding]:
        with self.lock:
            return [session.add(_copy(finding)) for session in self.sessions]

    def set_test(self, nodeid: str | None) -> None:
        with self.lock:
            for session in self.sessions:
                session.current_test = nodeid


def _copy(finding: RuntimeFinding) -> RuntimeFinding:
    # Each session counts on its own copy.
    evidence: dict[str, Any] = dict(finding.evidence)
    return RuntimeFinding(
        finding.code,
        finding.message,
        finding.definition,
        finding.call_site,
        evidence,
        finding.severity,
        finding.at_definition,
        finding.count,
        list(finding.tests),
    )


STATE = State()
