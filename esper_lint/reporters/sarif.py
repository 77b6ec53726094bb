"""`--output-format sarif`: SARIF 2.1.0, the format GitHub code scanning (and other SAST viewers) read.

One run; the driver lists every rule with its documentation, so a viewer can show what a rule does, why it
matters and whether `--fix` can repair it. Paths are URIs relative to `%SRCROOT%` (the directory the check
ran in, which is the repository root in CI); columns count Unicode code points, as esper-lint's do. Results
that `--fix` repairs are marked `"fixable": true`; when a check run also carries the fixed source of a file
(`FileResult.new_source` beside `original_source`), each fixable result gets the edit as a SARIF `fix`.
"""

from __future__ import annotations

import difflib
import json
import os
from functools import cache
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..findings import FileError, FileResult, Finding
from ..rules import ALL_RULES, Rule
from ..runner import Mode, RunResult
from . import ReportContext

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"


@cache
def _documentation_url() -> str | None:
    """The `Documentation` project URL from the installed package's metadata, if the project declares one."""
    from importlib import metadata

    try:
        urls = metadata.metadata("esper-lint").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "documentation" and url.strip():
            docs: str = url.strip().rstrip("/")
            return docs
    return None


def help_uri(rule: type[Rule]) -> str:
    docs = _documentation_url()
    # Without a declared documentation site, point at the primary reference the rule's page cites.
    return f"{docs}/rules/{rule.code}.md" if docs else rule.references[0]


def rule_descriptor(rule: type[Rule]) -> dict[str, Any]:
    doc = rule.documentation()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": f"{rule.what_it_does} {rule.why_bad}"},
        "help": {"text": doc, "markdown": doc},
        "helpUri": help_uri(rule),
        "defaultConfiguration": {"enabled": rule.default_enabled, "level": "error"},
        "properties": {
            "tags": ["flexattention", "pytorch"],
            "fix": rule.fix,  # "safe": `esper-lint --fix` repairs it; "none": fix by hand
        },
    }


def artifact_uri(path: str) -> tuple[str, str | None]:
    """(uri, uriBaseId): relative paths stay relative to %SRCROOT%; absolute ones become file URIs."""
    if os.path.isabs(path):
        return Path(path).as_uri(), None
    return quote(PurePath(path).as_posix()), SRCROOT


def _location(path: str, region: dict[str, int] | None = None) -> dict[str, Any]:
    uri, base = artifact_uri(path)
    artifact: dict[str, Any] = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if region:
        physical["region"] = region
    return {"physicalLocation": physical}


def _text(source: bytes, path: str) -> str | None:
    from ..engine import SourceError, check_decodable

    try:
        return check_decodable(source, path)
    except SourceError:
        return None


def file_fix(file_result: FileResult) -> dict[str, Any] | None:
    """The file's safe fixes as minimal SARIF replacements (character offsets into the original text)."""
    if file_result.new_source is None or file_result.original_source is None:
        return None
    old = _text(file_result.original_source, file_result.path)
    new = _text(file_result.new_source, file_result.path)
    if old is None or new is None or old == new:
        return None
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    starts = [0]
    for line in old_lines:
        starts.append(starts[-1] + len(line))
    replacements = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        replacement: dict[str, Any] = {
            "deletedRegion": {"charOffset": starts[i1], "charLength": starts[i2] - starts[i1]}
        }
        if j2 > j1:
            replacement["insertedContent"] = {"text": "".join(new_lines[j1:j2])}
        replacements.append(replacement)
    uri, base = artifact_uri(file_result.path)
    location: dict[str, Any] = {"uri": uri}
    if base:
        location["uriBaseId"] = base
    return {
        "description": {"text": f"Apply esper-lint's safe fixes to {file_result.path} (`esper-lint --fix`)."},
        "artifactChanges": [{"artifactLocation": location, "replacements": replacements}],
    }


def _result(finding: Finding, rule_index: dict[str, int], fix: dict[str, Any] | None) -> dict[str, Any]:
    s = finding.span
    region = {"startLine": s.line, "startColumn": s.column, "endLine": s.end_line, "endColumn": s.end_column}
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": rule_index[finding.code],
        "level": "error",
        "kind": "fail",
        "message": {"text": finding.message},
        "locations": [_location(finding.path, region)],
        "properties": {"fixable": finding.fixable},
    }
    if finding.cell is not None:
        # A notebook's region counts lines in the cell (as ruff's); the cell is named beside it.
        result["properties"]["cell"] = finding.cell
        result["locations"][0]["logicalLocations"] = [_cell_location(finding.path, finding.cell)]
    if fix is not None and finding.fixable:
        result["fixes"] = [fix]
    return result


def _cell_location(path: str, cell: int) -> dict[str, Any]:
    return {"name": f"cell {cell}", "fullyQualifiedName": f"{path}:cell {cell}", "kind": "module"}


def _notification(error: FileError) -> dict[str, Any]:
    region = {"startLine": error.line, "startColumn": error.column or 1} if error.line else None
    location = _location(error.path, region)
    if error.cell is not None:
        location["logicalLocations"] = [_cell_location(error.path, error.cell)]
    return {
        "level": "error",
        "message": {"text": f"{error.kind.replace('-', ' ')}: {error.message}. The file was not checked."},
        "locations": [location],
    }


def sarif_log(run: RunResult, with_fixes: bool = True) -> dict[str, Any]:
    rule_index = {rule.code: i for i, rule in enumerate(ALL_RULES)}
    results: list[dict[str, Any]] = []
    for file_result in run.files:
        fix = file_fix(file_result) if with_fixes else None
        results.extend(_result(f, rule_index, fix) for f in file_result.findings)
    errors = run.all_errors
    invocation: dict[str, Any] = {"executionSuccessful": not errors}
    if errors:
        invocation["toolExecutionNotifications"] = [_notification(e) for e in errors]
    driver: dict[str, Any] = {"name": "esper-lint", "version": __version__, "semanticVersion": __version__}
    docs = _documentation_url()
    if docs:
        driver["informationUri"] = docs
    driver["rules"] = [rule_descriptor(rule) for rule in ALL_RULES]
    root = Path.cwd().as_uri()
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "originalUriBaseIds": {SRCROOT: {"uri": root if root.endswith("/") else root + "/"}},
                "columnKind": "unicodeCodePoints",
                "invocations": [invocation],
                "results": results,
            }
        ],
    }


def render(run: RunResult, ctx: ReportContext) -> str:
    # After --fix/--diff the findings left describe the fixed text, so an edit of the original would not apply.
    return json.dumps(sarif_log(run, with_fixes=ctx.mode is Mode.CHECK), indent=2) + "\n"
