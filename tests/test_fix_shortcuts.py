"""The fix path's shortcuts (esper_lint/fix): each gives exactly what the slow path it replaces gives.

- `apply_edit_fixes` hands its last analysis to `fix_source`, which would otherwise analyse the same
  bytes again;
- LibCST is imported only when a finding asks for a hoist;
- the cyclic collector pauses for the whole fix, not for each analysis in it;
- `unchanged_lines` maps the lines before the first and after the last difference to themselves and runs
  difflib only on the lines between.
"""

from __future__ import annotations

import difflib
import gc
import io
import itertools
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import esper_lint.fix.edits as edits_module
import esper_lint.fix.file_fixer as fix_package
from esper_lint.config import Config, apply_cli
from esper_lint.core.findings import FileResult
from esper_lint.engine import analyze_bytes
from esper_lint.fix.edits import EditOutcome, apply_edit_fixes
from esper_lint.fix.file_fixer import fix_source, unchanged_lines

ROOT = Path(__file__).resolve().parent.parent
CONFIG = Config(root=ROOT)
UNSAFE = apply_cli(Config(root=ROOT), unsafe_fixes=True)

HEADER = """\
import torch
from torch.nn.attention.flex_attention import create_block_mask


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

"""
# An ESP010 text edit, a hoist below it, and findings that remain (ESP001 with a mutable default).
MIXED = HEADER + textwrap.dedent("""\

    m = create_block_mask(
        causal,
        None,
        None,
        128,
        128,
        _compile=True,
    )


    def build(n):
        def inner(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx

        def window(b, h, q, kv, w=[]):
            return q >= kv

        return create_block_mask(inner, None, None, n, n), create_block_mask(window, None, None, n, n)
    """)


def _corpus() -> list[tuple[str, bytes]]:
    sources = [ROOT / "fixtures" / "blueprints" / "transformer_seed.py"]
    sources += sorted((ROOT / "fixtures" / "fix").glob("*.in.py"))
    sources += sorted((ROOT / "fixtures" / "lint").glob("*.py"))
    cases = [(str(p.relative_to(ROOT)), p.read_bytes()) for p in sources]
    return [*cases, ("mixed.py", MIXED.encode())]


CORPUS = _corpus()


def _slow_line_map(old_lines: list[str], new_lines: list[str]) -> dict[int, int]:
    """What `remaining_on_disk` ran before the shortcut: difflib over every line."""
    new_to_old: dict[int, int] = {}
    for block in difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_matching_blocks():
        new_to_old.update((block.b + k + 1, block.a + k + 1) for k in range(block.size))
    return new_to_old


def _state(result: FileResult) -> tuple[object, ...]:
    return (result.findings, result.new_source, result.fixed, result.errors, result.original_source)


@pytest.mark.parametrize("config", [CONFIG, UNSAFE], ids=["safe", "unsafe"])
@pytest.mark.parametrize("written", [True, False], ids=["fix", "diff"])
@pytest.mark.parametrize(("path", "source"), CORPUS, ids=[c[0] for c in CORPUS])
def test_fix_source_matches_the_slow_path(
    monkeypatch: pytest.MonkeyPatch, path: str, source: bytes, written: bool, config: Config
) -> None:
    fast = fix_source(source, path, config, written=written)

    def without_handover(*args: object, **kwargs: object) -> EditOutcome:
        outcome = apply_edit_fixes(*args, **kwargs)  # type: ignore[arg-type]
        outcome.analysis = None  # fix_source analyses the edited bytes itself, as it did before
        return outcome

    monkeypatch.setattr(edits_module, "apply_edit_fixes", without_handover)
    monkeypatch.setattr(fix_package, "unchanged_lines", _slow_line_map)
    slow = fix_source(source, path, config, written=written)
    assert _state(fast) == _state(slow)


def test_the_corpus_exercises_every_shortcut() -> None:
    """The comparison above is only worth something if the corpus fixes files and keeps findings."""
    diffs = [fix_source(source, path, UNSAFE, written=False) for path, source in CORPUS]
    assert sum(1 for r in diffs if r.new_source is not None and r.findings) >= 3  # remaining_on_disk places
    mixed = fix_source(MIXED.encode(), "mixed.py", UNSAFE, written=False)
    assert mixed.fixed == 2 and [f.code for f in mixed.findings] == ["ESP001"]


@pytest.mark.parametrize(("path", "source"), CORPUS, ids=[c[0] for c in CORPUS])
def test_edit_fixes_hand_over_the_analysis_of_what_they_return(path: str, source: bytes) -> None:
    outcome = apply_edit_fixes(source, path, UNSAFE, unsafe=True)
    assert outcome.analysis is not None
    fresh = analyze_bytes(outcome.source, path, UNSAFE)
    assert (outcome.analysis.text, outcome.analysis.findings) == (fresh.text, fresh.findings)
    assert outcome.analysis.findings == outcome.findings


def test_edit_fixes_hand_over_the_last_rounds_analysis_after_an_edit() -> None:
    source = MIXED.encode()
    outcome = apply_edit_fixes(source, "mixed.py", CONFIG)
    assert outcome.source != source and [f.code for f in outcome.fixed] == ["ESP010"]
    assert outcome.analysis is not None
    assert outcome.analysis.findings == analyze_bytes(outcome.source, "mixed.py", CONFIG).findings


def test_no_analysis_handed_over_for_a_file_that_cannot_be_analysed() -> None:
    broken = (HEADER + "def broken(:\n").encode()
    outcome = apply_edit_fixes(broken, "broken.py", CONFIG)
    assert outcome.analysis is None  # fix_source analyses it and reports why
    result = fix_source(broken, "broken.py", CONFIG)
    assert [e.kind for e in result.errors] == ["syntax-error"]


def test_no_analysis_handed_over_when_the_rounds_run_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edits_module, "_MAX_ROUNDS", 1)  # the one round edits: its analysis is of the old bytes
    outcome = apply_edit_fixes(MIXED.encode(), "mixed.py", CONFIG)
    assert outcome.fixed and outcome.analysis is None


# ---------------------------------------------------------------------- unchanged_lines
def _lines(text: str) -> list[str]:
    return io.StringIO(text, newline="").readlines()


def _check_map(old: list[str], new: list[str]) -> dict[int, int]:
    mapping = unchanged_lines(old, new)
    pairs = sorted(mapping.items())
    assert all(new[n - 1] == old[o - 1] for n, o in pairs)  # a line maps only to an identical line
    assert all(a[1] < b[1] for a, b in itertools.pairwise(pairs))  # in order, each old line at most once
    return mapping


EDGE_CASES = [
    ("", ""),
    ("", "a\n"),
    ("a\n", ""),
    ("a\nb\n", "a\nb\n"),
    ("a\nb", "a\nb\n"),  # only the final newline differs
    ("a\nb\n", "a\nb"),
    ("a\r\nb\r\nc\r\n", "a\r\nX\r\nc\r\n"),  # CRLF: lines keep their endings
    ("a\r\nb\r\n", "a\nb\n"),  # every ending changes: nothing is unchanged
    ("x\na\nb\n", "a\nb\n"),  # edit at the very start
    ("a\nb\n", "a\nb\nc"),  # edit at the very end, no final newline
    ("a\na\na\nb\n", "a\na\na\na\nb\n"),  # the head and the tail overlap: each line is used once
    ("a\na\n", "a\na\na\n"),
    ("a\na\na\n", "a\n"),
    ("a\rb\rc\r", "a\rc\r"),  # old Mac endings
]


@pytest.mark.parametrize(("old", "new"), EDGE_CASES)
def test_unchanged_lines_edge_cases(old: str, new: str) -> None:
    mapping = _check_map(_lines(old), _lines(new))
    assert len(mapping) == len(_slow_line_map(_lines(old), _lines(new)))  # as many lines kept as difflib keeps


def test_unchanged_lines_prefix_and_suffix_are_themselves() -> None:
    old = [f"line {i}\n" for i in range(50)]
    new = [*old[:20], "inserted\n", "\n", *old[20:45], *old[46:]]
    mapping = _check_map(old, new)
    assert all(mapping[n] == n for n in range(1, 21))
    assert all(mapping[len(new) - k] == len(old) - k for k in range(4))
    assert mapping == _slow_line_map(old, new)


@pytest.mark.parametrize("seed", range(300))
def test_unchanged_lines_agrees_with_difflib_on_distinct_lines(seed: int) -> None:
    """Where no line repeats, the unchanged lines are unambiguous: the shortcut finds exactly difflib's."""
    rng = random.Random(seed)
    ending = rng.choice(["\n", "\r\n", "\r"])
    old = [f"old {i}{ending}" for i in range(rng.randrange(0, 60))]
    new = _edited(rng, old, lambda k: f"new {seed} {k}{ending}")
    if rng.random() < 0.2 and new:
        new[-1] = new[-1].rstrip("\r\n")  # no final newline
    assert _check_map(old, new) == _slow_line_map(old, new)


@pytest.mark.parametrize("seed", range(300))
def test_unchanged_lines_with_repeated_lines(seed: int) -> None:
    """With repeated lines (blank lines, `)`), which copy maps where is ambiguous: the lines before the first
    difference and after the last still map to themselves, and every line to an identical one, in order."""
    rng = random.Random(seed)
    pool = ["\n", "    )\n", "        return q >= kv\n", "x\n"]
    old = [rng.choice(pool) if rng.random() < 0.6 else f"line {i}\n" for i in range(rng.randrange(0, 80))]
    new = _edited(rng, old, lambda k: rng.choice(pool) if rng.random() < 0.5 else f"new {k}\n")
    mapping = _check_map(old, new)
    head = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    assert all(mapping[n] == n for n in range(1, head + 1))
    tail = next((i for i, (a, b) in enumerate(zip(old[head:][::-1], new[head:][::-1], strict=False)) if a != b), None)
    tail = min(len(old), len(new)) - head if tail is None else tail
    assert all(mapping[len(new) - k] == len(old) - k for k in range(tail))


def _edited(rng: random.Random, old: list[str], make: Callable[[str], str]) -> list[str]:
    """`old` with a few random insertions, deletions and replacements (lines from `make`)."""
    new = old[:]
    for k in range(rng.randrange(0, 4)):
        at = rng.randrange(0, len(new) + 1)
        kind = rng.random()
        if kind < 0.4:
            new[at:at] = [make(f"{k}.{j}") for j in range(rng.randrange(1, 5))]
        elif kind < 0.7:
            del new[at : at + rng.randrange(1, 4)]
        else:
            new[at : at + 1] = [make(f"{k}")]
    return new


# ---------------------------------------------------------------------- LibCST only for a hoist
_IMPORTS_LIBCST = """\
import sys
from pathlib import Path
from esper_lint.config import Config
from esper_lint.fix.file_fixer import fix_source
result = fix_source(sys.stdin.buffer.read(), "m.py", Config(root=Path.cwd()), written=sys.argv[1] == "fix")
print(result.fixed, "libcst" in sys.modules)
"""
NOTHING_TO_HOIST = HEADER + "\nmask = create_block_mask(causal, None, None, 128, 128)\n"
EDIT_ONLY = HEADER + "\nmask = create_block_mask(causal, None, None, 128, 128, _compile=True)\n"
HOIST = HEADER + "\n\ndef build(n):\n    return create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)\n"


@pytest.mark.parametrize("mode", ["fix", "diff"])
@pytest.mark.parametrize(
    ("source", "expected"),
    [(NOTHING_TO_HOIST, "0 False"), (EDIT_ONLY, "1 False"), (HOIST, "1 True")],
    ids=["nothing", "text-edit", "hoist"],
)
def test_libcst_is_imported_only_to_hoist(source: str, expected: str, mode: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_LIBCST, mode], input=source.encode(), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == expected.split()


# ---------------------------------------------------------------------- the collector, paused for one fix
@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("source", [HOIST, HEADER + "def broken(:\n"], ids=["fixed", "syntax-error"])
def test_fix_source_leaves_the_collector_as_it_found_it(source: str, enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        seen: list[bool] = []
        original = fix_package._fix_source

        def observed(*args: object) -> FileResult:
            seen.append(gc.isenabled())
            return original(*args)  # type: ignore[arg-type]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(fix_package, "_fix_source", observed)
            fix_source(source.encode(), "m.py", CONFIG)
        assert seen == [False]  # paused while fixing
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
