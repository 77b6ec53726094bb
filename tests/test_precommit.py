"""The pre-commit hooks, run by the real pre-commit against a snapshot of this checkout.

pre-commit installs the hook repository into its own virtualenv with pip (PyPI is needed for the first
install; later tests reuse it). The snapshot holds the working tree as it is, uncommitted changes included,
committed into a throwaway git repository that the user project's `.pre-commit-config.yaml` points at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import NESTED

REPO = Path(__file__).resolve().parents[1]

# One worker runs them all, so the hook environment is installed once per run.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pre-commit")]


CLEAN = """\
from torch.nn.attention.flex_attention import create_block_mask


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def build(n):
    return create_block_mask(causal, None, None, n, n)
"""

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(cwd)}
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return proc.stdout


@dataclass
class HookRepo:
    path: Path
    rev: str
    home: Path  # PRE_COMMIT_HOME: where pre-commit keeps the hook's virtualenv


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HookRepo]:
    snapshot = tmp_path_factory.mktemp("esper-lint-hooks")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file():  # files deleted in the working tree are still listed as cached
            (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, snapshot / rel)
    git("init", "-q", cwd=snapshot)
    git("add", "-A", cwd=snapshot)
    git("commit", "-q", "-m", "snapshot", cwd=snapshot)
    rev = git("rev-parse", "HEAD", cwd=snapshot).strip()
    yield HookRepo(snapshot, rev, tmp_path_factory.mktemp("pre-commit-home"))


@dataclass
class Project:
    path: Path
    hooks: HookRepo

    def write(self, rel: str, text: str) -> Path:
        path = self.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def stage(self) -> None:
        git("add", "-A", cwd=self.path)

    def pre_commit(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(self.hooks.home), "PRE_COMMIT_COLOR": "never"}
        env.pop("PRE_COMMIT", None)
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
        )


@pytest.fixture
def project(tmp_path: Path, hook_repo: HookRepo) -> Project:
    git("init", "-q", cwd=tmp_path)
    config = {
        "repos": [
            {
                "repo": str(hook_repo.path),
                "rev": hook_repo.rev,
                "hooks": [{"id": "esper-lint"}, {"id": "esper-lint-fix"}],
            }
        ]
    }
    (tmp_path / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    return Project(tmp_path, hook_repo)


def test_manifest_and_contributor_config_are_valid() -> None:
    for command, path in (
        ("validate-manifest", ".pre-commit-hooks.yaml"),
        ("validate-config", ".pre-commit-config.yaml"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "pre_commit", command, path], cwd=REPO, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hooks_pass_force_exclude_and_only_python_files() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"esper-lint", "esper-lint-fix"}
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["types_or"] == ["python", "pyi", "jupyter"]
        assert "--force-exclude" in hook["entry"].split()
    assert "--fix" in hooks["esper-lint-fix"]["entry"].split()
    assert "--fix" not in hooks["esper-lint"]["entry"].split()


def test_check_hook_fails_on_a_staged_nested_mask(project: Project) -> None:
    project.write("model.py", NESTED)
    project.stage()
    proc = project.pre_commit("run", "esper-lint")  # no --files: the staged files, as on `git commit`
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "model.py:8:30: ESP001 " in proc.stdout
    assert (project.path / "model.py").read_text() == NESTED  # the check hook never writes


def test_check_hook_passes_on_a_clean_file(project: Project) -> None:
    project.write("model.py", CLEAN)
    project.stage()
    proc = project.pre_commit("run", "esper-lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout


def test_fix_hook_rewrites_the_file_and_fails_the_commit(project: Project) -> None:
    project.write("model.py", NESTED)
    project.stage()
    proc = project.pre_commit("run", "esper-lint-fix")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # files changed: pre-commit stops the commit
    assert "files were modified by this hook" in proc.stdout
    fixed = (project.path / "model.py").read_text()
    assert fixed.index("def causal") < fixed.index("def build")
    assert fixed.count("def causal") == 1
    project.stage()
    again = project.pre_commit("run", "esper-lint")
    assert again.returncode == 0, again.stdout + again.stderr


def test_fix_hook_fails_when_findings_remain_unfixable(project: Project) -> None:
    source = NESTED.replace("q_idx >= kv_idx", "q_idx >= kv_idx - n")  # captures `n`: no safe fix, and ESP006 is off
    source = source.replace("def build(n):", "class M:\n  def build(self, n):").replace("kv_idx - n", "self.w")
    project.write("model.py", source)
    project.stage()
    proc = project.pre_commit("run", "esper-lint-fix")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ESP003" in proc.stdout
    assert (project.path / "model.py").read_text() == source


def test_configured_excludes_hold_for_files_pre_commit_names(project: Project) -> None:
    project.write("pyproject.toml", '[tool.esper-lint]\nextend-exclude = ["generated", "vendored_*.py"]\n')
    project.write("generated/model.py", NESTED)
    project.write("vendored_attention.py", NESTED)
    project.write("src/model.py", NESTED)
    project.stage()
    proc = project.pre_commit("run", "esper-lint")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "src/model.py:8:30: ESP001" in proc.stdout  # the hook ran on the staged files...
    assert "generated/model.py" not in proc.stdout  # ...but not on the excluded ones
    assert "vendored_attention.py" not in proc.stdout


def test_non_python_files_are_not_passed(project: Project) -> None:
    project.write("notes.txt", NESTED)
    project.stage()
    proc = project.pre_commit("run", "esper-lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(no files to check)Skipped" in proc.stdout


def test_installing_the_hook_does_not_install_torch(project: Project) -> None:
    project.write("model.py", CLEAN)
    project.stage()
    assert project.pre_commit("run", "esper-lint").returncode == 0
    site_packages = list(project.hooks.home.glob("*/py_env-*/lib/python*/site-packages"))
    assert site_packages, f"no hook environment under {project.hooks.home}"
    installed = {p.name.lower() for sp in site_packages for p in sp.iterdir()}
    assert "esper_lint" in installed and "libcst" in installed
    assert not any(name == "torch" or name.startswith("torch-") for name in installed)
