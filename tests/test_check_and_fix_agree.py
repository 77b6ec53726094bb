"""Checking and fixing agree: what `esper-lint` calls fixable, `--fix` fixes, and nothing else changes.

There is one analysis (`esper_lint/analysis/`, driven by `module_facts.py`); `--fix` runs it, rewrites what it
describes, and re-lints the result. Compared here on every fixture file, every rule's own examples, a
generated corpus, hand-written corner cases and ordinary library code: the findings `--fix` starts from
are exactly check's, every finding check calls fixable is fixed, no other finding changes, and the
fixed file, linted again, reports what `--fix` said remains.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
from corpus import corpus_sources

from esper_lint.config import Config
from esper_lint.core.apis import ApiTable, MaskApi
from esper_lint.core.decoding import SourceError
from esper_lint.core.findings import FileResult
from esper_lint.engine import analyze_bytes, lint_source
from esper_lint.fix.file_fixer import fix_source
from esper_lint.rules import ALL_RULES, RULES_BY_CODE

ROOT = Path(__file__).resolve().parent.parent
ALL_CODES = frozenset(RULES_BY_CODE)


def _key(result: FileResult) -> list[tuple[object, ...]]:
    return [(f.code, f.span, f.message, f.fixable) for f in result.findings]


def assert_check_and_fix_agree(text: str, path: str = "mod.py", config: Config | None = None) -> int:
    """Check's promise is what fix delivers; returns the number of findings check reported."""
    config = config or Config(root=ROOT, select=ALL_CODES)
    source = text.encode("utf-8")
    checked = lint_source(source, path, config)
    fixed = fix_source(source, path, config)
    assert [e.to_dict() for e in fixed.errors] == [e.to_dict() for e in checked.errors]
    promised = [f for f in checked.findings if f.fixable]  # hoists and safe text edits alike
    if not promised:
        assert fixed.new_source is None and fixed.fixed == 0
        assert _key(fixed) == _key(checked)
        return len(checked.findings)
    assert fixed.new_source is not None, "check promised a fix that --fix did not make"
    assert fixed.fixed == len(promised)
    compile(fixed.new_source, path, "exec", dont_inherit=True)
    relinted = lint_source(fixed.new_source, path, config)
    assert _key(relinted) == _key(fixed)
    assert not [f for f in relinted.findings if f.fixable]
    # The findings that were not fixable are all still there (lines, and so messages, may have moved).
    unfixable = sorted((f.code, f.fixable) for f in checked.findings if f not in promised)
    assert sorted((f.code, f.fixable) for f in relinted.findings) == unfixable
    return len(checked.findings)


def _fixture_files() -> list[Path]:
    return sorted(p for p in (ROOT / "fixtures").rglob("*.py"))


def reference_lint(source: bytes, path: str, config: Config) -> FileResult:
    """The plain pipeline: no prefilter, no cache, no workers (the fast paths must not change results)."""
    result = FileResult(path)
    try:
        result.findings = analyze_bytes(source, path, config).findings
    except SourceError as exc:
        result.errors.append(exc.error)
    return result


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_agrees_on_fixtures(path: Path) -> None:
    source = path.read_bytes()
    config = Config(root=ROOT, select=ALL_CODES)
    checked = lint_source(source, str(path), config)
    assert _key(checked) == _key(reference_lint(source, str(path), config))
    fixed = fix_source(source, str(path), config)
    assert not fixed.errors
    assert fixed.fixed == len([f for f in checked.findings if f.fixable])  # hoists and safe text edits
    if fixed.new_source is None:
        assert _key(fixed) == _key(checked)
    else:
        assert _key(lint_source(fixed.new_source, str(path), config)) == _key(fixed)


def test_fixtures_exist_and_have_fixes() -> None:
    # Guards the parametrised test above against silently comparing nothing.
    config = Config(root=ROOT, select=ALL_CODES)
    files = _fixture_files()
    results = [lint_source(p.read_bytes(), str(p), config) for p in files]
    assert sum(len(r.findings) for r in results) > 0
    assert sum(f.fixable for r in results for f in r.findings) > 5


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_agrees_on_rule_examples(rule: type) -> None:
    for source in (*rule.VALID, *rule.INVALID, rule.example, rule.use_instead):
        assert_check_and_fix_agree(textwrap.dedent(source))


def test_agrees_on_generated_corpus() -> None:
    sources = corpus_sources(count=80, seed=1)
    total = sum(assert_check_and_fix_agree(text, rel) for rel, text in sources)
    assert total > 100  # the corpus really exercises the rules


CORNER_CASES = {
    "non_ascii_columns": """
from torch.nn.attention.flex_attention import create_block_mask
def f(n):
    x = "→→→"; m = create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)  # éé
    return x, m
""",
    "parenthesised_and_keyword": """
from torch.nn.attention.flex_attention import create_block_mask as cbm
def f(n):
    def causal(b, h, q, kv):
        return q >= kv
    a = cbm(((causal)), None, None, n, n)
    b = cbm(None, None, n, n, mask_mod=(
        causal))
    return a, b
""",
    "dotted_import_and_attribute_chains": """
import torch.nn.attention.flex_attention
import torch
def f(n):
    def causal(b, h, q, kv):
        return q >= kv
    torch.nn.attention.flex_attention.create_block_mask(causal, None, None, n, n)
    torch.nn.attention.flex_attention.create_mask(causal, 1, 1, n, n)
""",
    "wrappers_partial_and_aliases": """
import functools, torch
from torch.nn.attention.flex_attention import create_block_mask, and_masks, or_masks
cbm = torch.compile(create_block_mask)
cbm2 = cbm
def f(n, flag):
    def causal(b, h, q, kv):
        return q >= kv
    mk = functools.partial(create_block_mask, causal)
    both = and_masks(causal, lambda b, h, q, kv: q > 0)
    a = cbm2(causal if flag else both, None, None, n, n)
    return a, mk(None, None, n, n), cbm(or_masks(causal), None, None, n, n)
""",
    "scoping": """
from torch.nn.attention.flex_attention import create_block_mask
class C:
    window = 3
    def m(self, n):
        def local(b, h, q, kv):
            return q - kv < window  # class attribute: not visible, not a capture
        return create_block_mask(local, None, None, n, n)
    @staticmethod
    def s(x, n):
        return create_block_mask(lambda b, h, q, kv: q < x, None, None, n, n)
def g(n):
    def causal(b, h, q, kv):
        return q >= kv
    r = create_block_mask(causal, None, None, n, n)
    def causal(b, h, q, kv):
        return q > kv
    total = 0
    def counted(b, h, q, kv):
        nonlocal total
        return q >= kv
    return r, create_block_mask(counted, None, None, n, n)
for w in range(3):
    def module_loop(b, h, q, kv):
        return q - kv < w
    create_block_mask(module_loop, None, None, 8, 8)
""",
    "forward_conditions": """
import torch
from torch import nn
from torch.nn.attention.flex_attention import create_block_mask
def causal(b, h, q, kv):
    return q >= kv
class A(nn.Module):
    def forward(self, q):
        m = create_block_mask(causal, None, None, q.shape[0], q.shape[0])
        try:
            m2 = create_block_mask(causal, None, None, 4, 4)
        finally:
            pass
        with torch.no_grad():
            m3 = create_block_mask(causal, None, None, 4, 4)
        return m or create_block_mask(causal, None, None, 2, 2), m2, m3
""",
    "decorators_defaults_annotations": """
from torch.nn.attention.flex_attention import create_block_mask
def f(n, deco, T):
    @deco
    def a(b, h, q, kv):
        return q >= kv
    def d(b, h, q, kv, n=n):
        return q - kv < n
    def t(b: T, h, q, kv) -> T:
        return q >= kv
    async def z(b, h, q, kv):
        return q >= kv
    return [create_block_mask(x, None, None, n, n) for x in (a, d, t)] + [create_block_mask(z, None, None, n, n)]
""",
    "late_module_name_in_a_default": """
from torch.nn.attention.flex_attention import create_block_mask
def build(n):
    def causal(b, h, q, kv, offset=OFFSET):
        return q + offset >= kv
    return create_block_mask(causal, None, None, n, n)
OFFSET = 1
""",
    "rebound_after_the_call": """
from torch.nn.attention.flex_attention import create_block_mask
def build(n):
    def causal(b, h, q, kv):
        return q >= kv
    mask = create_block_mask(causal, None, None, n, n)
    causal = None
    return mask, causal
""",
}


@pytest.mark.parametrize("name", sorted(CORNER_CASES))
def test_agrees_on_corner_cases(name: str) -> None:
    assert assert_check_and_fix_agree(CORNER_CASES[name]) > 0


def test_agrees_with_configured_apis_on_ordinary_code() -> None:
    # Treating common higher-order functions as "mask APIs" makes every callback in ordinary code a
    # mask function: a broad check of scoping, captures, loops and of the rewrite beyond FlexAttention.
    apis = ApiTable(
        [
            MaskApi("builtins.map", 0, "func"),
            MaskApi("builtins.sorted", None, "key", True),
            MaskApi("functools.reduce", 0, "function", True),
            MaskApi("builtins.max", None, "key"),
        ]
    )
    config = Config(root=ROOT, select=ALL_CODES, mask_apis=tuple(apis))
    checked = 0
    for module in (ast, __import__("functools"), __import__("tokenize")):
        assert module.__file__ is not None
        text = Path(module.__file__).read_text(encoding="utf-8")
        checked += assert_check_and_fix_agree(text, module.__file__, config)
    assert checked > 0


def test_skipped_definitions_still_bind_their_names() -> None:
    # `causal` is a top-level def the relevance filter does not visit; it must still resolve, so the
    # per-forward rule sees a capture-free mask.
    text = """
from torch import nn
from torch.nn.attention.flex_attention import create_block_mask
def causal(b, h, q, kv):
    return q >= kv
class A(nn.Module):
    def forward(self, q):
        return create_block_mask(causal, None, None, q.shape[0], q.shape[0])
"""
    assert assert_check_and_fix_agree(text) == 2  # ESP005, and the opt-in ESP030 (uncompiled, for q.shape[0])


# ----------------------------------------------------------------- hoist sites: `mask = mask`, walrus
def _targets(source: str) -> list[tuple[str, object]]:
    findings = analyze_bytes(textwrap.dedent(source).encode(), "m.py", Config(root=Path(".")))
    return [(f.code, f.target) for f in findings.findings if f.target is not None]


def test_a_self_assignment_is_not_a_second_binding_and_the_site_lists_it() -> None:
    ((code, fn),) = _targets(
        """
        from torch.nn.attention.flex_attention import create_block_mask

        def build(n):
            def causal(b, h, q, kv):
                return q >= kv
            causal = causal
            return create_block_mask(causal, None, None, n, n)
        """
    )
    assert code == "ESP001" and fn.unfixable_reasons == []
    assert [a.lineno for a in fn.site.self_assignments] == [7]
    assert [r.line for r in fn.site.references] == [8]  # `causal = causal` is deleted, not renamed


@pytest.mark.parametrize(
    "rebinding",
    ["x = 1; causal = causal", "causal: object = causal", "causal = causal = causal", "causal = (causal)"],
)
def test_other_rebindings_still_decline(rebinding: str) -> None:
    source = f"""
        from torch.nn.attention.flex_attention import create_block_mask

        def build(n):
            def causal(b, h, q, kv):
                return q >= kv
            {rebinding}
            return create_block_mask(causal, None, None, n, n)
        """
    reasons = [r for _, fn in _targets(source) for r in fn.unfixable_reasons]
    if rebinding == "causal = (causal)":  # the same statement as `causal = causal` for Python
        assert reasons == []
    else:
        assert any("bound more than once" in r for r in reasons)


def test_a_walrus_that_always_runs_is_hoisted_under_its_variable() -> None:
    targets = _targets(
        """
        from torch.nn.attention.flex_attention import create_mask

        def full(b, h, q, kv):
            return q >= 0

        def build(n, flag):
            dense = create_mask(fn := lambda b, h, q, kv: q >= kv, None, None, n, n)
            other = create_mask((kept := lambda b, h, q, kv: q > kv) if flag else full, None, None, n, n)
            return dense, fn(0, 0, 1, 0), other
        """
    )
    sites = {fn.site.variable or fn.site.walrus: fn.site for _, fn in targets}
    assert sites["fn"].form.value == "walrus-lambda" and [r.line for r in sites["fn"].references] == [10]
    # Maybe skipped: the walrus stays, only the lambda moves (named after `kept`, which then clashes).
    assert sites["kept"].form.value == "inline-lambda" and sites["kept"].variable is None


@pytest.mark.parametrize(
    ("frame_access", "in_enclosing"),
    [
        ("", False),  # the word only in another function: the frame check skips its walk of `build`
        ("@wrap(lambda: sys._getframe)\n", True),  # in the enclosing function's decorator: still walked
        ("@wrap(\n    lambda: inspect.currentframe())\n", True),  # a decorator spanning lines
    ],
)
def test_frame_check_reads_the_whole_enclosing_function(frame_access: str, in_enclosing: bool) -> None:
    source = f"""
import inspect
import sys
from torch.nn.attention.flex_attention import create_block_mask

def wrap(f):
    return lambda fn: fn

def other():
    return sys._getframe(), inspect.currentframe()

{frame_access}def build(n):
    def causal(b, h, q, kv):
        return q >= kv
    return create_block_mask(causal, None, None, n, n)
"""
    reasons = [r for _, fn in _targets(source) for r in fn.unfixable_reasons]
    assert any("the enclosing function inspects frames" in r for r in reasons) is in_enclosing, reasons
    # Frames read anywhere else in the module decline too (a helper may read its caller's locals), once.
    assert [r for r in reasons if "a function of the module inspects frames" in r] == (
        []
        if in_enclosing
        else [
            "a function of the module inspects frames (`._getframe`), and a frame sees its caller's locals, where "
            "the nested function's name would no longer be"
        ]
    )
