"""benchmarks/corpus/run.py: the real-code corpus tool (extract, scan, compare, score) on tiny synthetic folders.

No network and no real corpus: a throwaway git repository stands in for a `fetch` snapshot, a hand-made zip
for a wheel, and a two-file folder for a corpus repository scanned by the installed esper-lint.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "benchmarks" / "corpus" / "run.py"


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus_run", TOOL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["corpus_run"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


corpus = _load_tool()

NESTED_MASK = """\
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    return create_block_mask(causal, None, None, n, n)
"""


def _manifest(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "repos.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -------------------------------------------------------------------------------------------- manifest


def test_manifest_reads_github_and_pypi_entries(tmp_path: Path) -> None:
    manifest = _manifest(
        tmp_path,
        '[[repo]]\nname = "gym"\ngithub = "o/gym"\ncommit = "abc"\npaths = ["src"]\n\n'
        '[[repo]]\nname = "tf"\npypi = "tf==1.0"\npackages = ["tf"]\n',
    )
    gym, tf = corpus.load_manifest(manifest)
    assert (gym.github, gym.commit, gym.paths) == ("o/gym", "abc", ("src",))
    assert (tf.pypi, tf.packages, tf.paths) == ("tf==1.0", ("tf",), (".",))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[repo]]\nname = "a"\ngithub = "o/a"\n', "commit"),
        ('[[repo]]\nname = "a"\ngithub = "o/a"\ncommit = "c"\npypi = "a==1"\n', "exactly one"),
        ('[[repo]]\nname = "a"\npypi = "a==1"\n\n[[repo]]\nname = "a"\npypi = "a==2"\n', "twice"),
        ('[[repo]]\nname = "self-fixtures"\npypi = "a==1"\n', "bad repository name"),
        ('[[repo]]\nname = "sub/../up"\npypi = "a==1"\n', "bad repository name"),
    ],
)
def test_manifest_rejects_bad_entries(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(corpus.CorpusError, match=message):
        corpus.load_manifest(_manifest(tmp_path, text))


def test_the_shipped_manifest_lists_at_least_24_repositories_with_commits() -> None:
    repos = corpus.load_manifest()
    assert len(repos) >= 24
    assert all(len(r.commit) == 40 for r in repos if r.github)


# --------------------------------------------------------------------------------------------- extract


def _snapshot(mirrors: Path) -> tuple[str, str]:
    """A git repository laid out like a `fetch` snapshot (owner+name/repo/.git); returns (first, second) commits."""
    work = mirrors / "owner+proj" / "repo"
    work.mkdir(parents=True)

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=work, check=True, capture_output=True
        )
        return done.stdout.decode().strip()

    git("init", "-q")
    (work / "pkg").mkdir()
    (work / "pkg" / "model.py").write_text(NESTED_MASK, encoding="utf-8")
    (work / "README.md").write_text("not source\n", encoding="utf-8")
    (work / "link.py").symlink_to("pkg/model.py")  # links are never extracted
    git("add", "-A")
    git("commit", "-q", "-m", "one")
    first = git("rev-parse", "HEAD")
    (work / "pkg" / "later.py").write_text("x = 1\n", encoding="utf-8")
    git("add", "-A")
    git("commit", "-q", "-m", "two")
    return first, git("rev-parse", "HEAD")


def test_extract_writes_the_pinned_commits_source_files_only(tmp_path: Path) -> None:
    first, _ = _snapshot(tmp_path / "mirrors")
    repo = corpus.Repo(name="proj", github="owner/proj", commit=first)
    dest = tmp_path / "out"
    dest.mkdir()
    assert corpus.extract_github(repo, tmp_path / "mirrors", dest) == 1
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == ["pkg/model.py"]
    assert (dest / "pkg" / "model.py").read_text(encoding="utf-8") == NESTED_MASK


def test_extract_names_the_snapshot_head_when_the_commit_is_missing(tmp_path: Path) -> None:
    _, head = _snapshot(tmp_path / "mirrors")
    repo = corpus.Repo(name="proj", github="owner/proj", commit="0" * 40)
    with pytest.raises(corpus.CorpusError, match=f"its HEAD is {head}"):
        corpus.extract_github(repo, tmp_path / "mirrors", tmp_path)


def test_extract_command_keeps_existing_folders_and_never_leaves_a_partial_one(tmp_path: Path) -> None:
    first, _ = _snapshot(tmp_path / "mirrors")
    manifest = _manifest(
        tmp_path,
        f'[[repo]]\nname = "proj"\ngithub = "owner/proj"\ncommit = "{first}"\n\n'
        '[[repo]]\nname = "gone"\ngithub = "owner/gone"\ncommit = "abc"\n',
    )
    dest = tmp_path / "corpus"
    argv = ["--manifest", str(manifest), "extract", "--dest", str(dest), "--mirrors", str(tmp_path / "mirrors")]
    assert corpus.main(argv) == 2  # `gone` has no snapshot
    assert (dest / "proj" / "pkg" / "model.py").is_file()
    assert not (dest / "gone").exists() and not list(dest.glob(".*partial"))
    (dest / "proj" / "pkg" / "model.py").write_text("edited\n", encoding="utf-8")
    assert corpus.main([*argv[:-2], "--mirrors", str(tmp_path / "mirrors"), "--only", "proj"]) == 0
    assert (dest / "proj" / "pkg" / "model.py").read_text(encoding="utf-8") == "edited\n"  # kept without --force


def test_unpack_wheel_keeps_the_named_packages_source(tmp_path: Path) -> None:
    wheel = tmp_path / "tf-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("tf/__init__.py", "")
        archive.writestr("tf/masks.py", NESTED_MASK)
        archive.writestr("tf/data.bin", "x")
        archive.writestr("other/mod.py", "")
        archive.writestr("tf/../../escape.py", "")
        archive.writestr("tf-1.0.dist-info/METADATA", "")
    assert corpus.unpack_wheel(wheel, ["tf"], tmp_path / "out") == 2
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == ["__init__.py", "masks.py"]
    assert not (tmp_path / "escape.py").exists()


# ------------------------------------------------------------------------------------------ scan/compare


def _tiny_corpus(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "corpus"
    (root / "proj" / "pkg").mkdir(parents=True)
    (root / "proj" / "pkg" / "model.py").write_text(NESTED_MASK, encoding="utf-8")
    (root / "proj" / "clean.py").write_text("x = 1\n", encoding="utf-8")
    manifest = _manifest(tmp_path, '[[repo]]\nname = "proj"\ngithub = "o/proj"\ncommit = "c"\n')
    return root, manifest


def _scan(manifest: Path, root: Path, out: Path, *extra: str) -> int:
    result: int = corpus.main(
        [
            "--manifest",
            str(manifest),
            "scan",
            "--corpus",
            str(root),
            "--out",
            str(out),
            "--no-self",
            "--jobs",
            "1",
            *extra,
        ]
    )
    return result


def test_scan_writes_one_output_per_mode_from_inside_the_repository(tmp_path: Path) -> None:
    root, manifest = _tiny_corpus(tmp_path)
    out = tmp_path / "scan"
    assert _scan(manifest, root, out) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "_scan.json",
        "proj.diff",
        "proj.diff.stderr",
        "proj.json",
        "proj.json.stderr",
        "proj.sarif",
        "proj.sarif.stderr",
    ]
    findings = json.loads((out / "proj.json").read_text(encoding="utf-8"))
    assert [(f["path"], f["line"], f["code"]) for f in findings] == [("pkg/model.py", 8, "ESP001")]
    assert (out / "proj.diff").read_text(encoding="utf-8").startswith("--- a/pkg/model.py")
    assert json.loads((out / "proj.sarif").read_text(encoding="utf-8"))["version"] == "2.1.0"
    assert (out / "proj.json.stderr").read_text(encoding="utf-8").endswith("exit: 1\n")
    record = json.loads((out / "_scan.json").read_text(encoding="utf-8"))
    assert record["corpus"] == str(root.resolve()) and record["select"] is None


def test_scan_passes_the_selection_through(tmp_path: Path) -> None:
    root, manifest = _tiny_corpus(tmp_path)
    out = tmp_path / "scan"
    assert _scan(manifest, root, out, "--modes", "json", "--select", "ESP009") == 0
    assert json.loads((out / "proj.json").read_text(encoding="utf-8")) == []
    assert json.loads((out / "_scan.json").read_text(encoding="utf-8"))["select"] == "ESP009"


def test_scan_rejects_an_unknown_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, manifest = _tiny_corpus(tmp_path)
    assert _scan(manifest, root, tmp_path / "scan", "--modes", "json,xml") == 2
    assert "unknown mode(s) xml" in capsys.readouterr().err


def test_scan_targets_include_this_checkouts_fixtures_and_behaviour_corpus(tmp_path: Path) -> None:
    targets = corpus.scan_targets([], None, tmp_path, None)
    assert [(t.name, t.cwd, t.paths) for t in targets] == [
        ("self-fixtures", tmp_path, ("fixtures",)),
        ("self-behaviour", tmp_path, ("tests/behaviour",)),
    ]


def test_two_scans_of_the_same_code_from_different_folders_compare_identical(tmp_path: Path) -> None:
    root, manifest = _tiny_corpus(tmp_path)
    assert _scan(manifest, root, tmp_path / "a", "--modes", "sarif") == 0
    moved = tmp_path / "elsewhere" / "corpus"
    shutil.copytree(root, moved)
    assert _scan(manifest, moved, tmp_path / "b", "--modes", "sarif") == 0
    # SARIF names files by absolute URI (outside the /dev project root of --config /dev/null) ...
    assert str(root) in (tmp_path / "a" / "proj.sarif").read_text(encoding="utf-8")
    # ... and compare replaces each scan's own folder before comparing bytes.
    lines, differing = corpus.compare_scans(tmp_path / "a", tmp_path / "b")
    assert differing == 0 and lines[-1] == "identical: 3 files"


def test_compare_lists_each_differing_output_with_a_short_diff(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "same.json").write_text("[]\n", encoding="utf-8")
    (a / "x.json").write_text('[\n  "ESP001"\n]\n', encoding="utf-8")
    (b / "x.json").write_text('[\n  "ESP002"\n]\n', encoding="utf-8")
    (a / "only.diff").write_text("", encoding="utf-8")
    (a / "_scan.json").write_text('{"version": "1"}', encoding="utf-8")
    (b / "_scan.json").write_text('{"version": "2"}', encoding="utf-8")
    lines, differing = corpus.compare_scans(a, b)
    assert differing == 2
    assert f"only in {a}: only.diff" in lines
    assert "differs: x.json" in lines and '    -  "ESP001"' in lines and '    +  "ESP002"' in lines
    assert "differs (how the scan was made, not counted): _scan.json" in lines
    assert corpus.main(["compare", str(a), str(b)]) == 1
    assert corpus.main(["compare", str(a), str(a)]) == 0


# ----------------------------------------------------------------------------------------------- score


def _write_scan(folder: Path, findings: dict[str, list[tuple[str, int, str]]]) -> None:
    folder.mkdir()
    for repo, items in findings.items():
        rows = [{"path": path, "line": line, "code": code} for path, line, code in items]
        (folder / f"{repo}.json").write_text(json.dumps(rows), encoding="utf-8")


def test_score_counts_recall_by_label_and_precision_by_finding(tmp_path: Path) -> None:
    scan = tmp_path / "scan"
    _write_scan(
        scan,
        {
            "gym": [("a.py", 12, "ESP009"), ("a.py", 12, "ESP009"), ("b.py", 3, "ESP008"), ("c.py", 9, "ESP001")],
            "self-fixtures": [("fixtures/x.py", 1, "ESP001")],
            "empty": [],
        },
    )
    labels = tmp_path / "labels.toml"
    labels.write_text(
        '[[mistake]]\nrepo = "gym"\npath = "a.py"\nline = 10\nend_line = 13\ncode = "ESP009"\nwhy = "B and H"\n\n'
        '[[mistake]]\nrepo = "gym"\npath = "m.py"\nline = 4\ncode = "ESP001"\nalso_at = ["c.py:9"]\nwhy = "w"\n\n'
        '[[mistake]]\nrepo = "gym"\npath = "d.py"\nline = 5\ncode = "ESP017"\nwhy = "w"\ncause = "new rule"\n\n'
        '[[mistake]]\nrepo = "unscanned"\npath = "d.py"\nline = 5\ncode = "ESP017"\nwhy = "w"\n\n'
        '[[doubtful]]\nrepo = "gym"\npath = "e.py"\nline = 1\ncode = "ESP003"\nwhy = "w"\n',
        encoding="utf-8",
    )
    verdicts = tmp_path / "verdicts.toml"
    verdicts.write_text(
        '[[finding]]\nrepo = "gym"\npath = "a.py"\nline = 12\ncode = "ESP009"\nverdict = "true"\nwhy = "w"\n\n'
        '[[finding]]\nrepo = "gym"\npath = "b.py"\nline = 3\ncode = "ESP008"\nverdict = "false"\nwhy = "w"\n\n'
        '[[finding]]\nrepo = "gym"\npath = "z.py"\nline = 1\ncode = "ESP010"\nverdict = "true"\nwhy = "gone"\n',
        encoding="utf-8",
    )
    findings = corpus.scan_findings(scan)
    mistakes, doubtful = corpus.load_labels(labels)
    result = corpus.score(findings, mistakes, corpus.load_verdicts(verdicts), {"gym", "self-fixtures", "empty"})
    assert (result.labelled, result.found) == ({"ESP009": 1, "ESP001": 1, "ESP017": 1}, {"ESP009": 1, "ESP001": 1})
    assert [m.key.code for m in result.misses] == ["ESP017"] and len(doubtful) == 1
    assert result.true == {"ESP009": 2}  # two findings on one line are two findings
    assert result.false == [corpus.Key("gym", "b.py", 3, "ESP008")]
    assert result.unjudged == [corpus.Key("gym", "c.py", 9, "ESP001")]  # self-* outputs are not judged
    assert result.stale_verdicts == [corpus.Key("gym", "z.py", 1, "ESP010")]
    report = "\n".join(corpus.render_score(result))
    assert "ESP001-ESP016: 2/2 (100%)" in report and "ESP017-ESP030 (issue 22): 0/1 (0%)" in report
    assert "Precision of the default rules (findings judged by hand): 2/3 (67%)" in report
    assert "  new rule (1):" in report
    argv = ["score", str(scan), "--labels", str(labels), "--verdicts", str(verdicts)]
    assert corpus.main(argv) == 1  # a false positive fails the score


def test_score_rejects_a_verdict_other_than_true_or_false(tmp_path: Path) -> None:
    verdicts = tmp_path / "v.toml"
    verdicts.write_text('[[finding]]\nrepo = "r"\npath = "p"\nline = 1\ncode = "ESP001"\nverdict = "maybe"\n')
    with pytest.raises(corpus.CorpusError, match="verdict must be"):
        corpus.load_verdicts(verdicts)


def test_the_shipped_labels_and_verdicts_load_and_agree() -> None:
    mistakes, doubtful = corpus.load_labels()
    verdicts = corpus.load_verdicts()
    names = {r.name for r in corpus.load_manifest()}
    assert mistakes and doubtful and verdicts
    assert {m.key.repo for m in mistakes} <= names and {v.key.repo for v in verdicts} <= names
    # Every true finding of the default rules is also a labelled mistake (found today), matched the way
    # `score` matches them: a label covers its line span and its `also_at` places.
    unlabelled = [v.key for v in verdicts if v.verdict == "true" and not any(m.matches(v.key) for m in mistakes)]
    assert unlabelled == []
