"""ESP017, ESP021, ESP022, ESP024, ESP025, ESP026 on small modules: what is reported, what stays silent, what
the messages say and which fixes are offered (no torch needed; the fixes are run in test_fix_behaviour_bodies)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import lint_snippet

from esper_lint.config import Config
from esper_lint.core.findings import Finding
from esper_lint.engine import lint_source

HEADER = """\
import torch
from torch.nn.attention.flex_attention import create_block_mask, create_mask, flex_attention
"""


def _findings(body: str, code: str) -> list[Finding]:
    source = HEADER + textwrap.dedent(body)
    return [f for f in lint_snippet(source, "ast", code) if f.code == code]


def _mask(expr: str, *, extra: str = "", call: str = "create_block_mask(mask, None, None, 128, 128)") -> str:
    """A module-level mask_mod returning `expr` (parameters `q_idx`/`kv_idx`, or `q`/`kv` when `expr` uses
    those), passed to `call`."""
    params = "b, h, q_idx, kv_idx" if "q_idx" in expr or "kv_idx" in expr else "b, h, q, kv"
    return f"{extra}\ndef mask({params}):\n    return {expr}\n\n{call}\n"


# --------------------------------------------------------------------------- ESP017
@pytest.mark.parametrize(
    ("expr", "grouping", "intended", "chained"),
    [
        (
            "(q_idx >= kv_idx) & kv_idx < 100",
            "((q_idx >= kv_idx) & kv_idx) < 100",
            "(q_idx >= kv_idx) & (kv_idx < 100)",
            False,
        ),
        (
            "q_idx >= kv_idx & (kv_idx != 7)",
            "q_idx >= (kv_idx & (kv_idx != 7))",
            "(q_idx >= kv_idx) & (kv_idx != 7)",
            False,
        ),
        ("kv_idx >= 30 & kv_idx < 606", "kv_idx >= (30 & kv_idx) < 606", "(kv_idx >= 30) & (kv_idx < 606)", True),
        (
            "q_idx - kv_idx < 8 | kv_idx == 0",
            "q_idx - kv_idx < (8 | kv_idx) == 0",
            "(q_idx - kv_idx < 8) | (kv_idx == 0)",
            True,
        ),
    ],
)
def test_esp017_message_shows_pythons_grouping_and_the_intended_one(
    expr: str, grouping: str, intended: str, chained: bool
) -> None:
    [finding] = _findings(_mask(expr), "ESP017")
    assert f"`{grouping}`" in finding.message and f"Parenthesise each comparison: `{intended}`." in finding.message
    assert ("chained comparison" in finding.message) == chained
    assert ("vmap" in finding.message) == chained and ("silently" in finding.message) != chained


def test_esp017_parentheses_in_comments_do_not_count() -> None:
    expr = "(q_idx >= kv_idx) & kv_idx < (  # a bound (inclusive)\n        100)"
    assert len(_findings(_mask(expr), "ESP017")) == 1


@pytest.mark.parametrize(
    "expr",
    [
        "(q_idx & 7) == (kv_idx & 7)",
        "q_idx & 7 == kv_idx & 7",  # integers masked, then compared: what it says
        "(q_idx >= kv_idx) & (kv_idx < 64) | (kv_idx == 0)",
        "((q_idx >= kv_idx) & kv_idx) < 100",  # written out: deliberate
        "((q_idx >= kv_idx) & kv_idx  # (why)\n    ) < 100",  # parenthesised across a comment
    ],
)
def test_esp017_near_misses_stay_clean(expr: str) -> None:
    assert _findings(_mask(expr), "ESP017") == []


def test_esp017_reads_a_local_bound_to_a_condition() -> None:
    body = "def mask(b, h, q_idx, kv_idx):\n    causal = q_idx >= kv_idx\n    return causal & kv_idx < 100\n"
    assert len(_findings(body + "\ncreate_block_mask(mask, None, None, 128, 128)\n", "ESP017")) == 1


def test_esp017_interaction_the_chain_is_not_esp008_and_esp008_fixes_decline() -> None:
    chain = _mask("kv_idx >= 30 & kv_idx < 606")
    assert _findings(chain, "ESP008") == [] and len(_findings(chain, "ESP017")) == 1
    joined = _mask("q_idx >= kv_idx & (kv_idx != 7) and kv_idx < 500")
    [esp008] = _findings(joined, "ESP008")
    assert not esp008.fixable and esp008.edits is None and "--fix" not in esp008.message
    conditional = _mask("1 if q_idx >= kv_idx & (kv_idx != 7) else 0")
    assert not any(f.fixable for f in _findings(conditional, "ESP008"))
    # The decline is specific: the same `and` with every comparison reading the same parameters is a safe fix.
    assert _findings(_mask("q_idx >= kv_idx and q_idx - kv_idx < 500"), "ESP008")[0].fixable


def test_esp011_fix_declines_around_a_misgrouped_comparison() -> None:
    body = """
    def bias(score, b, h, q_idx, kv_idx):
        score += (q_idx >= kv_idx) & kv_idx < 4
        return score

    flex_attention(None, None, None, score_mod=bias)
    """
    [finding] = _findings(body, "ESP011")
    assert not finding.fixable and finding.edits is None
    # Grouped as meant, the rewrite is offered again (as every ESP011 rewrite: unsafe, docs/fix.md).
    grouped = _findings(body.replace("& kv_idx < 4", "& (kv_idx < 4)"), "ESP011")[0]
    assert grouped.edits is not None and not grouped.edits.safe


# --------------------------------------------------------------------------- ESP021
@pytest.mark.parametrize(
    ("extra", "expr", "what"),
    [
        ("LENGTHS = [100, 60]", "kv_idx < LENGTHS[b]", "indexes the Python list `LENGTHS`"),
        ("LIMITS = {0: 100}", "kv_idx < LIMITS[b]", "indexes the Python dict `LIMITS`"),
        ("", "kv_idx < (100, 60)[b]", "indexes a Python tuple"),
        ("SINKS = {0, 1}", "kv_idx in SINKS", "`in` the Python set `SINKS`"),
        ("", "kv_idx not in [0, 1]", "`not in` a Python list"),
        ("", "kv_idx in range(4)", "`in` a `range`"),
        ("import math", "math.log(kv_idx + 1) < 3", "`math.log()`"),
        ("from math import sqrt", "q_idx - kv_idx < sqrt(q_idx)", "`math.sqrt()`"),
        ("import numpy as np", "np.abs(q_idx - kv_idx) < 8", "`numpy.abs()`"),
    ],
)
def test_esp021_reports_python_data_on_tensors(extra: str, expr: str, what: str) -> None:
    [finding] = _findings(_mask(expr, extra=extra), "ESP021")
    assert what in finding.message and "raise" in finding.message
    assert any(
        advice in finding.message for advice in ("Make the data a tensor", "Compare instead", "`torch` function")
    )


@pytest.mark.parametrize(
    ("extra", "expr"),
    [
        ("import math", "q_idx - kv_idx < math.log(2) * 64"),  # math on constants
        ("LENGTHS = [100, 60]\nLENGTHS = torch.tensor(LENGTHS)", "kv_idx < LENGTHS[b]"),  # rebound to a tensor
        ("LENGTHS = [100, 60]\ndef load():\n    global LENGTHS\n    LENGTHS = None", "kv_idx < LENGTHS[b]"),
        ("from config import LENGTHS", "kv_idx < LENGTHS[b]"),  # unknown
        ("LENGTHS = [100, 60]", "kv_idx < LENGTHS[0]"),  # a constant index
        ("", "kv_idx < torch.tensor([100, 60])[b]"),  # a tensor
        ("math = None", "math.log(kv_idx) < 3"),  # not the math module
    ],
)
def test_esp021_stays_silent_on_python_values_and_unknown_names(extra: str, expr: str) -> None:
    assert _findings(_mask(expr, extra=extra), "ESP021") == []


def test_esp021_local_list_read_with_a_constant_is_fine_indexed_by_a_tensor_it_fails() -> None:
    fine = "def mask(b, h, q_idx, kv_idx):\n    sizes = [64, 128]\n    return q_idx - kv_idx < sizes[0]\n"
    call = "\ncreate_block_mask(mask, None, None, 128, 128)\n"
    assert _findings(fine + call, "ESP021") == []
    assert len(_findings(fine.replace("sizes[0]", "sizes[b]") + call, "ESP021")) == 1


def test_esp021_membership_in_a_list_only_where_plain_vmap_runs() -> None:
    plain = _mask("kv_idx in [0, 5]")
    assert len(_findings(plain, "ESP021")) == 1
    assert (
        _findings(_mask("kv_idx in [0, 5]", call="torch.compile(create_block_mask)(mask, None, None, 8, 8)"), "ESP021")
        == []
    )
    assert (
        len(
            _findings(
                _mask("kv_idx not in [0, 5]", call="torch.compile(create_block_mask)(mask, None, None, 8, 8)"), "ESP021"
            )
        )
        == 1
    )
    score = "import numpy as np\ndef s(score, b, h, q, kv):\n    return score + np.abs(q - kv) + (kv in [0, 1])\n"
    assert _findings(score + "flex_attention(None, None, None, score_mod=s)\n", "ESP021") == []


# --------------------------------------------------------------------------- ESP022
@pytest.mark.parametrize(
    ("prelude", "statement", "what"),
    [
        ("CALLS = 0", "global CALLS\n    CALLS += 1", "assigns `CALLS`"),
        ("SEEN = []", "SEEN.append(q_idx)", "`SEEN.append()`"),
        ("CACHE = {}", "CACHE['k'] = q_idx", "an item of `CACHE`"),
        ("BUF = torch.zeros(4)", "BUF.zero_()", "`BUF.zero_()`"),
        ("STATS = set()", "STATS.add(1)", "`STATS.add()`"),
        ("", "print(q_idx)", "`print()`"),
        ("", "breakpoint()", "`breakpoint()`"),
        ("import logging", "logging.info('mask')", "`logging.info()`"),
        ("import logging\nlogger = logging.getLogger(__name__)", "logger.warning('mask')", "`logger.warning()`"),
        ("import pdb", "pdb.set_trace()", "`pdb.set_trace()`"),
    ],
)
def test_esp022_reports_side_effects(prelude: str, statement: str, what: str) -> None:
    body = f"{prelude}\ndef mask(b, h, q_idx, kv_idx):\n    {statement}\n    return q_idx >= kv_idx\n"
    [finding] = _findings(body + "\ncreate_block_mask(mask, None, None, 8, 8)\n", "ESP022")
    assert what in finding.message and "once under vmap" in finding.message and "pure" in finding.message


@pytest.mark.parametrize(
    ("prelude", "statement"),
    [
        ("", "parts = []\n    parts.append(q_idx)"),  # its own list
        ("BIAS = torch.zeros(4)", "x = BIAS.add(1.0)"),  # `.add()` used as a value: a new tensor
        ("", "def print(*a):\n        pass\n    print(q_idx)"),  # not the builtin
        ("import torch.nn.init as init\nW = torch.zeros(2)", "init.zeros_"),  # a module function, not called
        ("logger = object()", "logger.info('x')"),  # not a logging logger
        ("", "q_idx.add_(1)"),  # a parameter (ESP011 covers the score)
    ],
)
def test_esp022_stays_silent_on_what_the_function_owns(prelude: str, statement: str) -> None:
    body = f"{prelude}\ndef mask(b, h, q_idx, kv_idx):\n    {statement}\n    return q_idx >= kv_idx\n"
    assert _findings(body + "\ncreate_block_mask(mask, None, None, 8, 8)\n", "ESP022") == []


def test_esp022_self_state_in_a_method_closure_and_the_score_mod_message() -> None:
    body = """
    class Attention:
        def forward(self, q, k, v):
            def bias(score, b, h, q_idx, kv_idx):
                self.calls += 1
                return score
            return flex_attention(q, k, v, score_mod=bias)
    """
    [finding] = _findings(body, "ESP022")
    assert "assigns `self.calls`" in finding.message and "Unsupported" in finding.message


# --------------------------------------------------------------------------- ESP024
def test_esp024_local_literal_capture_gets_a_safe_fix_module_level_an_unsafe_one() -> None:
    local = """
    def build(n):
        limit = torch.tensor([8])
        def sliding(b, h, q_idx, kv_idx):
            return q_idx - kv_idx < limit
        return create_block_mask(sliding, None, None, n, n)
    """
    [finding] = _findings(local, "ESP024")
    assert finding.fixable and "`torch.tensor(8)`" in finding.message and "too many values to unpack" in finding.message
    module = "LIMIT = torch.tensor([8])\n" + _mask("q_idx - kv_idx < LIMIT")
    [finding] = _findings(module, "ESP024")
    assert not finding.fixable and finding.edits is not None and not finding.edits.safe


@pytest.mark.parametrize(
    "local",
    [
        "limit = torch.tensor([8])\n    print(limit.shape)",  # read outside the mask
        "limit = torch.tensor([8])\n    limit = limit + 0",  # bound twice
    ],
)
def test_esp024_fix_is_not_safe_when_the_shape_can_be_seen(local: str) -> None:
    body = f"""
def build(n):
    {local}
    def sliding(b, h, q_idx, kv_idx):
        return q_idx - kv_idx < limit
    return create_block_mask(sliding, None, None, n, n), sliding
"""
    assert not any(f.fixable for f in _findings(body, "ESP024"))


@pytest.mark.parametrize(
    ("extra", "expr"),
    [
        ("LIMIT = torch.tensor(8)", "q_idx - kv_idx < LIMIT"),  # 0-d
        ("LIMIT = torch.tensor([8])", "q_idx - kv_idx < LIMIT[0]"),  # indexed
        ("LIMIT = torch.tensor([8])", "q_idx - kv_idx < LIMIT.item()"),  # ESP008's business
        ("LIMIT = torch.tensor([8, 16])", "q_idx - kv_idx < LIMIT[b]"),
        ("LIMIT = [8]", "q_idx - kv_idx < LIMIT[0]"),
    ],
)
def test_esp024_near_misses(extra: str, expr: str) -> None:
    assert _findings(_mask(expr, extra=extra), "ESP024") == []


def test_esp024_one_finding_per_capture_however_many_functions_read_it() -> None:
    body = """
    OFFSET = torch.tensor([4])
    def a(b, h, q_idx, kv_idx):
        return q_idx - kv_idx < OFFSET
    def s(score, b, h, q_idx, kv_idx):
        return score + OFFSET
    create_block_mask(a, None, None, 8, 8)
    flex_attention(None, None, None, score_mod=s)
    """
    assert len(_findings(body, "ESP024")) == 1


# --------------------------------------------------------------------------- ESP025
def test_esp025_only_for_create_block_mask_and_the_fix_depends_on_who_sees_the_function() -> None:
    additive = "torch.where(q_idx >= kv_idx, 0.0, -float('inf'))"
    assert _findings(_mask(additive, call="create_mask(mask, 1, 1, 8, 8)"), "ESP025") == []
    [finding] = _findings(_mask(additive), "ESP025")
    assert "mask.dtype must be torch.bool" in finding.message and "`q_idx >= kv_idx`" in finding.message
    assert not finding.fixable and finding.edits is not None  # module level: an unsafe fix
    nested = """
    def build(n):
        def mask(b, h, q_idx, kv_idx):
            return ((q_idx >= kv_idx) & (kv_idx < 8)).float()
        return create_block_mask(mask, None, None, n, n)
    """
    [finding] = _findings(nested, "ESP025")
    assert finding.fixable
    passed_on = nested.replace(
        "return create_block_mask(mask, None, None, n, n)", "return create_block_mask(mask, None, None, n, n), mask"
    )
    assert not _findings(passed_on, "ESP025")[0].fixable


@pytest.mark.parametrize(
    "expr",
    [
        "(q_idx >= kv_idx).to(torch.bool)",
        "(q_idx >= kv_idx).bool()",
        "q_idx >= kv_idx",
        "torch.where(q_idx >= kv_idx, True, False)",
    ],
)
def test_esp025_booleans_are_fine(expr: str) -> None:
    assert _findings(_mask(expr), "ESP025") == []


def test_esp025_no_fix_without_an_exact_condition() -> None:
    [finding] = _findings(_mask("(q_idx - kv_idx).float()"), "ESP025")
    assert finding.edits is None and "Return a boolean tensor" in finding.message
    [inverse] = _findings(_mask("torch.where(q_idx >= kv_idx, -float('inf'), 0.0)"), "ESP025")
    assert inverse.edits is None


# --------------------------------------------------------------------------- ESP026
def _score(expr: str, call: str = "flex_attention(q, k, v, score_mod=s)") -> str:
    return f"def s(score, b, h, q_idx, kv_idx):\n    return {expr}\n\ndef attend(q, k, v, bm):\n    return {call}\n"


@pytest.mark.parametrize(
    ("expr", "mask"),
    [
        ("torch.where(q_idx >= kv_idx, score, -float('inf'))", "return q_idx >= kv_idx"),
        ("torch.where(q_idx >= kv_idx, score * 2, float('-inf'))", "return q_idx >= kv_idx"),
        ("score.masked_fill(q_idx < kv_idx, -1e9)", "return ~(q_idx < kv_idx)"),
        ("score.masked_fill(~(q_idx >= kv_idx), -torch.inf)", "return q_idx >= kv_idx"),
        ("score if q_idx >= kv_idx else -float('inf')", "return q_idx >= kv_idx"),
    ],
)
def test_esp026_reports_masking_and_names_the_mask_mod(expr: str, mask: str) -> None:
    [finding] = _findings(_score(expr), "ESP026")
    assert f"def mask_mod(b, h, q_idx, kv_idx): {mask}`" in finding.message
    assert "block_mask=create_block_mask(mask_mod" in finding.message and "every block" in finding.message


@pytest.mark.parametrize(
    ("expr", "call"),
    [
        ("torch.where(q_idx >= kv_idx, score, score + 1.0)", "flex_attention(q, k, v, score_mod=s)"),
        ("torch.where(score > 0, score, -float('inf'))", "flex_attention(q, k, v, score_mod=s)"),
        ("torch.where(q_idx >= kv_idx, score, -float('inf'))", "flex_attention(q, k, v, score_mod=s, block_mask=bm)"),
        ("torch.where(q_idx >= kv_idx, score, -1.0)", "flex_attention(q, k, v, score_mod=s)"),  # a penalty, not a mask
        ("torch.where(q_idx >= kv_idx, 0.0, -float('inf'))", "flex_attention(q, k, v, score_mod=s)"),  # ESP012
    ],
)
def test_esp026_near_misses(expr: str, call: str) -> None:
    assert _findings(_score(expr, call), "ESP026") == []


def test_new_rules_are_on_by_default() -> None:
    source = (HEADER + _mask("(q_idx >= kv_idx) & kv_idx < 100")).encode()
    codes = [f.code for f in lint_source(source, "m.py", Config(root=Path.cwd())).findings]
    assert codes == ["ESP017"]


def test_esp021_a_loop_variable_is_not_the_list_it_iterates() -> None:
    body = """
    ONE, TWO = torch.tensor([1, 2]), torch.tensor([3, 4])
    def mask(b, h, q_idx, kv_idx):
        keep = q_idx >= kv_idx
        for table in (ONE, TWO):  # `table` is a tensor, not the tuple
            keep = keep & (kv_idx < table[b])
        return keep
    create_block_mask(mask, 2, None, 8, 8)
    """
    assert _findings(body, "ESP021") == []
