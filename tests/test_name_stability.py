"""Names a fix relies on (analysis/name_stability.py), call resolution through rebinding and decorators, and
the fixer corners of issue 23 (`--diff`'s remaining findings, bare-CR files)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import lint_snippet

from esper_lint.analysis import mask_bodies, name_stability
from esper_lint.analysis.call_sites import ParameterRead, parameter_read
from esper_lint.analysis.model import MaskUse
from esper_lint.analysis.module_facts import analyze_source
from esper_lint.config import Config
from esper_lint.core.apis import ApiTable
from esper_lint.engine import lint_source
from esper_lint.fix.file_fixer import fix_source

ROOT = Path(__file__).resolve().parent.parent
CONFIG = Config(root=ROOT)
IMPORTS = "import torch\nfrom torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"


def _uses(source: str) -> list[MaskUse]:
    text = IMPORTS + textwrap.dedent(source)
    return analyze_source(ast.parse(text), text, ApiTable()).uses


# ----------------------------------------------------------------------------- name_stability
@pytest.mark.parametrize(
    ("source", "stable"),
    [
        ("import torch\nx = 1", True),
        ("import torch as torch\nx = 1", True),
        ("import torch\ndel torch\nx = 1", False),
        ("import torch\ndef f():\n    global torch\n    torch = None\nx = 1", False),
        ("import torch\nfrom numpy import *\nx = 1", False),
        ("from numpy import *\nimport torch\nx = 1", False),  # a star import anywhere: conservative
        ("import torch\ntorch.where = print\nx = 1", False),
        ("import torch\nsetattr(torch, 'compile', print)\nx = 1", False),
        ("import torch\ntorch._dynamo.config.disable = True\nx = 1", True),  # not an attribute a fix reads
        ("import torch\nimport torch\nx = 1", False),
        ("try:\n    import torch\nexcept ImportError:\n    pass\nx = 1", False),  # may not have run
        ("x = 1\nimport torch", False),  # after the read
        ("import torch\ndef torch(): pass\nx = 1", False),
        ("import torch\nfor torch in []: pass\nx = 1", False),
        ("import torch\nglobals()['torch'] = None\nx = 1", False),
        ("import torch\nrun = eval\nx = 1", False),
    ],
)
def test_torch_is_stable_only_when_bound_once_and_never_reached_otherwise(source: str, stable: bool) -> None:
    tree = ast.parse(source)
    read_top = len(tree.body) - 1 if source.endswith("x = 1") else len(tree.body)
    if source.startswith("x = 1"):
        read_top = 0
    assert name_stability.stable_import(tree, "torch", "torch", read_top) is stable


def test_an_attribute_callee_is_stable_through_its_module_import() -> None:
    tree = ast.parse("from torch.nn.attention import flex_attention as fa\nx = 1")
    assert name_stability.stable_attribute(
        tree, ["fa", "create_block_mask"], "torch.nn.attention.flex_attention.create_block_mask", 1
    )
    tree = ast.parse("from torch.nn.attention import flex_attention as fa\nfa.create_block_mask = print\nx = 1")
    assert not name_stability.stable_attribute(
        tree, ["fa", "create_block_mask"], "torch.nn.attention.flex_attention.create_block_mask", 2
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", True),
        ("def use():\n    global torch\n    torch = None\n", False),
        ("from os import *\n", False),
        ("del torch\n", False),
    ],
)
def test_names_torch_module_sees_rebinding_anywhere(extra: str, expected: bool) -> None:
    source = f"import torch\n\ndef mask(b, h, q, kv):\n    return q\n{extra}"
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "mask")
    assert mask_bodies.names_torch_module(tree, node) is expected


# ----------------------------------------------------------------------------- resolution
def test_a_later_shim_makes_the_call_unknown() -> None:
    source = """
        def causal(b, h, q, kv):
            return q >= kv

        def attend(q, k, v):
            return flex_attention(q, k, v, create_block_mask(causal, None, None, 128, 128))

        def flex_attention(q, k, v, mask):
            return q
    """
    assert [f.code for f in lint_snippet(IMPORTS + textwrap.dedent(source))] == []


def test_a_block_mask_from_a_constructor_rebound_later_is_unknown() -> None:
    """A module's own `create_block_mask` defined later (returning a score function, say): what it returns
    is not known to be a BlockMask, so passing it 4th to flex_attention is not reported."""
    source = """
        def causal(b, h, q, kv):
            return q >= kv

        def attend(q, k, v):
            mask = create_block_mask(causal, None, None, 128, 128)
            return flex_attention(q, k, v, mask)

        def create_block_mask(mask_mod, *sizes):
            return lambda score, b, h, q, kv: score
    """
    assert [f.code for f in lint_snippet(IMPORTS + textwrap.dedent(source))] == []


@pytest.mark.parametrize(
    "fallback",
    [
        "try:\n    pass\nexcept ImportError:\n    flex_attention = None\n",  # cannot be called: not another function
        "flex_attention = torch.compile(flex_attention)\n",  # the same API, compiled
    ],
)
def test_rebinding_to_the_same_api_or_to_none_keeps_the_call_known(fallback: str) -> None:
    source = f"""
def causal(b, h, q, kv):
    return q >= kv

{fallback}
def attend(q, k, v):
    return flex_attention(q, k, v, create_block_mask(causal, None, None, 128, 128))
"""
    assert [f.code for f in lint_snippet(IMPORTS + source)] == ["ESP013"]


def test_a_decorated_mask_function_is_unknown_unless_the_decorator_returns_its_argument() -> None:
    template = """
        REGISTRY = []

        def register(fn):
            REGISTRY.append(fn)
            return fn

        def wrap(fn):
            def wrapper(b, h, q, kv):
                return fn(b, h, q, kv) & (kv < LENGTHS[b])
            return wrapper

        @{decorator}
        def causal(b, h, q, kv):
            return q >= kv

        def attend(q, k, v):
            mask = create_block_mask(causal, q.shape[0], None, 128, 128)
            return flex_attention(q, k, v, block_mask=mask)
    """
    for decorator, read in (("wrap", ParameterRead.UNKNOWN), ("register", ParameterRead.NEVER)):
        [use] = [u for u in _uses(template.replace("{decorator}", decorator)) if u.functions]
        assert parameter_read(use.functions[0], 0) is read, decorator
        codes = [f.code for f in lint_snippet(IMPORTS + textwrap.dedent(template.replace("{decorator}", decorator)))]
        assert ("ESP009" in codes) is (read is ParameterRead.NEVER), decorator


def test_the_compile_flag_fix_needs_stable_names() -> None:
    body = "\ndef build(m, n):\n    return create_block_mask(m, None, None, n, n, _compile=True)\n"
    fixable = [f.fixable for f in lint_snippet(IMPORTS + body) if f.code == "ESP010"]
    assert fixable == [True]
    guarded = IMPORTS.replace("from torch", "try:\n    from torch") + "except ImportError:\n    pass\n"
    assert [f.fixable for f in lint_snippet(guarded + body) if f.code == "ESP010"] == [True]  # same NameError
    unguarded_torch = "try:\n    import torch\nexcept ImportError:\n    pass\n" + IMPORTS.split("\n", 1)[1]
    assert [f.fixable for f in lint_snippet(unguarded_torch + body) if f.code == "ESP010"] == [False]
    for after in ("del torch\n", "def create_block_mask(*args, **kwargs):\n    return None\n", "from os import *\n"):
        findings = [f for f in lint_snippet(IMPORTS + body + after) if f.code == "ESP010"]
        assert all(not f.fixable for f in findings), after


# ----------------------------------------------------------------------------- the fixer
def test_diff_does_not_list_a_fixed_finding_as_remaining(tmp_path: Path) -> None:
    """Two ESP008 findings on one line, one fixed: `--diff` listed the fixed one as what remains."""
    source = (
        "import torch\nfrom torch.nn.attention.flex_attention import create_mask\n\n\n"
        "def m(b, h, q, kv):\n    return (q >= kv and q - kv < 4) | (q.item() > 0)\n\n\n"
        "create_mask(m, None, None, 4, 4)\n"
    )
    (tmp_path / "m.py").write_text(source)
    done = subprocess.run(
        [sys.executable, "-m", "esper_lint", "--no-cache", "--diff", "m.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    remaining = [line for line in done.stderr.splitlines() if ": ESP008 " in line]
    assert len(remaining) == 1 and "`.item()`" in remaining[0], done.stderr
    column = source.splitlines()[5].index("q.item()") + 1
    assert remaining[0].startswith(f"m.py:6:{column}:")  # where it is on disk


def test_a_bare_cr_file_keeps_every_line_outside_the_moved_code() -> None:
    lines = [
        "from torch.nn.attention.flex_attention import create_block_mask",
        "",
        "",
        "def build(n):",
        "    def causal(b, h, q, kv):",
        "        return q >= kv",
        "",
        "    return create_block_mask(causal, None, None, n, n)",
        "",
        "",
        "Y = 2",
        "",
    ]
    lf = fix_source("\n".join(lines).encode(), "m.py", CONFIG).new_source
    cr = fix_source("\r".join(lines).encode(), "m.py", CONFIG).new_source
    assert lf is not None and cr is not None
    assert cr == lf.replace(b"\n", b"\r")


def test_a_score_update_is_fixed_only_with_every_other_one() -> None:
    """Rewriting one `+=` rebinds `score`; the next update would change a new tensor, and its finding vanish."""
    source = IMPORTS + textwrap.dedent("""
        def bias(score, b, h, q, kv):
            score += q - kv
            score.mul_(2)
            return score

        def attend(q, k, v):
            return flex_attention(q, k, v, score_mod=bias)
    """)
    unsafe = CONFIG.replace(unsafe_fixes=True)
    found = [f for f in lint_source(source.encode(), "m.py", unsafe).findings if f.code == "ESP011"]
    assert len(found) == 2 and not any(f.fixable for f in found)
    result = fix_source(source.encode(), "m.py", unsafe)
    assert not result.errors and result.new_source is None
