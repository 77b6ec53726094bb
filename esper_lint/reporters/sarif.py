"""`--output-format sarif`: SARIF 2.1.0, the format GitHub code scanning (and other SAST viewers) read.

One run; the driver lists every rule with its documentation, so a viewer can show what a rule does, why it
matters and whether `--fix` can repair it; `helpUri` is the rule's page (docs/rules/CODE.md) at the project
URL the installed package declares (`Documentation`, else `Repository`/`Source`), and is left out when none
is declared rather than pointing elsewhere. Paths are URIs relative to `%SRCROOT%`, the project root (the
folder of the pyproject.toml that configured the run, else the nearest one above the current folder), so
they do not depend on where esper-lint was started; columns count Unicode code points, as esper-lint's do.
Results that `--fix` repairs are marked `"fixable": true`; when a check run computed a finding's own fix
(`Finding.fixed_source`, with the file's `original_source`), that result carries it as a SARIF `fix`.
"""

from __future__ import annotations

import difflib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..core.findings import FileError, FileResult, Finding
from ..rules import ALL_RULES, RULES_BY_CODE, Rule
from ..runner import Mode, RunResult
from . import ReportContext

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"


@cache
def _project_urls() -> dict[str, str]:
    """The installed package's project URLs by lower-case label (`[project.urls]` in pyproject.toml)."""
    from importlib import metadata

    try:
        entries = metadata.metadata("esper-lint").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return {}
    urls = {}
    for entry in entries:
        label, _, url = entry.partition(",")
        if url.strip():
            urls[label.strip().lower()] = url.strip().rstrip("/")
    return urls


def _documentation_url() -> str | None:
    return _project_urls().get("documentation")


def rules_url() -> str | None:
    """Where the rule pages (docs/rules/CODE.md) are published, from the project's declared URLs."""
    urls = _project_urls()
    if "documentation" in urls:
        return f"{urls['documentation']}/rules"
    for label in ("repository", "source", "source code"):
        if label in urls:
            return f"{urls[label]}/blob/HEAD/docs/rules"
    return None


def help_uri(rule: type[Rule]) -> str | None:
    base = rules_url()
    return f"{base}/{rule.code}.md" if base else None


def rule_descriptor(rule: type[Rule]) -> dict[str, Any]:
    doc = rule.documentation()
    descriptor: dict[str, Any] = {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": f"{rule.what_it_does} {rule.why_bad}"},
        "help": {"text": doc, "markdown": doc},
        "defaultConfiguration": {"enabled": rule.default_enabled, "level": "error"},
        "properties": {
            "tags": ["flexattention", "pytorch"],
            "fix": rule.fix,  # "safe": `esper-lint --fix` repairs it; "none": fix by hand
        },
    }
    uri = help_uri(rule)
    if uri is not None:
        descriptor["helpUri"] = uri
    return descriptor


def artifact_uri(path: str, root: Path | None = None) -> tuple[str, str | None]:
    """(uri, uriBaseId): paths under `root` (default: the current folder) become URIs relative to %SRCROOT%;
    others become file URIs."""
    base = root if root is not None else Path.cwd()
    absolute = Path(os.path.abspath(path))
    try:
        return quote(absolute.relative_to(base.resolve()).as_posix()), SRCROOT
    except ValueError:
        pass
    try:  # the root through a symbolic link (e.g. /tmp on macOS)
        return quote(absolute.resolve().relative_to(base.resolve()).as_posix()), SRCROOT
    except (ValueError, OSError):
        return absolute.as_uri(), None


def _location(path: str, root: Path | None, region: dict[str, int] | None = None) -> dict[str, Any]:
    uri, base = artifact_uri(path, root)
    artifact: dict[str, Any] = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if region:
        physical["region"] = region
    return {"physicalLocation": physical}


def _text(source: bytes, path: str) -> str | None:
    from ..core.decoding import SourceError, check_decodable

    try:
        return check_decodable(source, path)
    except SourceError:
        return None


def source_edit(path: str, original: bytes, fixed: bytes, description: str, root: Path | None = None) -> Any:
    """A SARIF `fix`: the change from `original` to `fixed` as minimal replacements (character offsets)."""
    old = _text(original, path)
    new = _text(fixed, path)
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
    artifact = _location(path, root)["physicalLocation"]["artifactLocation"]
    return {
        "description": {"text": description},
        "artifactChanges": [{"artifactLocation": artifact, "replacements": replacements}],
    }


def file_fix(file_result: FileResult, root: Path | None = None) -> dict[str, Any] | None:
    """All of a file's safe fixes as one SARIF `fix` (`new_source` against `original_source`)."""
    if file_result.new_source is None or file_result.original_source is None:
        return None
    description = f"Apply esper-lint's safe fixes to {file_result.path} (`esper-lint --fix`)."
    fix: dict[str, Any] | None = source_edit(
        file_result.path, file_result.original_source, file_result.new_source, description, root
    )
    return fix


def finding_fix(finding: Finding, original: bytes | None, root: Path | None = None) -> dict[str, Any] | None:
    """This finding's own fix (`Finding.fixed_source`), nothing else that `--fix` would change in the file."""
    if finding.fixed_source is None or original is None or not finding.fixable:
        return None
    s = finding.span
    unsafe = RULES_BY_CODE[finding.code].fix == "unsafe"  # carried only under --unsafe-fixes
    command = "esper-lint --fix --unsafe-fixes" if unsafe else "esper-lint --fix"
    description = f"Fix {finding.code} at line {s.line}, column {s.column} (what `{command}` does for it)."
    fix: dict[str, Any] | None = source_edit(finding.path, original, finding.fixed_source, description, root)
    return fix


def _result(finding: Finding, rule_index: dict[str, int], fix: dict[str, Any] | None, root: Path | None) -> Any:
    s = finding.span
    region = {"startLine": s.line, "startColumn": s.column, "endLine": s.end_line, "endColumn": s.end_column}
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": rule_index[finding.code],
        "level": "error",
        "kind": "fail",
        "message": {"text": finding.message},
        "locations": [_location(finding.path, root, region)],
        "properties": {"fixable": finding.fixable},
    }
    if finding.cell is not None:
        # A notebook's region counts lines in the cell (as ruff's); the cell is named beside it.
        result["properties"]["cell"] = finding.cell
        result["locations"][0]["logicalLocations"] = [_cell_location(finding.path, finding.cell)]
    if fix is not None:
        result["fixes"] = [fix]
    return result


def _cell_location(path: str, cell: int) -> dict[str, Any]:
    return {"name": f"cell {cell}", "fullyQualifiedName": f"{path}:cell {cell}", "kind": "module"}


def _notification(error: FileError, root: Path | None) -> dict[str, Any]:
    region = {"startLine": error.line, "startColumn": error.column or 1} if error.line else None
    text = f"{error.kind.replace('-', ' ')}: {error.message}"
    if not error.says_not_checked:
        text += ". The file was not checked."
    location = _location(error.path, root, region)
    if error.cell is not None:
        location["logicalLocations"] = [_cell_location(error.path, error.cell)]
    return {"level": "error", "message": {"text": text}, "locations": [location]}


def sarif_log(run: RunResult, with_fixes: bool = True, root: Path | None = None) -> dict[str, Any]:
    """The SARIF log; `root` is %SRCROOT%, the folder artifact URIs are relative to (default: the current one)."""
    rule_index = {rule.code: i for i, rule in enumerate(ALL_RULES)}
    results: list[dict[str, Any]] = []
    for file_result in run.files:
        for f in file_result.findings:
            fix = finding_fix(f, file_result.original_source, root) if with_fixes else None
            results.append(_result(f, rule_index, fix, root))
    errors = run.all_errors
    invocation: dict[str, Any] = {"executionSuccessful": not errors}
    if errors:
        invocation["toolExecutionNotifications"] = [_notification(e, root) for e in errors]
    driver: dict[str, Any] = {"name": "esper-lint", "version": __version__, "semanticVersion": __version__}
    docs = _documentation_url()
    if docs:
        driver["informationUri"] = docs
    driver["rules"] = [rule_descriptor(rule) for rule in ALL_RULES]
    base = (root if root is not None else Path.cwd()).resolve().as_uri()
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "originalUriBaseIds": {SRCROOT: {"uri": base if base.endswith("/") else base + "/"}},
                "columnKind": "unicodeCodePoints",
                "invocations": [invocation],
                "results": results,
            }
        ],
    }


def render(run: RunResult, ctx: ReportContext) -> str:
    # After --fix the findings left describe the fixed text, so an edit of the original would not apply.
    return json.dumps(sarif_log(run, with_fixes=ctx.mode is Mode.CHECK, root=ctx.root), indent=2) + "\n"
