"""The fast (`ast`) backend must describe code exactly as the LibCST reference backend does.

Compared: every fact the rules read (spans, names, captures, reasons, per-forward, capture-freedom) and
the full findings (code, span, message, fixable), on every fixture file, every rule's own examples, a
generated corpus, and hand-written corner cases (aliases, non-ASCII columns, scoping quirks).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from corpus import corpus_sources

from esper_lint.analysis.fast_backend import analyze_source
from esper_lint.analysis.libcst_backend import analyze_module
from esper_lint.analysis.model import ModuleFacts
from esper_lint.apis import ApiTable, MaskApi
from esper_lint.config import Config
from esper_lint.engine import SourceError, analyze, analyze_fast, check_decodable, lint_source, parse
from esper_lint.findings import FileResult
from esper_lint.rules import ALL_RULES, RULES_BY_CODE

ROOT = Path(__file__).resolve().parent.parent
ALL_CODES = frozenset(RULES_BY_CODE)


def _facts(facts: ModuleFacts) -> list[dict[str, Any]]:
    return [
        {
            "api": u.api,
            "arg_span": u.arg_span,
            "call_span": u.call_span,
            "caller": u.caller,
            "per_forward": u.per_forward,
            "capture_free": u.mask_is_capture_free,
            "functions": [
                (
                    f.kind,
                    f.name,
                    f.span,
                    f.enclosing,
                    f.captures,
                    f.definition_time_refs,
                    f.default_refs,
                    f.unfixable_reasons,
                )
                for f in u.functions
            ],
        }
        for u in facts.uses
    ]


def assert_agree(text: str, path: str = "mod.py", apis: ApiTable | None = None) -> int:
    """Both backends give the same facts and the same findings; returns the number of findings."""
    config = Config(root=ROOT, select=ALL_CODES)
    if apis is not None:
        config = Config(root=ROOT, select=ALL_CODES, mask_apis=tuple(apis))
    table = config.apis
    module = parse(text.encode("utf-8"), path)
    tree = ast.parse(text)
    assert _facts(analyze_source(tree, text, table)) == _facts(analyze_module(module, table))
    fast = [f.to_dict() for f in analyze_fast(tree, text, path, config)]
    reference = [f.to_dict() for f in analyze(module, path, config)]
    assert fast == reference
    return len(reference)


def _fixture_files() -> list[Path]:
    return sorted(p for p in (ROOT / "fixtures").rglob("*.py"))


def reference_lint(source: bytes, path: str, config: Config) -> FileResult:
    """The pipeline before the fast backend: decode check, LibCST parse, LibCST analysis."""
    result = FileResult(path)
    try:
        check_decodable(source, path)
        result.findings = analyze(parse(source, path), path, config)
    except SourceError as exc:
        result.errors.append(exc.error)
    return result


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_agrees_on_fixtures(path: Path) -> None:
    source = path.read_bytes()
    config = Config(root=ROOT, select=ALL_CODES)
    fast = lint_source(source, str(path), config)
    reference = reference_lint(source, str(path), config)
    assert [f.to_dict() for f in fast.findings] == [f.to_dict() for f in reference.findings]
    assert [e.to_dict() for e in fast.errors] == [e.to_dict() for e in reference.errors]
    if not reference.errors:
        assert_agree(check_decodable(source, str(path)), str(path))


def test_fixtures_exist_and_have_findings() -> None:
    # Guards the parametrised test above against silently comparing nothing.
    config = Config(root=ROOT, select=ALL_CODES)
    files = _fixture_files()
    assert files
    assert sum(len(lint_source(p.read_bytes(), str(p), config).findings) for p in files) > 0


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_agrees_on_rule_examples(rule: type) -> None:
    for source in (*rule.VALID, *rule.INVALID, rule.example, rule.use_instead):
        assert_agree(source)


def test_agrees_on_generated_corpus() -> None:
    sources = corpus_sources(count=80, seed=1)
    total = sum(assert_agree(text, rel) for rel, text in sources)
    assert total > 100  # the corpus really exercises the rules


CORNER_CASES = {
    "non_ascii_columns": """
from torch.nn.attention.flex_attention import create_block_mask
def f(n):
    x = "→→→"; m = create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)  # éé
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
    "scoping_quirks": """
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
        return m or create_block_mask(causal, None, None, 2, 2)
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
}


@pytest.mark.parametrize("name", sorted(CORNER_CASES))
def test_agrees_on_corner_cases(name: str) -> None:
    assert_agree(CORNER_CASES[name])


def test_agrees_with_configured_apis_on_ordinary_code() -> None:
    # Treating common higher-order functions as "mask APIs" makes every callback in ordinary code a
    # mask function: a broad check of scoping, captures and loops beyond FlexAttention patterns.
    apis = ApiTable(
        [
            MaskApi("builtins.map", 0, "func"),
            MaskApi("builtins.sorted", None, "key", True),
            MaskApi("functools.reduce", 0, "function", True),
            MaskApi("builtins.max", None, "key"),
        ]
    )
    checked = 0
    for module in (ast, __import__("functools"), __import__("tokenize")):
        assert module.__file__ is not None
        text = Path(module.__file__).read_text(encoding="utf-8")
        assert_agree(text, module.__file__, apis)
        checked += len(_facts(analyze_source(ast.parse(text), text, apis)))
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
    assert assert_agree(text) == 1
