"""The relevance filter is a shortcut only: skipping defs that cannot reach a mask API changes no finding.

`analysis/relevance.py`'s `RelevanceFilter` lets the analysis bind a def's name without visiting its body when the
def's lines spell no API name, alias, `partial` or `global` (top-level defs and classes, and the methods
of top-level classes). Here every source is analysed twice, with the filter and with every def visited
in full, and the findings (code, place, message, fixable) must be the same.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from corpus import corpus_sources

from esper_lint.analysis import module_facts
from esper_lint.config import Config
from esper_lint.engine import lint_source
from esper_lint.rules import ALL_RULES, RULES_BY_CODE

ROOT = Path(__file__).resolve().parent.parent
CONFIG = Config(root=ROOT, select=frozenset(RULES_BY_CODE))

# Methods the filter skips, next to code that reaches them by name or through the class.
HAND_WRITTEN = {
    "method passed from the class body": """
from torch.nn.attention.flex_attention import create_block_mask

class Masks:
    def causal(b, h, q, kv):
        return q >= kv

    block = create_block_mask(causal, None, None, 8, 8)
""",
    "factory method called from the class body": """
from torch.nn.attention.flex_attention import create_block_mask

class Masks:
    def factory(n):
        def window(b, h, q, kv):
            return (q - kv).abs() <= n
        return window

    block = create_block_mask(factory(2), None, None, 8, 8)
""",
    "methods beside the one that builds the mask": """
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

def causal(b, h, q, kv):
    return q >= kv

class Attention(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def helper(self, x):
        if x.sum() > 0:
            return x
        return -x

    @staticmethod
    def static_mask(b, h, q, kv):
        return q >= kv

    def forward(self, q, k, v):
        def local(b, h, qi, kv):
            return qi >= kv
        mask = create_block_mask(local, None, None, self.n, self.n)
        other = create_block_mask(causal, None, None, self.n, self.n)
        return flex_attention(q, k, v, block_mask=mask), other
""",
    "a method shadowing the API name": """
from torch.nn.attention.flex_attention import create_block_mask

class Builder:
    def create_block_mask(self, fn):
        return fn

    def build(self, n):
        def causal(b, h, q, kv):
            return q >= kv
        return create_block_mask(causal, None, None, n, n)
""",
}


def _sources() -> Iterator[tuple[str, bytes]]:
    for path in sorted((ROOT / "fixtures").rglob("*.py")):
        yield str(path.relative_to(ROOT)), path.read_bytes()
    for path in sorted((ROOT / "tests" / "behaviour").glob("*.py")):
        yield str(path.relative_to(ROOT)), path.read_bytes()
    for rule in ALL_RULES:
        for i, example in enumerate((*rule.VALID, *rule.INVALID)):
            yield f"{rule.code}-{i}.py", textwrap.dedent(example).encode()
    for name, text in HAND_WRITTEN.items():
        yield f"{name}.py", text.encode()
    for path, text in corpus_sources(count=60, seed=3):
        yield path, text.encode()


def _findings(source: bytes, path: str) -> list[tuple[object, ...]]:
    result = lint_source(source, path, CONFIG)
    return [(f.code, f.span, f.message, f.fixable) for f in result.findings] + [
        (e.kind, e.message) for e in result.errors
    ]


class _VisitEverything:
    def __init__(self, *args: object) -> None:
        pass

    def __call__(self, node: object) -> bool:
        return True


def test_skipped_defs_change_no_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    sources = list(_sources())
    filtered = [_findings(text, path) for path, text in sources]
    monkeypatch.setattr(module_facts, "RelevanceFilter", _VisitEverything)
    everything = [_findings(text, path) for path, text in sources]
    differences = [path for (path, _), a, b in zip(sources, filtered, everything, strict=True) if a != b]
    assert not differences
    assert sum(map(len, filtered)) > 500  # the sources do have findings to compare


def test_the_filter_skips_methods_of_top_level_classes() -> None:
    """The shortcut is taken: an irrelevant method's body is not visited, a relevant one's is."""
    text = HAND_WRITTEN["methods beside the one that builds the mask"]
    import ast

    tree = ast.parse(text)
    analyzer = module_facts.ModuleAnalyzer(tree, text, CONFIG.apis)
    cls = next(s for s in tree.body if isinstance(s, ast.ClassDef))
    methods = {m.name: m for m in cls.body if isinstance(m, ast.FunctionDef)}
    visited = {name for name, m in methods.items() if id(m) in analyzer.scopes.function_scope}
    # `static_mask` spells a key/value index parameter in a module that imports FlexAttention: it may be a
    # mask known by its parameters (mask_shapes.py), so it is visited too; `helper` and `__init__` are not.
    assert visited == {"forward", "static_mask"}
