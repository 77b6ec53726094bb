"""Each rule's own VALID/INVALID examples (Fixit style), and what its messages say."""

from __future__ import annotations

import pytest
from conftest import BACKENDS, lint_snippet

from esper_lint.rules import ALL_RULES, RULES_BY_CODE, Rule

VALID = [(rule, i, src) for rule in ALL_RULES for i, src in enumerate(rule.VALID)]
INVALID = [(rule, i, src) for rule in ALL_RULES for i, src in enumerate(rule.INVALID)]


def _id(case: tuple[type[Rule], int, str]) -> str:
    return f"{case[0].code}-{case[1]}"


def test_every_rule_has_examples_both_ways() -> None:
    for rule in ALL_RULES:
        assert rule.VALID and rule.INVALID, f"{rule.code} needs VALID and INVALID examples"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", VALID, ids=_id)
def test_valid_example_has_no_finding_of_its_rule(case: tuple[type[Rule], int, str], backend: str) -> None:
    rule, _, source = case
    codes = [f.code for f in lint_snippet(source, backend, rule.code)]
    assert rule.code not in codes


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", INVALID, ids=_id)
def test_invalid_example_has_a_finding_of_its_rule(case: tuple[type[Rule], int, str], backend: str) -> None:
    rule, _, source = case
    codes = [f.code for f in lint_snippet(source, backend, rule.code)]
    assert rule.code in codes


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_documented_example_is_flagged_and_its_alternative_is_not(rule: type[Rule]) -> None:
    if rule.code == "ESP006":  # the "use instead" of ESP006 is a suppression comment, not code
        assert "noqa: ESP006" in rule.use_instead
        return
    assert rule.code in [f.code for f in lint_snippet(rule.example, "ast", rule.code)]
    assert rule.code not in [f.code for f in lint_snippet(rule.use_instead, "ast", rule.code)]


def test_codes_and_names_are_unique_and_well_formed() -> None:
    assert len({r.code for r in ALL_RULES}) == len(ALL_RULES) == len({r.name for r in ALL_RULES})
    for rule in ALL_RULES:
        assert rule.code.startswith("ESP") and rule.code[3:].isdigit()
        assert rule.name == rule.name.lower() and " " not in rule.name
    assert not RULES_BY_CODE["ESP006"].default_enabled
    assert all(RULES_BY_CODE[c].default_enabled for c in ("ESP001", "ESP002", "ESP003", "ESP004", "ESP005"))


NESTED = """
    from torch.nn.attention.flex_attention import create_block_mask

    class Seed:
        def _mask(self, n):
            def causal(b, h, q_idx, kv_idx):
                return q_idx >= kv_idx
            return create_block_mask(causal, None, None, n, n)
"""


def _only(source: str, code: str) -> str:
    [finding] = [f for f in lint_snippet(source, "ast", code) if f.code == code]
    return finding.message


def test_esp001_message_names_function_and_place_and_says_what_to_do() -> None:
    message = _only(NESTED, "ESP001")
    assert "`causal` (line 6 in `Seed._mask`)" in message
    assert "re-created on every call" in message and "mask_mod" in message
    assert "Move it to module level" in message and "--fix" in message


def test_esp001_unfixable_says_why() -> None:
    source = """
        import functools
        from torch.nn.attention.flex_attention import create_block_mask

        def build(n, size):
            @functools.lru_cache(maxsize=size)
            def causal(b, h, q_idx, kv_idx):
                return q_idx >= kv_idx
            return create_block_mask(causal, None, None, n, n)
    """
    [finding] = lint_snippet(source, "ast")
    assert not finding.fixable
    assert "by hand" in finding.message and "`size`" in finding.message


def test_create_mask_message_does_not_claim_a_blockmask_keeps_it() -> None:
    source = NESTED.replace("create_block_mask", "create_mask")
    message = _only(source, "ESP001")
    assert "BlockMask" not in message and "re-created on every call" in message


def test_esp002_message() -> None:
    source = """
        from torch.nn.attention.flex_attention import create_block_mask

        def build(n):
            return create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)
    """
    message = _only(source, "ESP002")
    assert message.startswith("Mask function lambda (line 5 in `build`) is a new lambda on every call")
    assert "module level" in message


def test_esp003_message_names_the_captured_parameter_and_the_cycle() -> None:
    source = NESTED.replace("q_idx >= kv_idx", "q_idx - kv_idx < self.window")
    message = _only(source, "ESP003")
    assert "captures `self`" in message and "reference cycle" in message and "factory" in message


def test_esp004_message_names_the_variable_and_suggests_a_default() -> None:
    source = """
        from torch.nn.attention.flex_attention import create_block_mask

        def build(windows, n):
            return [create_block_mask(lambda b, h, q, kv: q - kv < w, None, None, n, n) for w in windows]
    """
    message = _only(source, "ESP004")
    assert "loop variable `w`" in message and "(w=w)" in message and "last value" in message


def test_esp005_message_names_the_method() -> None:
    source = """
        from torch import nn
        from torch.nn.attention.flex_attention import create_block_mask

        def causal(b, h, q, kv):
            return q >= kv

        class Attention(nn.Module):
            def forward(self, q):
                return create_block_mask(causal, None, None, q.shape[-2], q.shape[-2])
    """
    message = _only(source, "ESP005")
    assert "(Attention.forward)" in message and "cache" in message


def test_esp006_lists_every_captured_local() -> None:
    source = """
        from torch.nn.attention.flex_attention import create_block_mask

        def build(document_ids, offset, n):
            def same_doc(b, h, q, kv):
                return document_ids[q + offset] == document_ids[kv]
            return create_block_mask(same_doc, None, None, n, n)
    """
    assert "`document_ids`, `offset`" in _only(source, "ESP006")


@pytest.mark.parametrize("code", ["ESP003", "ESP004", "ESP006"])
def test_capture_rules_do_not_apply_to_create_mask(code: str) -> None:
    """create_mask evaluates the mask once and returns a tensor: nothing keeps the closure."""
    source = """
        from torch.nn.attention.flex_attention import create_mask

        class M:
            def dense(self, windows, n, limit):
                return [create_mask(lambda b, h, q, kv: q - kv < w + self.x + limit, None, None, n, n) for w in windows]
    """
    assert lint_snippet(source, "ast", code) == []
    assert code in [f.code for f in lint_snippet(source.replace("create_mask", "create_block_mask"), "ast", code)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_builtins_in_a_mask_body_do_not_hang_and_are_not_captures(backend: str) -> None:
    source = """
        from torch.nn.attention.flex_attention import create_block_mask

        def build(n):
            def causal(b, h, q, kv):
                return q >= kv + len(range(abs(q)))
            return create_block_mask(causal, None, None, n, n)
    """
    assert [f.code for f in lint_snippet(source, backend, "ESP006")] == ["ESP001"]
