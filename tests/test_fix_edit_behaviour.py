"""The behaviour corpus of the text-edit fixes (tests/behaviour/edits/): each program runs before and after.

Each program states what happens to the findings of one rule in a `# expect:` line:
- `fixed ESPnnn`: check mode marks them fixable, `--fix` fixes them, and the program prints the same before
  and after;
- `unsafe ESPnnn: <words>`: the fix is offered only behind `--unsafe-fixes` (the message says so, with a reason
  containing <words>); plain `--fix` leaves them, and with `--unsafe-fixes` the program's output changes
  (which is why the fix is unsafe);
- `declined ESPnnn: <words>`: no fix, even with `--unsafe-fixes`; the message gives a reason containing
  <words>; with the safety checks switched off (`naive`) the fix is made, and the output changes (or, where
  the program says `# naive: internal error`, the fixer stops with one, as it did before issue 23);
- `silent ESPnnn`: no finding: the claim would be false (the name is not torch's function, or a decorator
  stands between); the resolution before issue 23 (`naive`) reported it, and its fix changes the output.
The programs print what tests/behaviour/edits/_observe.py observes: direct calls with Python ints and
floats (NaN too), 0-d tensors and mixes, `create_mask` (vmap) and eager `flex_attention` (dynamo), each
against the function evaluated element by element (docs/fix.md, "What safe means"). Every version of
every program runs in one interpreter (`_runner.py`), so torch is imported once for the whole corpus.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from esper_lint.analysis import edit_safety, mask_bodies
from esper_lint.analysis.block_mask_reach import BlockMaskReaches
from esper_lint.analysis.call_sites import CallSiteFacts
from esper_lint.analysis.callees import Callees
from esper_lint.analysis.edit_safety import NO_FIX, EditSafety
from esper_lint.analysis.mask_functions import MaskFunctions
from esper_lint.config import Config
from esper_lint.core.findings import FileResult
from esper_lint.core.fixes import SAFE
from esper_lint.engine import lint_source
from esper_lint.fix.file_fixer import fix_source

pytest.importorskip("torch", reason="the programs run torch (the `harness` extra)")
pytestmark = [pytest.mark.torch, pytest.mark.xdist_group("edit-behaviour")]  # one worker runs the corpus once

ROOT = Path(__file__).resolve().parent.parent
EDITS = ROOT / "tests" / "behaviour" / "edits"
PROGRAMS = sorted(p for p in EDITS.glob("*.py") if not p.name.startswith("_"))
CONFIG = Config(root=ROOT)
UNSAFE = CONFIG.replace(unsafe_fixes=True)


class Expect(NamedTuple):
    kind: str  # fixed, unsafe, declined, silent
    code: str
    words: str


def expectation(text: str) -> Expect:
    match = re.search(r"^# expect: (fixed|unsafe|declined|silent) (ESP\d{3})(?:: (.+))?$", text, re.MULTILINE)
    assert match, "every program says what happens to which findings"
    return Expect(match.group(1), match.group(2), match.group(3) or "")


# ----------------------------------------------------------------------------- the checks switched off
def _comparisons_only(expr: ast.expr) -> bool:
    if isinstance(expr, ast.BoolOp):
        return all(_comparisons_only(v) for v in expr.values)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        expr = expr.operand
    return isinstance(expr, ast.Compare) and len(expr.ops) == 1 and type(expr.ops[0]) in edit_safety.INVERSE_COMPARISON


@contextlib.contextmanager
def naive() -> Iterator[None]:
    """The fixes and the resolution as they were before issue 23: every rewrite whose text can be written is
    safe, `torch` and the API names are taken at their import, any binding of a name that is an API makes
    it the API, and a decorator is looked through. A BlockMask is not followed into this module's functions
    (issue 21 added that: it now also sees a shim's use of the mask's batch dimension)."""
    real_bindings = Callees.resolve_bindings

    def any_binding(self: Callees, bindings: list[Any], seen: set[int]) -> list[Any]:
        for binding in bindings:
            found = real_bindings(self, [binding], set(seen))
            if found:
                return found
        return []

    def logic(expr: ast.expr, body: Any) -> EditSafety:
        return EditSafety(SAFE) if _comparisons_only(expr) else EditSafety(NO_FIX)

    def where(expr: ast.IfExp, *args: Any) -> EditSafety:
        return EditSafety(SAFE) if _comparisons_only(expr.test) else EditSafety(NO_FIX)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(edit_safety, "logic_fix", logic)
        patch.setattr(edit_safety, "where_fix", where)
        patch.setattr(edit_safety, "score_update_fix", lambda *args: EditSafety(SAFE))
        patch.setattr(mask_bodies, "names_torch_module", lambda *args: True)
        patch.setattr(CallSiteFacts, "torch_in_scope", lambda self, call: True)
        patch.setattr(CallSiteFacts, "stable_callee", lambda self, call, qualified: True)
        patch.setattr(Callees, "resolve_bindings", any_binding)
        patch.setattr(MaskFunctions, "leaves_in_place", lambda self, decorator, node: True)
        patch.setattr(BlockMaskReaches, "_local_callees", lambda self, func, depth=0: ([], False))
        yield


# ----------------------------------------------------------------------------- running every version once
class Versions(NamedTuple):
    source: bytes
    plain: FileResult  # `--fix`
    unsafe: FileResult  # `--fix --unsafe-fixes`
    naive: FileResult  # `--fix --unsafe-fixes` with the checks of issue 23 switched off


def _versions(program: Path) -> Versions:
    source = program.read_bytes()
    plain = fix_source(source, program.name, CONFIG)
    unsafe = fix_source(source, program.name, UNSAFE)
    with naive():
        naive_result = fix_source(source, program.name, UNSAFE)
    return Versions(source, plain, unsafe, naive_result)


@pytest.fixture(scope="module")
def corpus() -> dict[str, tuple[Versions, dict[str, Any]]]:
    """Every program's versions, and what each printed (run by _runner.py, all in one interpreter)."""
    versions = {p.name: _versions(p) for p in PROGRAMS}
    jobs = []
    for name, v in versions.items():
        texts = {"before": v.source, "plain": v.plain.new_source, "unsafe": v.unsafe.new_source}
        texts["naive"] = v.naive.new_source
        jobs += [{"key": f"{name}:{k}", "name": name, "source": t.decode()} for k, t in texts.items() if t]
    done = subprocess.run(
        [sys.executable, str(EDITS / "_runner.py")],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ran = json.loads(done.stdout)
    return {
        name: (v, {k.split(":", 1)[1]: out for k, out in ran.items() if k.split(":", 1)[0] == name})
        for name, v in versions.items()
    }


def _of(result: FileResult, code: str) -> list[Any]:
    return [f for f in result.findings if f.code == code]


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_fix_keeps_behaviour_or_declines(program: Path, corpus: dict[str, tuple[Versions, dict[str, Any]]]) -> None:
    versions, runs = corpus[program.name]
    expect = expectation(versions.source.decode())
    before = runs["before"]
    assert before["error"] is None, before  # a meaningful program: it runs to the end
    checked = lint_source(versions.source, program.name, CONFIG).findings
    mine = [f for f in checked if f.code == expect.code]
    for result in (versions.plain, versions.unsafe):
        assert not result.errors, result.errors  # never an internal error
    # Check mode promises exactly what --fix does (plain and with --unsafe-fixes).
    assert versions.plain.fixed == sum(f.fixable for f in checked)
    unsafe_checked = lint_source(versions.source, program.name, UNSAFE).findings
    assert versions.unsafe.fixed == sum(f.fixable for f in unsafe_checked)
    for variant in ("plain", "unsafe"):
        if variant in runs and not (variant == "unsafe" and expect.kind == "unsafe"):
            assert runs[variant] == before, variant  # whatever else was fixed kept the behaviour
    if expect.kind == "fixed":
        assert mine and all(f.fixable for f in mine), [f.message for f in mine]
        assert versions.plain.new_source is not None and not _of(versions.plain, expect.code)
    elif expect.kind == "unsafe":
        assert mine and not any(f.fixable for f in mine)
        assert all("unsafe fix" in f.message and expect.words in f.message for f in mine), [f.message for f in mine]
        assert len(_of(versions.plain, expect.code)) == len(mine)
        assert not _of(versions.unsafe, expect.code), "--unsafe-fixes applies it"
        assert runs["unsafe"] != before, "an unsafe fix that keeps the behaviour here: show what it changes"
    elif expect.kind == "declined":
        assert mine, "the finding itself stays"
        assert all(f.edits is None and expect.words in f.message for f in mine), [f.message for f in mine]
        assert len(_of(versions.unsafe, expect.code)) == len(mine)
        if "# naive: internal error" in versions.source.decode():  # what the checks were added for
            assert [e.kind for e in versions.naive.errors] == ["internal-error"]
            return
        assert "naive" in runs and not _of(versions.naive, expect.code), "without the checks it is fixed"
        assert runs["naive"] != before, "declining must be necessary: the plain fix changes the output"
    else:
        assert not mine, [f.message for f in mine]
        assert "naive" in runs, "the resolution before issue 23 reported it and fixed it"
        assert runs["naive"] != before, "the finding's fix changes the output"


def test_corpus_covers_every_kind_of_issue_23() -> None:
    """A program per kind the issue lists (the hoist corners are in tests/behaviour/)."""
    stems = {p.stem for p in PROGRAMS}
    kinds = {
        "and/or: a raising operand": "and_raising_operand",
        "and/or: a walrus": "and_walrus",
        "and/or: a plain Python bool, an unknown method": "and_python_bool",
        "and/or: numbers mixed with tensors": "and_different_parameters",
        "not: NaN and the result type": "not_inverted",
        "not: a parameter rebound in the body": "not_rebound_parameter",
        "not: a method call": "not_method_call",
        "not (a and b) == c: the internal error": "not_of_compared_boolean",
        "torch.where: Python bools, result type": "where_python_numbers",
        "torch.where: both branches evaluated": "where_both_branches",
        "torch.where: `global torch` elsewhere": "where_torch_rebound_global",
        "torch.where: a later star import": "where_star_import_later",
        "score +=: a caller's view, an integer score": "score_caller_view",
        "score +=: an alias": "score_alias",
        "score +=: a parameter rebound to float64": "score_rebound_parameter",
        "ESP013 on a shim defined later": "flex_attention_shim",
        "ESP010 with `del torch`": "compile_flag_torch_deleted",
        "ESP010 on a wrapper defined later": "compile_flag_wrapper_later",
        "ESP009 through a decorator": "batch_dims_decorated",
        "ESP009 through a shim reading the BlockMask": "batch_dims_shim_reads_shape",
    }
    assert {kind: stem for kind, stem in kinds.items() if stem not in stems} == {}
