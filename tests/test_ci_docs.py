"""A fresh clone stands alone (no test reads a file beside it), and docs/ci.md's snippets hold when read as
GitHub Actions and pre-commit read them: the SARIF upload has the permissions it needs and runs even when a
file could not be checked, actions are pinned to current major versions, and every `rev:` names something
that exists (the repository has no release tags yet)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CI_DOC = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
CURRENT_MAJORS = {
    "actions/checkout": "v4",
    "actions/setup-python": "v5",
    "github/codeql-action/upload-sarif": "v3",
}


def yaml_blocks() -> list[Any]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", CI_DOC, re.S)]


def workflow() -> dict[str, Any]:
    [found] = [b for b in yaml_blocks() if isinstance(b, dict) and "jobs" in b and "permissions" in b]
    return found


def test_workflow_grants_what_upload_sarif_needs() -> None:
    permissions = workflow()["permissions"]
    assert permissions["security-events"] == "write"
    assert permissions["actions"] == "read"  # upload-sarif reads the run: needed on private repositories
    assert permissions["contents"] == "read"


def test_sarif_is_uploaded_even_when_the_check_step_fails() -> None:
    steps = [s for job in workflow()["jobs"].values() for s in job["steps"]]
    [upload] = [s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")]
    assert upload.get("if") == "always()"
    [sarif_step] = [s for s in steps if "--output-format sarif" in s.get("run", "")]
    assert f"-o {upload['with']['sarif_file']}" in sarif_step["run"]


def test_actions_are_pinned_to_current_major_versions() -> None:
    used = [s["uses"] for job in workflow()["jobs"].values() for s in job["steps"] if "uses" in s]
    assert {u.split("@")[0] for u in used} == set(CURRENT_MAJORS)
    for uses in used:
        action, version = uses.split("@")
        assert version == CURRENT_MAJORS[action], uses


def test_every_rev_names_something_that_exists() -> None:
    """A tag the repository has, or the COMMIT_SHA placeholder the text tells readers to fill in."""
    tags = subprocess.run(["git", "tag"], cwd=REPO, capture_output=True, text=True).stdout.split()
    revs = [repo["rev"] for b in yaml_blocks() if isinstance(b, dict) for repo in b.get("repos", [])]
    assert revs, "the pre-commit snippet is missing"
    for rev in revs:
        assert rev in tags or rev == "COMMIT_SHA", rev
    installs = re.findall(r"git\+ESPER_LINT_REPO@([\w.-]+)", CI_DOC)
    assert installs and all(ref in tags or ref == "COMMIT_SHA" for ref in installs), installs
    assert "pin a full\ncommit SHA" in CI_DOC


def test_tests_need_nothing_outside_the_clone() -> None:
    """The README's test command runs in a fresh clone alone in an empty folder: no test reads a file
    beside the repository (the SARIF schema once came from `../shared/`; it is in tests/data/ now)."""
    outside = re.compile(r"""(REPO|ROOT)\.parent\b|parents\[[2-9]\]|["']\.\./|["']shared["']""")
    offenders = [
        f"{path.name}:{number}"
        for path in sorted((REPO / "tests").glob("*.py"))
        if path.name != Path(__file__).name
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if outside.search(line)
    ]
    assert offenders == []
    assert (REPO / "tests" / "data" / "sarif-schema-2.1.0.json").is_file()
