"""`--output-format junit`: JUnit XML for CI test-report views (GitLab, Jenkins, Azure, GitHub test reporters).

One `<testsuite>` per file with findings, one failing `<testcase>` per finding (ruff's layout); a file that
could not be checked is a testcase with an `<error>`. A clean run is one passing testcase, so report
viewers show the check ran instead of an empty report.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from ..core.findings import FileError, Finding
from ..runner import RunResult
from . import ReportContext

SUITE = "esper-lint"


def _suite(parent: ET.Element, name: str, tests: int, failures: int, errors: int) -> ET.Element:
    return ET.SubElement(
        parent,
        "testsuite",
        name=name,
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        package=SUITE,
    )


def _finding_case(suite: ET.Element, f: Finding) -> None:
    s = f.span
    case = ET.SubElement(
        suite,
        "testcase",
        name=f"{f.code} ({f.name}) at {'' if f.cell is None else f'cell {f.cell}, '}line {s.line}, column {s.column}",
        classname=f.path,
        file=f.path,
        line=str(s.line),
    )
    failure = ET.SubElement(case, "failure", message=f.message, type=f.code)
    failure.text = f"{f.position}: {f.code} {f.message}"


def _error_case(suite: ET.Element, e: FileError) -> None:
    case = ET.SubElement(suite, "testcase", name=f"{e.kind} in {e.path}", classname=e.path, file=e.path)
    if e.line is not None:
        case.set("line", str(e.line))
    message = e.message if e.says_not_checked else f"{e.message}. The file was not checked."
    error = ET.SubElement(case, "error", message=message, type=e.kind)
    error.text = str(e)


def render(run: RunResult, ctx: ReportContext) -> str:
    findings = run.findings
    errors = run.all_errors
    by_path: dict[str, tuple[list[Finding], list[FileError]]] = defaultdict(lambda: ([], []))
    for f in findings:
        by_path[f.path][0].append(f)
    for e in errors:
        by_path[e.path][1].append(e)
    tests = len(findings) + len(errors)
    root = ET.Element(
        "testsuites", name=SUITE, tests=str(tests or 1), failures=str(len(findings)), errors=str(len(errors))
    )
    if not by_path:
        suite = _suite(root, SUITE, 1, 0, 0)
        ET.SubElement(suite, "testcase", name="No findings", classname=SUITE)
    for path, (file_findings, file_errors) in by_path.items():
        suite = _suite(root, path, len(file_findings) + len(file_errors), len(file_findings), len(file_errors))
        for e in file_errors:
            _error_case(suite, e)
        for f in file_findings:
            _finding_case(suite, f)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
