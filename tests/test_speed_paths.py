"""The fast paths (prefilter, result cache, parallel workers, time limit) never change results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from corpus import write_corpus
from test_check_and_fix_agree import reference_lint

from esper_lint import runner
from esper_lint.cache import ResultCache
from esper_lint.config import Config
from esper_lint.core.decoding import check_decodable
from esper_lint.core.findings import FileResult
from esper_lint.engine import lint_source, might_match
from esper_lint.rules import RULES_BY_CODE
from esper_lint.runner import Mode, run, run_files

ALL_CODES = frozenset(RULES_BY_CODE)
ROOT = Path(__file__).resolve().parent.parent


def _dump(results: list[FileResult]) -> list[object]:
    return [(r.path, [f.to_dict() for f in r.findings], [e.to_dict() for e in r.errors]) for r in results]


@pytest.fixture()
def corpus(tmp_path: Path) -> tuple[Config, list[str]]:
    paths = write_corpus(tmp_path / "src", count=40, seed=3, flex_share=0.7)
    broken = "from torch.nn.attention.flex_attention import create_block_mask\ndef (:\n"
    (tmp_path / "src" / "broken.py").write_text(broken)
    (tmp_path / "src" / "latin.py").write_bytes(b"x = '\xe9'\n")  # undecodable as UTF-8
    files = sorted(str(p) for p in [*paths, tmp_path / "src" / "broken.py", tmp_path / "src" / "latin.py"])
    return Config(root=tmp_path, select=ALL_CODES, cache_dir=tmp_path / "cache"), files


def test_serial_matches_the_plain_reference_path(corpus: tuple[Config, list[str]]) -> None:
    config, files = corpus
    serial = run_files(files, config, Mode.CHECK, use_cache=False, jobs=1)
    reference = [reference_lint(Path(f).read_bytes(), f, config) for f in files]
    assert _dump(serial) == _dump(reference)
    assert sum(len(r.findings) for r in serial) > 50
    assert {e.kind for r in serial for e in r.errors} == {"syntax-error", "decode-error"}


def test_parallel_matches_serial(corpus: tuple[Config, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    config, files = corpus
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0)  # force workers even for a small corpus
    assert runner.worker_count(2, len(files), 1) == 2
    parallel = run_files(files, config, Mode.CHECK, use_cache=False, jobs=2)
    serial = run_files(files, config, Mode.CHECK, use_cache=False, jobs=1)
    assert _dump(parallel) == _dump(serial)
    assert [r.path for r in parallel] == files


def test_warm_cache_matches_cold_and_skips_analysis(
    corpus: tuple[Config, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, files = corpus
    cold = run_files(files, config, Mode.CHECK, use_cache=True, jobs=1)
    assert ResultCache(config).file.exists()
    analysed: list[str] = []
    real = runner.check_file

    def spy(path: str, cfg: Config, with_digest: bool = True) -> tuple[FileResult, str | None]:
        analysed.append(path)
        return real(path, cfg, with_digest)

    monkeypatch.setattr(runner, "check_file", spy)
    warm = run_files(files, config, Mode.CHECK, use_cache=True, jobs=1)
    assert _dump(warm) == _dump(cold)
    assert analysed == []  # everything came from the cache (the syntax error too)

    # An edited file is re-analysed; a different configuration uses its own cache file.
    edited = next(f for f in files if "create_block_mask" in Path(f).read_text(errors="replace"))
    Path(edited).write_text(Path(edited).read_text() + "\n# edited\n")
    again = run_files(files, config, Mode.CHECK, use_cache=True, jobs=1)
    assert analysed == [edited]
    assert _dump(again) == _dump(run_files(files, config, Mode.CHECK, use_cache=False, jobs=1))
    narrower = Config(root=config.root, select=frozenset({"ESP001"}), cache_dir=config.cache_dir)
    assert ResultCache(narrower).file != ResultCache(config).file


def test_corrupt_cache_is_ignored(corpus: tuple[Config, list[str]]) -> None:
    config, files = corpus
    cold = run_files(files, config, Mode.CHECK, use_cache=True, jobs=1)
    ResultCache(config).file.write_text("{not json")
    assert _dump(run_files(files, config, Mode.CHECK, use_cache=True, jobs=1)) == _dump(cold)
    data = json.loads(ResultCache(config).file.read_text())  # rewritten, valid again
    assert data["entries"]


def test_prefilter_is_sound_on_the_corpus(corpus: tuple[Config, list[str]]) -> None:
    # Every file the prefilter rejects has no findings when analysed anyway.
    config, files = corpus
    rejected = [f for f in files if not might_match(Path(f).read_bytes(), config)]
    assert rejected
    for f in rejected:
        source = Path(f).read_bytes()
        try:
            check_decodable(source, f)
        except Exception:
            continue
        assert reference_lint(source, f, config).findings == []


def test_prefilter_sees_configured_apis() -> None:
    source = b"from mylib.masks import build\ndef f(n):\n    return build(lambda b, h, q, kv: q >= kv, n)\n"
    plain = Config(root=ROOT)
    assert not might_match(source, plain)
    from esper_lint.core.apis import MaskApi

    configured = Config(root=ROOT, mask_apis=(MaskApi("mylib.masks.build", 0, "mask_mod"),))
    assert might_match(source, configured)
    assert [f.code for f in lint_source(source, "m.py", configured).findings] == ["ESP002"]


def test_timeout_turns_a_slow_file_into_an_error(
    corpus: tuple[Config, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, files = corpus
    slow = Config(root=config.root, select=ALL_CODES, timeout=2.0)
    real = runner.lint_source

    def hang_on_first(source: bytes, path: str, cfg: Config) -> FileResult:
        if path == target:
            while True:  # a pathological file: never finishes on its own
                time.sleep(0.01)
        return real(source, path, cfg)

    target = next(f for f in files if might_match(Path(f).read_bytes(), config))
    monkeypatch.setattr(runner, "lint_source", hang_on_first)
    for jobs in (1, 2):
        monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0 if jobs == 2 else 10**12)
        started = time.monotonic()
        results = run_files(files, slow, Mode.CHECK, use_cache=False, jobs=jobs)
        assert time.monotonic() - started < 30
        by_path = {r.path: r for r in results}
        assert [e.kind for e in by_path[target].errors] == ["timeout"]
        assert "timeout" in by_path[target].errors[0].message
        others = [r for r in results if r.path != target]
        assert all(e.kind != "timeout" for r in others for e in r.errors)
        assert sum(len(r.findings) for r in others) > 0


def test_cli_jobs_and_cache_give_identical_output(corpus: tuple[Config, list[str]], tmp_path: Path) -> None:
    src = str(tmp_path / "src")

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "esper_lint", "--output-format", "json", *args, src],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert proc.returncode == 2, proc.stderr  # findings and two file errors
        return proc.stdout

    serial = cli("--no-cache", "-j", "1")
    assert cli("--no-cache", "-j", "2") == serial
    assert cli("-j", "2") == serial  # cold cache
    assert (tmp_path / ".esper_lint_cache").is_dir()
    assert cli("-j", "1") == serial  # warm cache


def _imported_modules(*args: str, cwd: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "esper_lint", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert names, proc.stderr
    return names


@pytest.mark.parametrize("args", [("--version",), ("--no-cache", "clean")], ids=["version", "clean-run"])
def test_start_is_light(tmp_path: Path, args: tuple[str, ...]) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.py").write_text("import torch\n\ndef f(x):\n    return torch.relu(x)\n")
    modules = _imported_modules(*args, cwd=tmp_path)
    heavy = {m for m in modules if m.split(".")[0] in {"libcst", "torch", "numpy", "multiprocessing", "pathspec"}}
    assert heavy == set()


def test_checking_a_mask_file_imports_only_what_checking_needs(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "from torch.nn.attention.flex_attention import create_block_mask\n"
        "def f(n):\n    return create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)\n"
    )
    modules = _imported_modules("--no-cache", "m.py", cwd=tmp_path)
    assert "esper_lint.analysis.module_facts" in modules
    # Only what a check needs: no rewriting engine, no diff, no cache writer, no unused reporter.
    unneeded = {"libcst", "difflib", "tempfile", "symtable", "multiprocessing", "xml"}
    assert {m for m in modules if m.split(".")[0] in unneeded} == set()
    assert not {m for m in modules if m.startswith("esper_lint.reporters.") and m != "esper_lint.reporters.text"}


@pytest.mark.skipif(sys.platform != "linux", reason="process-group signalling as on Linux")
def test_ctrl_c_leaves_no_workers(tmp_path: Path) -> None:
    write_corpus(tmp_path / "big", count=400, seed=5, flex_share=1.0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "esper_lint", "--no-cache", "-j", "2", str(tmp_path / "big")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    time.sleep(2.0)  # long enough to be in the middle of the parallel run
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group gets SIGINT
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, 1, 2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break  # nothing is left in the group
        time.sleep(0.1)
    else:
        pytest.fail("worker processes outlived the interrupted run")
    assert b"Traceback" not in err


def test_run_uses_the_cache_flag(corpus: tuple[Config, list[str]]) -> None:
    config, files = corpus
    run([str(Path(files[0]).parent)], config, Mode.CHECK, use_cache=False)
    assert not ResultCache(config).file.exists()
    run([str(Path(files[0]).parent)], config, Mode.CHECK, use_cache=True)
    assert ResultCache(config).file.exists()


def test_linting_leaves_nothing_for_the_cyclic_collector() -> None:
    """Trees and the analysis' scopes are freed by reference counting as soon as a file is done: left in
    cycles, each tree would wait for (and be walked by) the cyclic garbage collector."""
    import ast
    import gc

    from esper_lint.analysis import scopes

    # Only what linting leaves counts: a thread another test left running may make garbage of its own.
    ours = (ast.AST, scopes.Scope, scopes.Binding, scopes.Access)
    sources = [p for p in sorted((ROOT / "fixtures").rglob("*.py")) if "blueprints" in p.parts or "lint" in p.parts]
    config = Config(root=ROOT)
    gc.collect()
    was_enabled, debug = gc.isenabled(), gc.get_debug()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds stays in gc.garbage, to be looked at
    try:
        left = []
        for path in sources:
            lint_source(path.read_bytes(), str(path), config)
            gc.collect()
            left.append((path.name, sum(isinstance(o, ours) for o in gc.garbage)))
            gc.garbage.clear()
    finally:
        gc.set_debug(debug)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    assert len(left) > 5
    assert [name for name, count in left if count] == []
