"""The behaviour corpus (tests/behaviour/): `--fix` keeps each program's behaviour, or declines and says why.

Each program states what `--fix` must do in a `# expect:` line:
- `fixed`: every finding is fixed, and the program prints the same, on both streams, with the same exit
  code, before and after (each run in its own interpreter);
- `declined: <words>`: the finding stays, not fixable, its message (check mode and fix mode alike) gives
  a reason containing <words>; whatever else the fix changes must not change the output.
Declining must be necessary, not just cautious: with the safety checks switched off, the fixer's plain
hoist of every declined program changes its output (unless the program says `# naive hoist: same output`).

The programs import the FlexAttention API from tests/behaviour/_stubs, a pure-Python stand-in with the
real qualified names, so the analysis sees real code and each run takes milliseconds (no torch).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esper_lint.analysis import hoist_safety, hoist_sites, mask_functions
from esper_lint.config import Config
from esper_lint.engine import lint_source
from esper_lint.fix.file_fixer import fix_source
from esper_lint.fix.naming import def_base_name, lambda_base_name

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT / "tests" / "behaviour"
STUBS = CORPUS_DIR / "_stubs"
CONFIG = Config(root=ROOT)
PROGRAMS = sorted(CORPUS_DIR.glob("*.py"))
HOIST_CODES = ("ESP001", "ESP002")
# Module-level names test runners call or collect by themselves (pytest and unittest defaults, any case).
_COLLECTED = re.compile(r"^(test|setup|teardown|pytest_|load_tests)", re.IGNORECASE)


def expectation(text: str) -> tuple[str, str | None]:
    match = re.search(r"^# expect: (fixed|declined: (.+))$", text, re.MULTILINE)
    assert match, "every behaviour program says what --fix must do"
    return ("fixed", None) if match.group(1) == "fixed" else ("declined", match.group(2))


def run(source: bytes, folder: Path, name: str) -> tuple[int, str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / name
    program.write_bytes(source)
    env = {**os.environ, "PYTHONPATH": str(STUBS), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-S", program.name], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout, done.stderr


def collected_names(source: bytes) -> set[str]:
    tree = ast.parse(source)
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return {n for n in names if _COLLECTED.match(n)}


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_fix_keeps_behaviour_or_declines(program: Path, tmp_path: Path) -> None:
    source = program.read_bytes()
    kind, reason = expectation(source.decode())
    result = fix_source(source, program.name, CONFIG)
    assert not result.errors, result.errors
    before = run(source, tmp_path / "before", program.name)
    assert before[0] == 0 and not before[2], before  # a meaningful program: it runs cleanly
    checked = lint_source(source, program.name, CONFIG).findings
    if kind == "fixed":
        assert result.new_source is not None and result.fixed > 0
        assert [f for f in result.findings if f.code in HOIST_CODES] == []
        assert all(f.fixable for f in checked if f.code in HOIST_CODES), "check mode must promise the fix"
    else:
        assert reason is not None
        declined = [f for f in result.findings if f.code in HOIST_CODES and reason in f.message]
        assert declined, [f.message for f in result.findings]
        assert all(not f.fixable and "no automatic fix because" in f.message for f in declined)
        assert all(f.message in {c.message for c in checked} for f in declined), "check mode gives the same reason"
    if result.new_source is not None:
        assert run(result.new_source, tmp_path / "after", program.name) == before
        assert collected_names(result.new_source) <= collected_names(source)


DECLINED = [p for p in PROGRAMS if expectation(p.read_text())[0] == "declined"]


@pytest.mark.parametrize("program", DECLINED, ids=[p.stem for p in DECLINED])
def test_declining_is_necessary(program: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the checks of analysis/hoist_safety.py (and the hoist site's own) the fixer hoists, and the
    program's output changes."""
    source = program.read_bytes()
    monkeypatch.setattr(mask_functions, "hoist_reasons", lambda *args: [])
    monkeypatch.setattr(hoist_safety, "mark_suppressed_uses", lambda *args: None)
    # The checks the hoist site makes itself (hoist_sites.HoistSites.hoist_site) for the corners of issue 23.
    monkeypatch.setattr(hoist_sites.HoistSites, "class_scope_names", lambda self, node: [])
    monkeypatch.setattr(hoist_sites.name_stability, "star_import_after", lambda *args: False)
    naive = fix_source(source, program.name, CONFIG)
    assert naive.new_source is not None and not naive.errors, "the plain hoist must be possible"
    if "# naive hoist: same output" in source.decode():
        return
    before = run(source, tmp_path / "before", program.name)
    assert run(naive.new_source, tmp_path / "naive", program.name) != before


def test_corpus_covers_every_decline_category() -> None:
    reasons = [expectation(p.read_text())[1] or "" for p in DECLINED]
    categories = (
        *("its default", "it is decorated", "its annotation"),  # definition-time code
        *("its attribute", "it is returned", "it is compared", "it is stored", "it is passed to"),  # the object
        "it is a class attribute",
        "without the definition",  # conditional definition, use before it
        *("`locals()`", "`vars()`", "`eval()`", "`globals()`", "inspects frames"),  # dynamic namespaces
        *(
            "`__builtins__`",
            "`__globals__`",
            "function of the module inspects frames",
        ),  # ... reached another way (issue 23)
        *("`from ... import *` after", "which the class body around it binds"),  # names moving scope
        "is suppressed with",  # a use silenced with a noqa comment
    )
    assert [c for c in categories if not any(c in r for r in reasons)] == []


# ----------------------------------------------------------------------------- what --diff prints
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "esper_lint", *args], cwd=cwd, capture_output=True, timeout=120)


def test_diff_of_a_latin1_file_is_in_latin1_and_applies(tmp_path: Path) -> None:
    source = (ROOT / "fixtures" / "fix" / "latin1.in.py").read_bytes()
    assert "é".encode("latin-1") in source
    (tmp_path / "m.py").write_bytes(source)
    done = _cli("--diff", "m.py", cwd=tmp_path)
    assert done.returncode == 1
    assert "é".encode("latin-1") in done.stdout and "é".encode() not in done.stdout
    fixed = fix_source(source, "m.py", CONFIG).new_source
    assert fixed is not None
    assert _apply(source, done.stdout) == fixed


def _apply(old: bytes, diff: bytes) -> bytes:
    """A minimal `patch` for one-file unified diffs, on bytes: proves the diff matches the file on disk."""
    lines = old.splitlines(keepends=True)
    out: list[bytes] = []
    position = 0
    for line in diff.splitlines(keepends=True)[2:]:
        if line.startswith(b"@@"):
            start = int(line.split()[1].split(b",")[0][1:]) - 1
            out += lines[position:start]
            position = start
        elif line.startswith(b"-"):
            assert lines[position] == line[1:], (lines[position], line)
            position += 1
        elif line.startswith(b"+"):
            out.append(line[1:])
        elif line.startswith(b" "):
            assert lines[position] == line[1:]
            out.append(line[1:])
            position += 1
    return b"".join(out + lines[position:])


def test_diff_lists_remaining_findings_at_their_lines_on_disk(tmp_path: Path) -> None:
    source = b"""from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    def window(b, h, q, kv, w=[]):
        return q >= kv

    return create_block_mask(causal, None, None, n, n), create_block_mask(window, None, None, n, n)
"""
    (tmp_path / "m.py").write_bytes(source)
    done = _cli("--diff", "m.py", cwd=tmp_path)
    report = done.stderr.decode()
    line = next(i for i, text in enumerate(source.decode().splitlines(), 1) if "create_block_mask(window" in text)
    column = source.decode().splitlines()[line - 1].index("window, None") + 1
    assert f"m.py:{line}:{column}: ESP001" in report and "`window` (line 8 in `build`)" in report
    assert (tmp_path / "m.py").read_bytes() == source


def test_diff_does_not_say_no_fixes_beside_an_error() -> None:
    from esper_lint.core.findings import FileError, FileResult
    from esper_lint.reporters import ReportContext
    from esper_lint.reporters.text import render
    from esper_lint.runner import Mode, RunResult

    timed_out = FileResult("slow.py", errors=[FileError("slow.py", "timed out", kind="timeout")])
    text = render(RunResult(files=[timed_out]), ReportContext(mode=Mode.DIFF))
    assert "No fixes available" not in text and "could not be checked" in text
    assert "No fixes available." in render(RunResult(files=[FileResult("ok.py")]), ReportContext(mode=Mode.DIFF))


# ----------------------------------------------------------------------------- generated programs
# Each choice is (source, safe): a program built from safe choices only must be fixed; any program must
# keep its output when it is fixed. The observers print what each hazard would change.
DECORATORS = (("", True), ("@logged", False))
DEFAULTS = (("", True), (", w=1", True), (", w=WIDTH", True), (", w=[]", False), (", w=next(COUNTER)", False))
USES = (
    ("", True),
    ("LOG.append(causal(0, 0, 1, 0))", True),
    ("create_block_mask(and_masks(causal, causal), None, None, n, n)", True),
    ("causal.tag = n", False),
    ("LOG.append(causal)", False),
    ('LOG.append("causal" in locals())', False),
)
BODIES = {
    "": ["return q >= kv"],
    ", w=1": ["return q + w >= kv"],
    ", w=WIDTH": ["return q + w >= kv"],
    ", w=[]": ["w.append(q)", "return q >= kv and len(w) < 7"],
    ", w=next(COUNTER)": ["return q + w >= kv"],
}
PROGRAM = """import itertools

from torch.nn.attention.flex_attention import and_masks, create_block_mask

LOG = []
WIDTH = 1
COUNTER = itertools.count()


def logged(fn):
    LOG.append("defined")
    return fn


def build(n, flag=True):
{body}
    return create_block_mask(causal, None, None, n, n)


results = [build(2), build(3)]
print(results, [getattr(r.mask_mod, "tag", None) for r in results])
try:
    build(2, flag=False)
except (NameError, ValueError) as exc:
    print(type(exc).__name__)
print([x if isinstance(x, (bool, str)) else type(x).__name__ for x in LOG], len({id(x) for x in LOG if callable(x)}))
"""


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, bool]:
    decorator, safe_decorator = draw(st.sampled_from(DECORATORS))
    default, safe_default = draw(st.sampled_from(DEFAULTS))
    uses = draw(st.lists(st.sampled_from(USES), max_size=2, unique=True))
    condition = draw(st.sampled_from(["", "pass", "raise ValueError('no mask')"]))
    conditional = condition == "pass"  # the path without the definition must keep failing with NameError
    definition = [decorator] if decorator else []
    definition += [f"def causal(b, h, q, kv{default}):", *(f"    {line}" for line in BODIES[default])]
    if condition:  # under `if flag:`; an `else` that raises keeps every later use after the definition
        definition = ["if flag:", *(f"    {line}" for line in definition), "else:", f"    {condition}"]
    lines = [*definition, *(use for use, _ in uses if use)]
    text = PROGRAM.replace("{body}", "\n".join(f"    {line}" for line in lines))
    safe = safe_decorator and safe_default and not conditional and all(s for _, s in uses)
    return text, safe


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_generated_programs_keep_their_output_or_are_declined(program: tuple[str, bool]) -> None:
    text, safe = program
    source = text.encode()
    compile(source, "generated.py", "exec", dont_inherit=True)
    result = fix_source(source, "generated.py", CONFIG)
    assert not result.errors, (result.errors, text)
    if safe:
        assert result.new_source is not None and result.fixed >= 1, (text, [f.message for f in result.findings])
        assert not [f for f in result.findings if f.code in HOIST_CODES], text
    with tempfile.TemporaryDirectory() as folder:
        before = run(source, Path(folder) / "before", "generated.py")
        assert before[0] == 0 and not before[2], (before, text)
        if result.new_source is not None:
            assert run(result.new_source, Path(folder) / "after", "generated.py") == before, text
        else:
            declined = [f for f in result.findings if f.code == "ESP001"]
            assert declined and not declined[0].fixable and "no automatic fix because" in declined[0].message


# ----------------------------------------------------------------------------- generated names
@pytest.mark.parametrize(
    ("enclosing", "variable", "expected"),
    [
        ("build", None, "build_mask_mod"),
        ("Server.__init__", None, "server_mask_mod"),  # a dunder says nothing: its class does
        ("Model._mask", None, "mask_mod"),  # not `mask_mask_mod`
        ("Attention.make_mask", None, "make_mask_mod"),
        ("test_sandwich_flex_matches_sdpa_with_grads", None, "sandwich_flex_mask_mod"),  # a few words only
        ("build_the_attention_mask", None, "build_mask_mod"),  # whole words, no trailing `the`
        ("TestVisionAttention.test_td_layout", None, "td_layout_mask_mod"),
        ("TestAttention.setUp", None, "mask_mod"),
        ("testing", None, "mask_mod_testing"),
        ("build", "test_mask", "mask"),
        (None, None, "mask_mod"),
    ],
)
def test_lambda_names_are_readable_and_never_collected(
    enclosing: str | None, variable: str | None, expected: str
) -> None:
    name = lambda_base_name(enclosing, variable)
    assert name == expected
    assert not _COLLECTED.match(name) and "__" not in name and name.isidentifier()


@pytest.mark.parametrize(
    ("lambda_source", "role", "expected"),
    [
        ("lambda b, h, q, kv: q >= kv", "mask_mod", "causal_mask"),  # says what it does
        ("lambda b, h, q_idx, kv_idx: kv_idx <= q_idx", "mask_mod", "causal_mask"),
        ("lambda b, h, q, kv: kv >= q", "mask_mod", "run_checks_mask_mod"),  # not causal: the stem
        ("lambda b, h, q, kv: q >= kv + 1", "mask_mod", "run_checks_mask_mod"),
        ("lambda score, b, h, q, kv: score * 2", "score_mod", "run_checks_score_mod"),  # the keyword's role
    ],
)
def test_inline_lambda_names_say_what_they_do_or_how_they_are_passed(
    lambda_source: str, role: str, expected: str
) -> None:
    lam = ast.parse(lambda_source, mode="eval").body
    assert isinstance(lam, ast.Lambda)
    assert lambda_base_name("test_run_checks_over_every_layout_and_dtype", None, role, lam) == expected


def test_generated_names_keep_rewritten_lines_short() -> None:
    """attention-gym's test_sandwich: the inline lambda once became a 47-character name, and the call line
    went past the repository's 99 characters."""
    source = (
        "from torch.nn.attention.flex_attention import create_block_mask\n\n\n"
        "def test_sandwich_flex_matches_sdpa_with_grads():\n"
        "    S = 256\n"
        "    block_mask = create_block_mask(lambda b, h, q, kv: q >= kv, None, None, S, S, device='cpu')\n"
        "    block_mask2 = create_block_mask(lambda b, h, q, kv: q - kv < 8, None, None, S, S, device='cpu')\n"
        "    return block_mask, block_mask2\n"
    )
    result = fix_source(source.encode(), "test_sandwich.py", CONFIG)
    assert result.new_source is not None
    fixed = result.new_source.decode()
    assert "def causal_mask(b, h, q, kv):" in fixed and "def sandwich_flex_mask_mod(b, h, q, kv):" in fixed
    assert max(len(line) for line in fixed.splitlines()) <= 99


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("causal", "causal"),
        ("_causal", "_causal"),
        ("test_causal", "causal"),
        ("TestCausal", "Causal"),
        ("testmask", "mask_testmask"),
        ("test", "mask_mod"),
        ("setUpModule", "Module"),
        ("pytest_mask", "mask"),
    ],
)
def test_def_names_are_kept_unless_collected(name: str, expected: str) -> None:
    assert def_base_name(name) == expected
    assert not _COLLECTED.match(def_base_name(name))


@pytest.mark.parametrize(
    "statement",
    ["(eval)('causal')", "exec ('x = 1')", "globals()['causal'] = 1", "global WIDTH\n    WIDTH = 2", "del WIDTH"],
)
def test_module_wide_checks_see_every_spelling(statement: str) -> None:
    """The text prefilter that lets hoist_safety skip a walk of the module must never hide these."""
    source = f"""
from torch.nn.attention.flex_attention import create_block_mask

WIDTH = 1

def other():
    {statement}

def build(n):
    def causal(b, h, q, kv, w=WIDTH):
        return q + w >= kv
    return create_block_mask(causal, None, None, n, n)
""".encode()
    esp = [f for f in lint_source(source, "m.py", CONFIG).findings if f.code == "ESP001"]
    assert esp and not esp[0].fixable, statement
    assert lint_source(source.replace(statement.encode(), b"pass"), "m.py", CONFIG).findings[0].fixable
