"""Real-code corpus for esper-lint: extract it, scan it, compare two scans, score a scan.

    python benchmarks/corpus/run.py extract --dest /work/corpus
    python benchmarks/corpus/run.py scan --corpus /work/corpus --out /work/scans/main-default
    python benchmarks/corpus/run.py scan --corpus /work/corpus --out /work/scans/main-all --select ALL
    python benchmarks/corpus/run.py compare /work/scans/main-default /work/scans/branch-default
    python benchmarks/corpus/run.py score /work/scans/main-default

The corpus is public code that uses FlexAttention, listed in `repos.toml` next to this file (name, GitHub
address or PyPI pin, the commit used, the subpaths worth scanning). Third-party code never enters this
repository: `extract` writes it to a folder given on the command line, from the bare git snapshots that
the session's `fetch` tool brings under --mirrors (`owner+name/repo`), or from `pip download` for the
PyPI entries (torch, transformers: too large for a snapshot).

`scan` runs the installed esper-lint (`--no-cache --config /dev/null`, so no project configuration and
no cache can change the output) once per repository and mode, from inside the repository's folder so
every path in the output is relative and two scans of the same code compare byte for byte. It also scans
this repository's own `fixtures/` and `tests/behaviour/` the same way (`self-fixtures`,
`self-behaviour`). One file per repository and mode: `NAME.json`, `NAME.diff`, `NAME.sarif` (stdout),
each with `NAME.MODE.stderr` (stderr and the exit status). `_scan.json` records how the scan was made;
`compare` reports it but does not count it as a difference.

`score` reads `labels.toml` (the real mistakes found by reading the code; recall = labelled mistakes
reported / labelled) and `verdicts.toml` (every finding of the default rules, read by hand: precision =
true / judged). A finding with no verdict is listed: read it and add one.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from esper_lint.rules import ALL_RULES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the dev venv is 3.11+
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
MANIFEST = HERE / "repos.toml"
LABELS = HERE / "labels.toml"
VERDICTS = HERE / "verdicts.toml"

MODES = ("json", "diff", "sarif")
MODE_ARGS = {"json": ["--output-format", "json"], "diff": ["--diff"], "sarif": ["--output-format", "sarif"]}
# Files esper-lint reads (files.PYTHON_SUFFIXES and notebooks); nothing else is extracted.
SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")
# This repository's own programs, scanned like a corpus repository.
SELF_TARGETS = {"self-fixtures": ["fixtures"], "self-behaviour": ["tests/behaviour"]}
# Precision is judged for the rules on by default: the opt-in ones, from the rule registry itself.
DEFAULT_OFF = frozenset(rule.code for rule in ALL_RULES if not rule.default_enabled)


class CorpusError(Exception):
    """A problem the user can fix (missing snapshot, bad manifest); printed without a traceback."""


@dataclass(frozen=True)
class Repo:
    name: str
    github: str = ""  # owner/name
    commit: str = ""
    pypi: str = ""  # a pip requirement, e.g. "transformers==5.24.0"
    packages: tuple[str, ...] = ()  # for pypi: the top-level folders of the wheel to keep
    paths: tuple[str, ...] = (".",)  # what to scan, relative to the repository's folder
    note: str = ""


def load_manifest(path: Path = MANIFEST) -> list[Repo]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    repos = []
    seen: set[str] = set()
    for entry in data.get("repo", []):
        name = entry.get("name", "")
        if not name or "/" in name or name.startswith((".", "_", "self-")):
            raise CorpusError(f"{path}: bad repository name {name!r}")
        if name in seen:
            raise CorpusError(f"{path}: {name} is listed twice")
        seen.add(name)
        repo = Repo(
            name=name,
            github=entry.get("github", ""),
            commit=entry.get("commit", ""),
            pypi=entry.get("pypi", ""),
            packages=tuple(entry.get("packages", ())),
            paths=tuple(entry.get("paths", (".",))),
            note=entry.get("note", ""),
        )
        if bool(repo.github) == bool(repo.pypi):
            raise CorpusError(f"{path}: {name} needs exactly one of `github` and `pypi`")
        if repo.github and not repo.commit:
            raise CorpusError(f"{path}: {name} needs the `commit` that was scanned")
        repos.append(repo)
    return repos


def select_repos(repos: list[Repo], only: str | None) -> list[Repo]:
    if not only:
        return repos
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    known = {r.name for r in repos}
    unknown = [n for n in wanted if n not in known and n not in SELF_TARGETS]
    if unknown:
        raise CorpusError(f"not in the manifest: {', '.join(unknown)}")
    return [r for r in repos if r.name in wanted]


# ---------------------------------------------------------------------------------------------- extract


def _git_dir(mirrors: Path, github: str) -> Path:
    base = mirrors / github.replace("/", "+") / "repo"
    git_dir = base / ".git" if (base / ".git").is_dir() else base
    if not (git_dir / "HEAD").is_file():
        raise CorpusError(f"no snapshot of {github} under {mirrors} (bring it with the `fetch` tool)")
    return git_dir


def _git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True).stdout


def _is_source(name: str) -> bool:
    return name.endswith(SOURCE_SUFFIXES)


def _safe_member(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts


def extract_github(repo: Repo, mirrors: Path, dest: Path) -> int:
    git_dir = _git_dir(mirrors, repo.github)
    try:
        _git(git_dir, "cat-file", "-e", f"{repo.commit}^{{commit}}")
    except subprocess.CalledProcessError:
        head = _git(git_dir, "rev-parse", "HEAD").decode().strip()
        raise CorpusError(
            f"{repo.name}: commit {repo.commit} is not in the snapshot of {repo.github} (its HEAD is {head})"
        ) from None
    listing = _git(git_dir, "ls-tree", "-r", "-z", repo.commit).split(b"\0")
    count = 0
    for line in listing:
        if not line:
            continue
        meta, _, raw_path = line.partition(b"\t")
        mode, kind, blob = meta.decode().split()
        path = raw_path.decode("utf-8", "surrogateescape")
        # Regular files only: links could point outside the folder; snapshots lack files of 4 MiB and more.
        if kind != "blob" or mode not in ("100644", "100755") or not _is_source(path) or not _safe_member(path):
            continue
        try:
            content = _git(git_dir, "cat-file", "blob", blob)
        except subprocess.CalledProcessError:
            print(f"  {repo.name}: {path} is not in the snapshot, skipped", file=sys.stderr)
            continue
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        count += 1
    return count


def extract_pypi(repo: Repo, dest: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="corpus-wheel-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp, repo.pypi],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise CorpusError(f"{repo.name}: `pip download {repo.pypi}` gave {len(wheels)} wheels, expected 1")
        return unpack_wheel(wheels[0], repo.packages, dest)


def unpack_wheel(wheel_path: Path, packages: Sequence[str], dest: Path) -> int:
    """Write the wheel's source files under `packages` (all, if empty) to dest; return how many."""
    count = 0
    with zipfile.ZipFile(wheel_path) as wheel:
        for info in wheel.infolist():
            name = info.filename
            if info.is_dir() or not _is_source(name) or not _safe_member(name):
                continue
            if packages and name.split("/", 1)[0] not in packages:
                continue
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(wheel.read(info))
            count += 1
    return count


def cmd_extract(args: argparse.Namespace) -> int:
    repos = select_repos(load_manifest(args.manifest), args.only)
    args.dest.mkdir(parents=True, exist_ok=True)
    for repo in repos:
        target = args.dest / repo.name
        if target.exists():
            if not args.force:
                print(f"{repo.name}: {target} exists, kept (--force replaces it)")
                continue
            shutil.rmtree(target)
        partial = args.dest / f".{repo.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            count = extract_github(repo, args.mirrors, partial) if repo.github else extract_pypi(repo, partial)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        partial.rename(target)  # a folder that exists is always complete
        print(f"{repo.name}: {count} source files -> {target}")
    return 0


# ------------------------------------------------------------------------------------------------- scan


@dataclass
class Target:
    name: str
    cwd: Path
    paths: tuple[str, ...]


def scan_targets(repos: list[Repo], corpus: Path | None, self_root: Path | None, only: str | None) -> list[Target]:
    targets = []
    if corpus is not None:
        for repo in select_repos(repos, only):
            folder = corpus / repo.name
            if not folder.is_dir():
                raise CorpusError(f"{repo.name}: {folder} is missing (run `extract` first)")
            targets.append(Target(repo.name, folder, repo.paths))
    if self_root is not None:
        wanted = {n.strip() for n in only.split(",")} if only else None
        for name, paths in SELF_TARGETS.items():
            if wanted is None or name in wanted:
                targets.append(Target(name, self_root, tuple(paths)))
    return targets


def lint_command(esper_lint: Sequence[str], mode: str, args: argparse.Namespace) -> list[str]:
    command = [*esper_lint, "check", "--no-cache", "--config", os.devnull, *MODE_ARGS[mode]]
    if args.select:
        command += ["--select", args.select]
    if args.extend_select:
        command += ["--extend-select", args.extend_select]
    if args.jobs:
        command += ["--jobs", str(args.jobs)]
    return command


def _version(esper_lint: Sequence[str]) -> str:
    try:
        done = subprocess.run([*esper_lint, "--version"], capture_output=True, text=True, check=False)
    except OSError as error:
        raise CorpusError(f"cannot run {' '.join(esper_lint)}: {error}") from None
    return (done.stdout or done.stderr).strip()


def _git_head(root: Path) -> str:
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def cmd_scan(args: argparse.Namespace) -> int:
    esper_lint = args.esper_lint.split() if args.esper_lint else [sys.executable, "-m", "esper_lint"]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise CorpusError(f"unknown mode(s) {', '.join(bad)}; choose from {', '.join(MODES)}")
    self_root = None if args.no_self else args.self_root.resolve()
    targets = scan_targets(load_manifest(args.manifest), args.corpus, self_root, args.only)
    if not targets:
        raise CorpusError("nothing to scan (give --corpus, or leave out --no-self)")
    args.out.mkdir(parents=True, exist_ok=True)
    record: dict[str, object] = {
        "esper_lint": " ".join(esper_lint),
        "version": _version(esper_lint),
        "corpus": str(args.corpus.resolve()) if args.corpus else None,
        "self_root": str(self_root) if self_root else None,
        "self_commit": _git_head(self_root) if self_root else None,
        "select": args.select,
        "extend_select": args.extend_select,
        "modes": modes,
        "runs": {},
    }
    runs: dict[str, object] = {}
    for target in targets:
        for mode in modes:
            command = [*lint_command(esper_lint, mode, args), *target.paths]
            started = time.perf_counter()
            done = subprocess.run(command, cwd=target.cwd, capture_output=True, check=False)
            seconds = time.perf_counter() - started
            _write_atomic(args.out / f"{target.name}.{mode}", done.stdout)
            _write_atomic(
                args.out / f"{target.name}.{mode}.stderr", done.stderr + f"\nexit: {done.returncode}\n".encode()
            )
            runs[f"{target.name}.{mode}"] = {"seconds": round(seconds, 2), "exit": done.returncode}
            status = "error" if done.returncode not in (0, 1) else "ok"
            print(f"{target.name:28} {mode:5} exit {done.returncode} ({status}) {seconds:6.1f}s", flush=True)
    record["runs"] = runs
    _write_atomic(args.out / "_scan.json", json.dumps(record, indent=2).encode() + b"\n")
    failed = [name for name, run in runs.items() if run["exit"] not in (0, 1)]  # type: ignore[index]
    if failed:
        print(f"esper-lint failed (exit 2) on: {', '.join(failed)}; see the .stderr files", file=sys.stderr)
        return 2
    return 0


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


# ---------------------------------------------------------------------------------------------- compare


def _scan_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise CorpusError(f"{folder} is not a folder")
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.endswith(".partial")}


def _roots(folder: Path) -> list[tuple[bytes, bytes]]:
    """The scan's folders as (absolute path, placeholder), longest first.

    SARIF names files by absolute URI when they lie outside esper-lint's project root (with `--config
    /dev/null` the root is /dev), so two scans of the same code from different folders differ only there.
    """
    try:
        record = json.loads((folder / "_scan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    roots = [(record.get("corpus"), b"<corpus>"), (record.get("self_root"), b"<self>")]
    found = [(str(path).encode(), name) for path, name in roots if path]
    return sorted(found, key=lambda pair: -len(pair[0]))


def _normalised(data: bytes, roots: list[tuple[bytes, bytes]]) -> bytes:
    for path, name in roots:
        data = data.replace(path, name)
    return data


def compare_scans(a: Path, b: Path, context: int = 2, max_lines: int = 40) -> tuple[list[str], int]:
    """Report lines and the number of differing outputs (`_`-files are shown, not counted).

    Outputs are compared byte for byte after replacing each scan's own corpus and checkout folders (from
    its `_scan.json`) by `<corpus>` / `<self>`; scans made in the same folders are compared as written.
    """
    files_a, files_b = _scan_files(a), _scan_files(b)
    roots_a, roots_b = _roots(a), _roots(b)
    lines: list[str] = []
    differing = 0
    for name in sorted(files_a.keys() | files_b.keys()):
        counted = not name.startswith("_")
        if name not in files_b or name not in files_a:
            where = a if name in files_a else b
            lines.append(f"only in {where}: {name}")
            differing += counted
            continue
        data_a, data_b = files_a[name].read_bytes(), files_b[name].read_bytes()
        if counted:
            data_a, data_b = _normalised(data_a, roots_a), _normalised(data_b, roots_b)
        if data_a == data_b:
            continue
        if counted:
            differing += 1
            lines.append(f"differs: {name}")
        else:
            lines.append(f"differs (how the scan was made, not counted): {name}")
            continue
        diff = list(
            difflib.unified_diff(
                data_a.decode("utf-8", "replace").splitlines(),
                data_b.decode("utf-8", "replace").splitlines(),
                fromfile=str(files_a[name]),
                tofile=str(files_b[name]),
                n=context,
                lineterm="",
            )
        )
        shown = diff[:max_lines]
        lines += ["    " + line for line in shown]
        if len(diff) > len(shown):
            lines.append(f"    ... {len(diff) - len(shown)} more diff lines")
    compared = len(files_a.keys() & files_b.keys())
    lines.append(
        f"{differing} output file(s) differ; {compared} compared" if differing else f"identical: {compared} files"
    )
    return lines, differing


def cmd_compare(args: argparse.Namespace) -> int:
    lines, differing = compare_scans(args.a, args.b, args.context, args.max_lines)
    print("\n".join(lines))
    return 1 if differing else 0


# ------------------------------------------------------------------------------------------------ score


@dataclass(frozen=True)
class Key:
    repo: str
    path: str
    line: int
    code: str


@dataclass
class Label:
    key: Key
    why: str
    cause: str = ""  # for a mistake not reported today: why the analysis misses it (groups the misses)
    end_line: int = 0  # a report anywhere in key.line..end_line counts (a call spread over lines)
    also_at: tuple[str, ...] = ()  # other places where a report also counts: "path:line"

    def matches(self, finding: Key) -> bool:
        if finding.repo != self.key.repo or finding.code != self.key.code:
            return False
        if finding.path == self.key.path and self.key.line <= finding.line <= max(self.end_line, self.key.line):
            return True
        return f"{finding.path}:{finding.line}" in self.also_at


@dataclass
class Verdict:
    key: Key
    verdict: str  # "true" or "false"
    why: str


@dataclass
class Score:
    labelled: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    misses: list[Label] = field(default_factory=list)
    true: Counter[str] = field(default_factory=Counter)
    false: list[Key] = field(default_factory=list)
    unjudged: list[Key] = field(default_factory=list)
    stale_verdicts: list[Key] = field(default_factory=list)


def _key(entry: dict[str, object], source: Path) -> Key:
    try:
        return Key(str(entry["repo"]), str(entry["path"]), int(entry["line"]), str(entry["code"]))  # type: ignore[call-overload]
    except KeyError as missing:
        raise CorpusError(f"{source}: an entry lacks {missing}: {entry}") from None


def load_labels(path: Path = LABELS) -> tuple[list[Label], list[dict[str, object]]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    labels = [
        Label(
            _key(e, path),
            str(e.get("why", "")),
            str(e.get("cause", "")),
            int(e.get("end_line", 0)),
            tuple(str(a) for a in e.get("also_at", ())),
        )
        for e in data.get("mistake", [])
    ]
    return labels, list(data.get("doubtful", []))


def load_verdicts(path: Path = VERDICTS) -> list[Verdict]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    verdicts = []
    for e in data.get("finding", []):
        verdict = str(e.get("verdict", ""))
        if verdict not in ("true", "false"):
            raise CorpusError(f'{path}: verdict must be "true" or "false": {e}')
        verdicts.append(Verdict(_key(e, path), verdict, str(e.get("why", ""))))
    return verdicts


def scan_findings(scan: Path) -> list[Key]:
    """Every finding in the JSON outputs of a scan (one `NAME.json` per repository)."""
    findings = []
    for output in sorted(scan.glob("*.json")):
        if output.name.startswith("_"):
            continue
        repo = output.name[: -len(".json")]
        text = output.read_text(encoding="utf-8")
        for item in json.loads(text) if text.strip() else []:
            path = str(item["path"]).replace("\\", "/")
            findings.append(Key(repo, path[2:] if path.startswith("./") else path, int(item["line"]), item["code"]))
    if not findings and not any(scan.glob("*.json")):
        raise CorpusError(f"{scan} has no JSON outputs (scan with --modes json)")
    return findings


def score(findings: Sequence[Key], labels: list[Label], verdicts: list[Verdict], scanned: set[str]) -> Score:
    result = Score()
    found_at: set[Key] = set(findings)
    by_repo_code: dict[tuple[str, str], list[Key]] = defaultdict(list)
    for key in found_at:
        by_repo_code[key.repo, key.code].append(key)
    for label in labels:
        if label.key.repo not in scanned:
            continue
        code = label.key.code
        result.labelled[code] += 1
        if any(label.matches(key) for key in by_repo_code[label.key.repo, code]):
            result.found[code] += 1
        else:
            result.misses.append(label)
    judged = {v.key: v for v in verdicts}
    # Precision counts findings, not lines: two findings on one line (B and H) are two.
    for key in sorted(findings, key=lambda k: (k.repo, k.path, k.line, k.code)):
        if key.repo.startswith("self-") or key.code in DEFAULT_OFF:
            continue
        verdict = judged.get(key)
        if verdict is None:
            result.unjudged.append(key)
        elif verdict.verdict == "true":
            result.true[key.code] += 1
        else:
            result.false.append(key)
    result.stale_verdicts = sorted(
        (k for k in judged if k.repo in scanned and k not in found_at), key=lambda k: (k.repo, k.path, k.line)
    )
    return result


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def render_score(result: Score) -> list[str]:
    lines = ["Recall (labelled real mistakes reported at their line):"]
    for code in sorted(result.labelled):
        lines.append(f"  {code}: {_ratio(result.found[code], result.labelled[code])}")
    for title, codes in (("ESP001-ESP016", range(1, 17)), ("ESP017-ESP030 (issue 22)", range(17, 31))):
        names = {f"ESP{n:03d}" for n in codes}
        part = sum(result.found[c] for c in names), sum(result.labelled[c] for c in names)
        if part[1]:
            lines.append(f"  {title}: {_ratio(*part)}")
    total_labelled, total_found = sum(result.labelled.values()), sum(result.found.values())
    lines.append(f"  all: {_ratio(total_found, total_labelled)}")
    by_cause: dict[str, list[Label]] = defaultdict(list)
    for miss in result.misses:
        by_cause[miss.cause or "(no cause given)"].append(miss)
    if by_cause:
        lines.append("Misses by cause:")
        for cause in sorted(by_cause, key=lambda c: (-len(by_cause[c]), c)):
            lines.append(f"  {cause} ({len(by_cause[cause])}):")
            for miss in by_cause[cause]:
                k = miss.key
                lines.append(f"    {k.code} {k.repo} {k.path}:{k.line}  {miss.why}")
    true_total = sum(result.true.values())
    judged = true_total + len(result.false)
    lines.append(f"Precision of the default rules (findings judged by hand): {_ratio(true_total, judged)}")
    for key in result.false:
        lines.append(f"  FALSE POSITIVE {key.code} {key.repo} {key.path}:{key.line}")
    if result.unjudged:
        lines.append(f"Findings with no verdict yet ({len(result.unjudged)}): read each, add it to verdicts.toml")
        for key in result.unjudged:
            lines.append(f"  {key.code} {key.repo} {key.path}:{key.line}")
    if result.stale_verdicts:
        lines.append(f"Verdicts whose finding is gone from this scan ({len(result.stale_verdicts)}):")
        for key in result.stale_verdicts:
            lines.append(f"  {key.code} {key.repo} {key.path}:{key.line}")
    return lines


def cmd_score(args: argparse.Namespace) -> int:
    findings = scan_findings(args.scan)
    scanned = {p.name[: -len(".json")] for p in args.scan.glob("*.json") if not p.name.startswith("_")}
    labels, doubtful = load_labels(args.labels)
    verdicts = load_verdicts(args.verdicts) if args.verdicts.exists() else []
    result = score(findings, labels, verdicts, scanned)
    print("\n".join(render_score(result)))
    if doubtful:
        print(f"Doubtful cases, not counted: {len(doubtful)} (see {args.labels.name})")
    return 1 if result.false else 0


# ------------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/corpus/run.py",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="repository list (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)

    extract = sub.add_parser("extract", help="write each repository's source files into DEST/NAME")
    extract.add_argument("--dest", type=Path, required=True, help="folder for the corpus (outside this repository)")
    extract.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"), help="where `fetch` puts snapshots")
    extract.add_argument("--only", help="comma-separated repository names")
    extract.add_argument("--force", action="store_true", help="replace repositories already extracted")
    extract.set_defaults(func=cmd_extract)

    scan = sub.add_parser("scan", help="run esper-lint over every repository, one output file per repo and mode")
    scan.add_argument("--corpus", type=Path, help="the folder `extract` wrote (leave out to scan only this repo)")
    scan.add_argument("--out", type=Path, required=True, help="folder for the outputs (created)")
    scan.add_argument("--modes", default=",".join(MODES), help="comma-separated, of: %(default)s")
    scan.add_argument("--select", help="passed to --select (e.g. ALL); default: the default rules")
    scan.add_argument("--extend-select", help="passed to --extend-select (e.g. ESP006)")
    scan.add_argument("--jobs", type=int, help="passed to --jobs (the output does not depend on it)")
    scan.add_argument("--esper-lint", help="command that runs esper-lint (default: this Python's `-m esper_lint`)")
    scan.add_argument(
        "--self-root",
        type=Path,
        default=REPO_ROOT,
        help="checkout whose fixtures/ and tests/behaviour/ are scanned (default: %(default)s)",
    )
    scan.add_argument("--no-self", action="store_true", help="do not scan the checkout's fixtures and behaviour corpus")
    scan.add_argument("--only", help="comma-separated repository names (and self-fixtures, self-behaviour)")
    scan.set_defaults(func=cmd_scan)

    compare = sub.add_parser("compare", help="byte comparison of two scans; exit 1 if any output differs")
    compare.add_argument("a", type=Path)
    compare.add_argument("b", type=Path)
    compare.add_argument("--context", type=int, default=2, help="diff context lines (default: %(default)s)")
    compare.add_argument("--max-lines", type=int, default=40, help="diff lines shown per file (default: %(default)s)")
    compare.set_defaults(func=cmd_compare)

    score_cmd = sub.add_parser("score", help="recall against labels.toml, precision against verdicts.toml")
    score_cmd.add_argument("scan", type=Path, help="a scan folder with JSON outputs")
    score_cmd.add_argument("--labels", type=Path, default=LABELS, help="default: %(default)s")
    score_cmd.add_argument("--verdicts", type=Path, default=VERDICTS, help="default: %(default)s")
    score_cmd.set_defaults(func=cmd_score)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CorpusError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        print(f"error: {' '.join(map(str, error.cmd))} failed (exit {error.returncode})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
