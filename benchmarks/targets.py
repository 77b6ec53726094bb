"""The three speed targets of issue 14, measured side by side in one run (medians and ratios).

    python benchmarks/targets.py --large-file /path/to/torchtitan/.../tests/test_passes.py
    python benchmarks/targets.py --repeat 9                 # generates a comparable large file

1. fix path: `esper-lint --no-cache --diff BIG` against `esper-lint --no-cache BIG` on one large real
   file (torchtitan's `torchtitan/experiments/graph_trainer/tests/test_passes.py`, 7,155 lines, 2 fixable
   findings); target: at most 3x. Without --large-file a comparable 7,000-line test module is generated.
2. corpus: the flex-heavy corpus (tests/corpus.py, 500 files, as benchmarks/run.py builds it), esper-lint
   cold against `ruff check` with its default rules; target: at most 3x.
3. one file as pre-commit runs it: `esper-lint --no-cache benchmarks/data/flex_attention_150.py` against
   `python -c pass`; target: at most 2.5x. Both run from a clean virtualenv holding only esper-lint and its
   dependencies, installed as a package (as pre-commit installs the hook), never the development venv: an
   editable install's import hook (setuptools' `__editable__` finder) imports pathlib, re and fnmatch
   into *every* Python process there, which doubles `python -c pass` and pre-pays part of esper-lint's
   own start-up, so a ratio taken there reads about half of what users get (2.1x against 4.4-4.9x).

Beside them, for context: `benchmarks/parse_floor.py` on the corpus (start, walk, prefilter and `ast.parse`
in the same number of workers, no analysis), the least any checker on CPython's parser can take.

Commands run interleaved, one of each per round, after a warm-up run; byte-code caches are allowed
(PYTHONDONTWRITEBYTECODE is removed from the environment), as for an installed package. Writes
results JSON and a Markdown table under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from corpus import write_corpus  # noqa: E402  (the generator the tests and benchmarks/run.py use)

BIN = Path(sys.executable).parent
ESPER = str(BIN / "esper-lint")
SMALL_FILE = REPO / "benchmarks" / "data" / "flex_attention_150.py"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(cmd: list[str], cwd: Path) -> float:
    """Seconds until the command exits, read by a blocking wait. (`subprocess.run(timeout=...)` polls with
    growing sleeps, 0.5, 1, 2, 4, 8, 16 ms, ..., so it saw an 18 ms `python -c pass` end at 32 ms and a
    52 ms run at 64 ms: the one-file ratio it printed was the ratio of its polling steps.)"""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    watchdog = threading.Timer(600, proc.kill)  # a hung run is stopped, without polling the fast ones
    watchdog.start()
    try:
        proc.wait()
    finally:
        watchdog.cancel()
    return time.perf_counter() - start


def clean_venv(where: Path) -> Path:
    """A virtualenv with esper-lint installed from this checkout as a package (not editable), as pre-commit
    builds a hook's environment; made once, reused while it holds the same esper-lint sources."""
    stamp = where / "esper-lint-sources"
    files = sorted(REPO.glob("esper_lint/**/*.py"))
    sources = "".join(f"{p.relative_to(REPO)}:{p.stat().st_mtime_ns}\n" for p in files)
    python = where / "bin" / "python"
    if not (python.exists() and stamp.exists() and stamp.read_text() == sources):
        shutil.rmtree(where, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(REPO)], check=True)
        stamp.write_text(sources)
    return where / "bin"


def large_test_module(path: Path) -> Path:
    """~7,000 lines shaped like a big pytest module: many test classes, two fixable mask functions."""
    parts = ["import unittest\n\nimport torch\nfrom torch.nn.attention.flex_attention import create_block_mask\n\n"]
    for c in range(60):
        parts.append(f"\n\nclass TestGroup{c}(unittest.TestCase):\n")
        for m in range(10):
            parts.append(
                f"    def test_case_{m}(self):\n"
                f"        x = torch.randn(4, {m + 1})\n"
                f"        y = torch.nn.functional.relu(x * {c} + {m})\n"
                "        for i in range(3):\n"
                "            y = y + i\n"
                f"        self.assertEqual(y.shape, (4, {m + 1}))\n"
                "        self.assertTrue(bool((y >= 0).all()))\n"
                "        z = [v for v in y.flatten().tolist() if v > 0]\n"
                "        self.assertGreaterEqual(len(z), 0)\n"
                "\n"
            )
        if c == 20:
            parts.append(
                "    def test_block_mask(self):\n"
                "        mask = create_block_mask(\n"
                "            lambda b, h, q_idx, kv_idx: q_idx >= kv_idx,\n"
                "            B=1, H=None, Q_LEN=8, KV_LEN=8, device='cpu',\n"
                "        )\n"
                "        self.assertIsNotNone(mask)\n"
            )
        if c == 50:
            parts.append(
                "    def test_nested_mask(self):\n"
                "        def mask_mod(b, h, q_idx, kv_idx):\n"
                "            return (b == 2) & (q_idx >= kv_idx)\n"
                "\n"
                "        mask = create_block_mask(mask_mod, 4, None, 8, 8, device='cpu')\n"
                "        self.assertIsNotNone(mask)\n"
            )
    path.write_text("".join(parts))
    return path


def flex_heavy(workdir: Path) -> Path:
    target = workdir / "corpora" / "flex-heavy"
    if not target.exists():
        write_corpus(target, count=500, seed=0, flex_share=0.6)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large-file", type=Path, help="torchtitan's tests/test_passes.py (else one is generated)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/esper-bench"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    ruff = shutil.which("ruff", path=str(BIN)) or "ruff"

    big_dir = args.workdir / "large-file"
    big_dir.mkdir(exist_ok=True)
    if args.large_file is not None:
        big = big_dir / args.large_file.name
        shutil.copyfile(args.large_file, big)  # --diff writes nothing, but keep the original out of reach
        big_source = str(args.large_file)
    else:
        big = large_test_module(big_dir / "test_generated.py")
        big_source = "generated by benchmarks/targets.py"
    corpus = flex_heavy(args.workdir)
    clean = clean_venv(args.workdir / "clean-venv")  # the one-file target runs as users get it
    small_dir = args.workdir / "one-file"
    small_dir.mkdir(exist_ok=True)
    small = small_dir / SMALL_FILE.name
    shutil.copyfile(SMALL_FILE, small)

    runs: dict[str, tuple[list[str], Path]] = {
        "big: check": ([ESPER, "--no-cache", "--exit-zero", big.name], big_dir),
        "big: --diff": ([ESPER, "--no-cache", "--diff", big.name], big_dir),
        "corpus: esper-lint cold": ([ESPER, "--no-cache", "-q", "--exit-zero", "."], corpus),
        "corpus: ruff default": ([ruff, "check", "--no-cache", "--exit-zero", "-q", "."], corpus),
        # Context, not a target: start + walk + prefilter + ast.parse alone (benchmarks/parse_floor.py).
        "corpus: CPython parse floor": ([sys.executable, str(REPO / "benchmarks" / "parse_floor.py"), "."], corpus),
        "one file: esper-lint": ([str(clean / "esper-lint"), "--no-cache", small.name], small_dir),
        "one file: python -c pass": ([str(clean / "python"), "-c", "pass"], small_dir),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for cmd, cwd in runs.values():  # warm-up: byte-code caches, page cache
        wall(cmd, cwd)
    for round_ in range(args.repeat):
        for name, (cmd, cwd) in runs.items():
            times[name].append(wall(cmd, cwd))
        print(f"round {round_ + 1}/{args.repeat} done", file=sys.stderr)
    med = {name: statistics.median(t) for name, t in times.items()}
    targets = [
        ("--diff / check, large file", med["big: --diff"] / med["big: check"], 3.0),
        ("flex-heavy cold / ruff default", med["corpus: esper-lint cold"] / med["corpus: ruff default"], 3.0),
        ("one file / python -c pass", med["one file: esper-lint"] / med["one file: python -c pass"], 2.5),
    ]
    floor = med["corpus: CPython parse floor"] / med["corpus: ruff default"]
    big_lines = big.read_bytes().count(b"\n")
    verdict = {True: "yes", False: "no"}
    lines = [
        f"Large file: {big_source} ({big_lines} lines); {args.repeat} interleaved rounds.",
        "",
        "| command | median wall (s) |",
        "| --- | ---: |",
        *(f"| {name} | {m:.3f} |" for name, m in med.items()),
        "",
        "| target | ratio | at most | met |",
        "| --- | ---: | ---: | --- |",
        *(f"| {name} | {ratio:.2f} | {limit} | {verdict[ratio <= limit]} |" for name, ratio, limit in targets),
        "",
        f"CPython parse floor / ruff default (start, walk, prefilter, ast.parse, no analysis): {floor:.2f}",
    ]
    table = "\n".join(lines) + "\n"
    results = {
        "large_file": big_source,
        "repeat": args.repeat,
        "times": times,
        "medians": med,
        "targets": {name: {"ratio": ratio, "limit": limit} for name, ratio, limit in targets},
        "parse_floor_over_ruff": floor,
        "cpus": len(os.sched_getaffinity(0)),
        "python": sys.version.split()[0],
    }
    (args.out / "targets.json").write_text(json.dumps(results, indent=2))
    (args.out / "targets.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
