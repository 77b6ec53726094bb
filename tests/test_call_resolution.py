"""What "a mask function / score_mod" resolves to (the analysis): the facts ESP007-ESP016 decide on."""

from __future__ import annotations

import ast
import textwrap

from conftest import lint_snippet

from esper_lint.analysis.call_sites import ParameterRead, parameter_read
from esper_lint.analysis.model import MASK_MOD, SCORE_MOD, MaskUse, ModuleFacts
from esper_lint.analysis.module_facts import analyze_source
from esper_lint.core.apis import ApiTable

IMPORTS = "from torch.nn.attention.flex_attention import and_masks, create_block_mask, flex_attention\n"


def _facts(source: str) -> ModuleFacts:
    text = textwrap.dedent(source)
    return analyze_source(ast.parse(text), text, ApiTable())


def _uses(source: str) -> list[MaskUse]:
    return _facts(IMPORTS + textwrap.dedent(source)).uses


def test_score_mod_positional_and_keyword_have_the_score_mod_role() -> None:
    uses = _uses("""
        def bias(score, b, h, q, kv):
            return score + (q - kv)

        def attend(q, k, v):
            flex_attention(q, k, v, bias)
            return flex_attention(q, k, v, score_mod=lambda s, b, h, qi, kv: s)
        """)
    assert [(u.role, [f.name for f in u.functions]) for u in uses] == [
        (SCORE_MOD, ["bias"]),
        (SCORE_MOD, ["<lambda>"]),
    ]
    assert all(isinstance(u.functions[0].ast_node, (ast.FunctionDef, ast.Lambda)) for u in uses)


def test_old_rules_keep_their_scope_a_score_mod_lambda_is_not_esp002() -> None:
    source = IMPORTS + "def attend(q, k, v):\n    return flex_attention(q, k, v, lambda s, b, h, qi, kv: s)\n"
    assert lint_snippet(source, "ast") == []


def test_module_level_function_is_resolved_with_its_ast_node() -> None:
    [use] = _uses("""
        def causal(b, h, q, kv):
            return q >= kv

        mask = create_block_mask(causal, None, None, 8, 8)
        """)
    [fn] = use.functions
    assert use.role == MASK_MOD and fn.name == "causal" and fn.enclosing is None
    assert isinstance(fn.ast_node, ast.FunctionDef) and fn.ast_node.name == "causal"


def test_factory_call_resolves_to_the_function_it_returns() -> None:
    [use] = _uses("""
        def padding_factory(lengths):
            def padding(b, h, q, kv):
                return kv < lengths[b]
            return padding

        def build(lengths, n):
            return create_block_mask(and_masks(padding_factory(lengths), lambda b, h, q, kv: q >= kv), None, None, n, n)
        """)
    assert [(f.name, f.factory) for f in use.functions] == [("padding", "padding_factory"), ("<lambda>", None)]
    assert use.functions_known
    assert [f.name for f in use.direct_functions] == ["<lambda>"]


def test_factory_with_an_unknown_return_is_not_known() -> None:
    [use] = _uses("""
        def factory(kind):
            if kind:
                return lookup[kind]
            def causal(b, h, q, kv):
                return q >= kv
            return causal

        m = create_block_mask(factory(1), None, None, 8, 8)
        """)
    assert [f.name for f in use.functions] == ["causal"] and not use.functions_known


def test_pass_through_helper_is_an_api_with_the_inner_calls_arguments() -> None:
    uses = _uses("""
        def causal(b, h, q, kv):
            return q >= kv

        def make(mask_mod, n):
            return create_block_mask(mask_mod, None, None, n, n)

        def unrelated(n):  # mentions no API: visited only because it calls the helper
            return make(causal, n)
        """)
    helper_use = next(u for u in uses if u.via_helper == "make")
    assert [f.name for f in helper_use.functions] == ["causal"]
    assert helper_use.arguments["B"].constant is None and helper_use.arguments["B"].span.line == 7


def test_starred_argument_after_the_mask_does_not_hide_the_call() -> None:
    [use] = _uses("""
        def build(shape):
            def causal(b, h, q, kv):
                return q >= kv
            return create_block_mask(causal, *shape)
        """)
    assert [f.name for f in use.functions] == ["causal"]
    assert set(use.arguments) == {"mask_mod"}  # sizes after `*shape` are unknown


def test_arguments_are_bound_by_parameter_name() -> None:
    [use] = _uses("m = create_block_mask(f, 2, H=None, Q_LEN=8, KV_LEN=8, _compile=True)\n")
    assert use.arguments["B"].constant == 2 and use.arguments["H"].constant is None
    assert use.arguments["_compile"].keyword_span is not None and use.arguments["_compile"].removal_span is not None


def test_attention_calls_know_block_masks_in_the_score_mod_slot() -> None:
    facts = _facts(
        IMPORTS
        + textwrap.dedent("""
        import torch

        def attend(q, k, v, sm):
            bm = create_block_mask(sm, None, None, 8, 8)
            flex_attention(q, k, v, bm)
            torch.compile(flex_attention)(q, k, v, sm)
        """)
    )
    first, second = facts.attention_calls
    assert first.score_mod_is_block_mask and first.score_mod_to_keyword
    assert not second.score_mod_is_block_mask and second.compiled is True


def _read(source: str, dim: int) -> ParameterRead:
    [use] = _uses(source)
    [fn] = use.functions
    return parameter_read(fn, dim)


def test_parameter_read_follows_same_module_functions() -> None:
    source = """
        def same_document(b, h, q, kv):
            return DOCS[b, q] == DOCS[b, kv]

        def causal(b, h, q, kv):
            return q >= kv

        def mask(b, h, q, kv):
            return same_document(b, h, q, kv) & causal(b, h, q, kv)

        m = create_block_mask(mask, None, None, 8, 8)
        """
    assert _read(source, 0) is ParameterRead.DIRECT  # b reaches same_document, which indexes with it
    assert _read(source, 1) is ParameterRead.NEVER  # h reaches two functions that never read it


_CALL = "m = create_block_mask(mask, 2, 2, 8, 8)\n"


def test_parameter_read_is_unsure_about_unknown_keyword_and_recursive_calls() -> None:
    unknown = "from helpers import doc\ndef mask(b, h, q, kv):\n    return doc(b, h, q, kv)\n" + _CALL
    assert _read(unknown, 0) is ParameterRead.PASSED
    keyword = "def f(b, q):\n    return q > 0\ndef mask(b, h, q, kv):\n    return f(b=b, q=q)\n" + _CALL
    assert _read(keyword, 0) is ParameterRead.PASSED
    recursive = "def mask(b, h, q, kv):\n    return mask(b, h, q, kv)\n" + _CALL
    assert _read(recursive, 0) is ParameterRead.PASSED  # depth-limited: never proven NEVER
    rebound = "def mask(b, h, q, kv):\n    b = 0\n    return q >= kv\n" + _CALL
    assert _read(rebound, 0) is ParameterRead.UNKNOWN


# ----------------------------------------------------------------- class attributes (class_attributes.py)
LINGBOT = """
import torch
import torch.nn as nn


class FlexAttnFunc(nn.Module):
    compiled_create_block_mask = None

    @classmethod
    def _ensure_compiled(cls):
        if cls.compiled_create_block_mask is None:
            from torch.nn.attention.flex_attention import create_block_mask

            cls.compiled_create_block_mask = torch.compile(create_block_mask)

    @staticmethod
    def init_mask(mask_mod, n, device):
        FlexAttnFunc._ensure_compiled()
        return FlexAttnFunc.compiled_create_block_mask(mask_mod, 1, 1, n, n, device=device, _compile=True)

    @classmethod
    def through_cls(cls, mask_mod, n):
        return cls.compiled_create_block_mask(mask_mod, 1, 1, n, n, _compile=True)

    def through_self(self, mask_mod, n):
        return self.compiled_create_block_mask(mask_mod, 1, 1, n, n, _compile=True)
"""


def _class_attribute_uses(source: str) -> list[MaskUse]:
    return [u for u in _facts(source).uses if u.api.endswith("create_block_mask")]


def test_class_attribute_compiled_in_a_classmethod_is_the_compiled_api() -> None:
    uses = _class_attribute_uses(LINGBOT)
    assert len(uses) == 3  # `FlexAttnFunc.`, `cls.` and `self.`
    for use in uses:
        assert use.api == "torch.nn.attention.flex_attention.create_block_mask"
        assert use.callee_compiled and use.compiled_alias_line is None and not use.callee_is_api
    flags = [i for i, line in enumerate(LINGBOT.splitlines(), 1) if "_compile=True" in line]
    findings = lint_snippet(LINGBOT)
    assert [(f.code, f.span.line, f.fixable) for f in findings] == [("ESP010", line, False) for line in flags]
    assert all("may already be `torch.compile(...)`: then delete `_compile` by hand" in f.message for f in findings)


def test_class_attribute_also_assigned_something_else_is_unknown() -> None:
    source = LINGBOT + "\n\ndef reset(fn):\n    FlexAttnFunc.compiled_create_block_mask = fn\n"
    assert _class_attribute_uses(source) == []
    in_the_body = LINGBOT.replace("compiled_create_block_mask = None", "compiled_create_block_mask = len")
    assert _class_attribute_uses(in_the_body) == []


def test_class_attribute_written_any_other_way_is_unknown() -> None:
    for extra in (
        'setattr(FlexAttnFunc, "compiled_create_block_mask", print)',
        "setattr(FlexAttnFunc, NAME, print)",
        "del FlexAttnFunc.compiled_create_block_mask",
        "FlexAttnFunc.compiled_create_block_mask, other = print, 1",
        "other = object()\nother.compiled_create_block_mask = print",
    ):
        assert _class_attribute_uses(LINGBOT + "\n" + extra + "\n") == [], extra


def test_class_attribute_of_a_subclass_is_unknown_through_cls_and_self_only() -> None:
    source = LINGBOT + "\n\nclass Other(FlexAttnFunc):\n    compiled_create_block_mask = print\n"
    [use] = _class_attribute_uses(source)  # `FlexAttnFunc.compiled_create_block_mask` is the class's own
    assert use.caller == "FlexAttnFunc.init_mask"


def test_class_attribute_of_a_class_from_another_module_is_unknown() -> None:
    source = """
        from models import FlexAttnFunc

        class Local(FlexAttnFunc):
            def build(self, mask_mod, n):
                return FlexAttnFunc.compiled_create_block_mask(mask_mod, 1, 1, n, n, _compile=True)

            def build_self(self, mask_mod, n):
                return self.compiled_create_block_mask(mask_mod, 1, 1, n, n, _compile=True)
        """
    assert _class_attribute_uses(IMPORTS + textwrap.dedent(source)) == []


def test_class_attribute_that_only_looks_like_the_api_is_unknown() -> None:
    other_library = LINGBOT.replace("from torch.nn.attention.flex_attention import", "from mylib.masks import")
    assert _class_attribute_uses(other_library) == []
    not_torch = LINGBOT.replace("import torch\n", "import mylib as torch\n", 1)
    assert _class_attribute_uses(not_torch) == []
    shadowed = LINGBOT.replace(
        "            cls.compiled_create_block_mask",
        "            def create_block_mask(*args, **kwargs):\n                return None\n\n"
        "            cls.compiled_create_block_mask",
    )
    assert _class_attribute_uses(shadowed) == []


def test_class_attribute_compiled_in_the_class_body_is_seen_from_a_method_that_does_not_spell_the_api() -> None:
    source = """
        import torch
        from torch.nn.attention.flex_attention import create_block_mask

        class Masks:
            compiled = torch.compile(create_block_mask)

            @staticmethod
            def build(mask_mod, n):
                return Masks.compiled(mask_mod, 1, 1, n, n, _compile=True)
        """
    [use] = _class_attribute_uses(textwrap.dedent(source))
    assert use.caller == "Masks.build" and use.callee_compiled and use.compiled_alias_line is None
