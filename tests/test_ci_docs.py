"""A fresh clone stands alone (no test reads a file beside it), and docs/ci.md's snippets hold when read as
GitHub Actions and pre-commit read them: the SARIF upload has the permissions it needs and runs even when a
file could not be checked, actions are pinned to current major versions, and every `rev:` and install names
the release tag of the version in the package (`v` + `esper_lint.__version__`), which the release commit is
tagged with. No test reads the tags themselves: CI's clean checkout may not carry them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from esper_lint import __version__

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


def test_every_rev_names_the_release_tag_of_this_version() -> None:
    """The tag a release is made with: `v` + the package's version (docs/ci.md says so)."""
    tag = f"v{__version__}"
    revs = [repo["rev"] for b in yaml_blocks() if isinstance(b, dict) for repo in b.get("repos", [])]
    assert revs, "the pre-commit snippet is missing"
    assert revs == [tag] * len(revs)
    installs = re.findall(r"git\+ESPER_LINT_REPO@([\w.-]+)", CI_DOC)
    assert installs and set(installs) == {tag}, installs
    assert f"release tag `{tag}`" in CI_DOC
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(__version__)}\]", changelog, re.M), "the release has its CHANGELOG section"


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
