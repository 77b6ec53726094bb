"""Recall within one module (issue 21): where a mask goes between its definition and the call (mask_flow.py),
functions known by their parameters (mask_shapes.py, signature_uses.py), names bound once to a literal
(constants.py), and which call runs its mask under plain vmap (call_sites.py)."""

from __future__ import annotations

import ast
import textwrap

import pytest
from conftest import lint_snippet

from esper_lint.analysis.call_sites import ParameterRead, parameter_read
from esper_lint.analysis.mask_shapes import signature_role
from esper_lint.analysis.model import MASK_MOD, SCORE_MOD, MaskUse, ModuleFacts
from esper_lint.analysis.module_facts import analyze_source
from esper_lint.core.apis import ApiTable

IMPORTS = (
    "import functools\nimport torch\n"
    "from torch.nn.attention.flex_attention import and_masks, create_block_mask, flex_attention, or_masks\n"
)


def _facts(source: str, imports: str = IMPORTS) -> ModuleFacts:
    text = imports + textwrap.dedent(source)
    return analyze_source(ast.parse(text), text, ApiTable())


def _uses(source: str) -> list[MaskUse]:
    return _facts(source).uses


def _names(use: MaskUse) -> list[str]:
    return sorted(f.name for f in use.functions)


def _codes(source: str, *extra: str) -> list[tuple[int, str]]:
    text = IMPORTS + textwrap.dedent(source)
    return [(f.span.line - IMPORTS.count("\n"), f.code) for f in lint_snippet(text, "ast", *extra)]


# --------------------------------------------------------------------------- loops, lists, lookups
def test_a_tuple_iterated_by_for_gives_every_element_with_the_loop_as_route() -> None:
    [use] = _uses("""
        def causal(b, h, q, kv):
            return q >= kv
        def window(b, h, q, kv):
            return q - kv < 8
        def build(n):
            for mask in (causal, window):
                create_block_mask(mask, None, None, n, n)
        """)
    assert _names(use) == ["causal", "window"] and use.functions_known
    assert set(use.routes.values()) == {"via the `for` loop at line 10"}


@pytest.mark.parametrize(
    ("loop", "known"),
    [
        ("for name, mask in [('c', causal), ('w', window)]:", True),
        ("for name, mask in {'c': causal, 'w': window}.items():", True),
        ("for i, mask in enumerate([causal, window]):", True),
        ("for mask, size in zip((causal, window), (8, 16)):", True),
        ("for mask in MASKS:", True),
        ("for mask in list(MASKS):", True),
    ],
)
def test_loops_unpack_tuples_dicts_enumerate_and_zip(loop: str, known: bool) -> None:
    [use] = _uses(f"""
        def causal(b, h, q, kv):
            return q >= kv
        def window(b, h, q, kv):
            return q - kv < 8
        MASKS = [causal, window]
        def build(n):
            {loop}
                create_block_mask(mask, None, None, n, n)
        """)
    assert _names(use) == ["causal", "window"] and use.functions_known is known


def test_a_loop_over_something_unknown_resolves_nothing() -> None:
    [use] = _uses("""
        def build(n, masks):
            for mask in masks:
                create_block_mask(mask, None, None, n, n)
        """)
    assert use.functions == [] and not use.functions_known


def test_comprehension_targets_resolve_like_loops() -> None:
    [use] = _uses("""
        def causal(b, h, q, kv):
            return q >= kv
        def build(n):
            return [create_block_mask(m, None, None, n, n) for m in (causal,)]
        """)
    assert _names(use) == ["causal"] and use.routes[id(use.functions[0])].startswith("via the comprehension")


def test_append_and_extend_then_and_masks_star() -> None:
    [use] = _uses("""
        def causal(b, h, q, kv):
            return q >= kv
        def window(b, h, q, kv):
            return q - kv < 8
        def sink(b, h, q, kv):
            return kv < 4
        def build(n, a, b):
            masks = [causal]
            if a:
                masks.append(window)
            if b:
                masks.extend([sink])
            return create_block_mask(and_masks(*masks), None, None, n, n)
        """)
    assert _names(use) == ["causal", "sink", "window"] and use.functions_known
    assert set(use.routes.values()) == {"via `and_masks(*masks)` at line 17"}


def test_a_list_passed_elsewhere_may_hold_more_than_was_found() -> None:
    [use] = _uses("""
        def causal(b, h, q, kv):
            return q >= kv
        def build(n, register):
            masks = [causal]
            register(masks)  # may append anything
            return create_block_mask(or_masks(*masks), None, None, n, n)
        """)
    assert _names(use) == ["causal"] and not use.functions_known


def test_a_dict_lookup_is_any_of_its_values_unless_the_dict_changes() -> None:
    source = """
        def causal(b, h, q, kv):
            return q >= kv
        def window(b, h, q, kv):
            return q - kv < 8
        MASKS = {"causal": causal, "window": window}
        def build(name, n):
            return create_block_mask(MASKS[name], None, None, n, n)
        """
    [use] = _uses(source)
    assert _names(use) == ["causal", "window"] and use.functions_known
    [changed] = _uses(source + 'MASKS["other"] = print\n')
    assert changed.functions == [] and not changed.functions_known


def test_every_branch_of_an_if_else_assignment() -> None:
    [use] = _uses("""
        def causal(b, h, q, kv):
            return q >= kv
        def window(b, h, q, kv):
            return q - kv < 8
        def build(n, flag):
            if flag:
                mask = causal
            else:
                mask = window
            return create_block_mask(mask, None, None, n, n)
        """)
    assert _names(use) == ["causal", "window"] and use.functions_known and use.routes == {}


# --------------------------------------------------------------------------- partial, methods, attributes
def test_partial_binds_leading_parameters_and_the_body_is_read_from_torchs_first_argument() -> None:
    [use] = _uses("""
        def windowed(window, b, h, q_idx, kv_idx):
            return (q_idx - kv_idx < window) & (b < 2)
        def build(n):
            return create_block_mask(functools.partial(windowed, 128), None, None, n, n)
        """)
    [fn] = use.functions
    assert fn.name == "windowed" and fn.bound_positional == 1 and fn.binds_values
    assert [a.arg for a in fn.called_as.args.args] == ["b", "h", "q_idx", "kv_idx"]
    assert parameter_read(fn, 0) is ParameterRead.DIRECT  # `b`, not `window`
    assert use.routes[id(fn)] == "via `functools.partial` at line 8"
    assert not use.mask_is_capture_free  # the partial carries its arguments: ESP005 must not assume purity


def test_partial_with_keywords_keeps_positions_and_rejects_a_keyword_for_a_torch_argument() -> None:
    [use] = _uses("""
        def mask(b, h, q_idx, kv_idx, window):
            return q_idx - kv_idx < window
        def build(n):
            create_block_mask(functools.partial(mask, window=8), None, None, n, n)
            create_block_mask(functools.partial(mask, h=0), None, None, n, n)
        """)[:1]
    [fn] = use.functions
    assert fn.bound_positional == 0 and fn.bound_keywords == frozenset({"window"})
    bad = _uses("""
        def mask(b, h, q_idx, kv_idx, window):
            return q_idx - kv_idx < window
        def build(n):
            return create_block_mask(functools.partial(mask, h=0), None, None, n, n)
        """)[0]
    assert bad.functions == [] and not bad.functions_known


def test_bound_method_counts_without_self_and_attributes_assigned_in_the_class() -> None:
    uses = _uses("""
        def causal(b, h, q, kv):
            return q >= kv
        class Attention:
            def __init__(self):
                self.mask_fn = causal
            def mmu_mask(self, b, h, q_idx, kv_idx):
                return h < 2
            def short(self, b, h, q):
                return q
            def build(self, n):
                create_block_mask(self.mask_fn, None, None, n, n)
                create_block_mask(self.mmu_mask, None, None, n, n)
                create_block_mask(self.short, None, None, n, n)
        """)
    by_attribute, by_method, wrong_arity = uses
    assert _names(by_attribute) == ["causal"] and not by_attribute.functions_known  # a subclass may replace it
    assert "via `self.mask_fn` (assigned at line 9)" in by_attribute.routes.values()
    [method] = by_method.functions
    assert method.bound_positional == 1 and parameter_read(method, 1) is ParameterRead.DIRECT
    assert parameter_read(method, 0) is ParameterRead.NEVER
    assert wrong_arity.functions == []  # `self.short(b, h, q, kv)` would not even run: not a mask we can read


def test_an_attribute_assigned_just_above_the_call_is_that_value() -> None:
    [first, second] = _uses("""
        def causal(b, h, q, kv):
            return q >= kv
        def window(b, h, q, kv):
            return q - kv < 8
        class Attention:
            def __init__(self, kind, n):
                if kind == "causal":
                    self.mask_mod = causal
                    self.block_mask = create_block_mask(self.mask_mod, None, None, n, n)
                else:
                    self.mask_mod = window
                    self.block_mask = create_block_mask(self.mask_mod, None, None, n, n)
        """)
    assert _names(first) == ["causal"] and _names(second) == ["window"]


def test_self_is_resolved_as_the_first_parameter_not_by_its_spelling() -> None:
    [use] = _uses("""
        def causal(b, h, q, kv):
            return q >= kv
        class Attention:
            def __init__(me):
                me.mask_fn = causal
            def build(this, n):
                return create_block_mask(this.mask_fn, None, None, n, n)
        def outside(self, n):  # not a method: `self` is any parameter
            return create_block_mask(self.mask_fn, None, None, n, n)
        """)[:1]
    assert _names(use) == ["causal"]
    outside = _uses("""
        def outside(self, n):
            return create_block_mask(self.mask_fn, None, None, n, n)
        """)[0]
    assert outside.functions == []


# --------------------------------------------------------------------------- constants, helpers
@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("HEADS = 1\ndef build(mask, n):\n    return create_block_mask(mask, None, HEADS, n, n)\n", 1),
        ("def build(mask, n):\n    H = 1\n    return create_block_mask(mask, None, H, n, n)\n", 1),
        ("def build(mask, n):\n    H: int = 1\n    return create_block_mask(mask, None, H=H, Q_LEN=n, KV_LEN=n)\n", 1),
    ],
)
def test_a_name_bound_once_to_a_literal_is_that_literal(source: str, value: int) -> None:
    [use] = _uses(source)
    assert use.arguments["H"].constant == value


@pytest.mark.parametrize(
    "source",
    [
        "HEADS = 1\ndef grow():\n    global HEADS\n    HEADS = 8\n"
        "def build(mask, n):\n    return create_block_mask(mask, None, HEADS, n, n)\n",
        "def build(mask, n, wide):\n    H = 1\n    if wide:\n        H = 8\n"
        "    return create_block_mask(mask, None, H, n, n)\n",
        "def build(mask, n):\n    H = 1\n    H += 1\n    return create_block_mask(mask, None, H, n, n)\n",
        "def build(mask, n):\n    H, B = 1, 2\n    return create_block_mask(mask, None, H, n, n)\n",
        "HEADS = 1\ndel HEADS\ndef build(mask, n):\n    return create_block_mask(mask, None, HEADS, n, n)\n",
    ],
)
def test_a_name_bound_more_than_once_is_no_constant(source: str) -> None:
    [use] = _uses(source)
    from esper_lint.analysis.model import NOT_CONSTANT

    assert use.arguments["H"].constant is NOT_CONSTANT


def test_compiled_flex_attention_returned_by_a_helper_is_flex_attention() -> None:
    [use] = _uses("""
        @functools.cache
        def compiled():
            return torch.compile(flex_attention, dynamic=False)
        def bias(score, b, h, q, kv):
            return score
        def attend(q, k, v):
            return compiled()(q, k, v, score_mod=bias)
        """)
    assert use.role == SCORE_MOD and _names(use) == ["bias"]


def test_a_block_mask_returned_by_a_private_helper_to_flex_attention_only() -> None:
    source = """
        def causal(b, h, q, kv):
            return q >= kv
        def {name}(n):
            return create_block_mask(causal, 4, 8, n, n)
        def attend(q, k, v):
            return flex_attention(q, k, v, block_mask={name}(q.shape[-2]))
        """
    [private] = _uses(source.format(name="_make"))
    [public] = _uses(source.format(name="make"))
    assert private.reach is not None and public.reach is not None
    assert (private.reach.attended, private.reach.out_of_sight) == (True, None)
    assert public.reach.out_of_sight == "the callers of `make` in other modules"  # other modules may call it
    indexed_source = textwrap.dedent(source.format(name="_make")) + "def other(n):\n    return _make(n)[0]\n"
    [indexed] = _uses(indexed_source)
    assert indexed.reach is not None and indexed.reach.indexed and indexed.reach.out_of_sight is not None


# --------------------------------------------------------------------------- plain vmap, per call
@pytest.mark.parametrize(
    ("call", "plain"),
    [
        ("create_block_mask(m, None, None, n, n)", True),
        ("create_block_mask(m, None, None, n, n, _compile=False)", True),
        ("create_block_mask(m, None, None, n, n, _compile=True)", False),
        ("torch.compile(create_block_mask)(m, None, None, n, n)", False),
        ("COMPILED(m, None, None, n, n)", False),
    ],
)
def test_plain_vmap_is_decided_by_the_call_not_the_module(call: str, plain: bool) -> None:
    [use] = [
        u
        for u in _uses(f"""
        COMPILED = torch.compile(create_block_mask)  # the module compiles something either way
        def m(b, h, q, kv):
            return q >= kv
        def build(n):
            return {call}
        """)
        if u.call_node is not None and u.call_node.lineno == 9
    ]
    assert use.plain_vmap is plain


def test_a_call_inside_a_compiled_function_is_traced_by_dynamo() -> None:
    decorated, by_name = _uses("""
        def m(b, h, q, kv):
            return q >= kv
        @torch.compile
        def build(n):
            return create_block_mask(m, None, None, n, n)
        def build2(n):
            return create_block_mask(m, None, None, n, n)
        fast = torch.compile(build2)
        """)
    assert not decorated.plain_vmap and not by_name.plain_vmap


# --------------------------------------------------------------------------- signatures
@pytest.mark.parametrize(
    ("signature", "in_class", "expected"),
    [
        ("b, h, q_idx, kv_idx", False, (MASK_MOD, 0)),
        ("batch_idx, head_idx, q_idx, kv_idx", False, (MASK_MOD, 0)),
        ("_, __, q, kv", False, (MASK_MOD, 0)),
        ("b, h, kv_idx, q_idx", False, (MASK_MOD, 0)),  # swapped: still a mask (ESP014 says so)
        ("score, b, h, q_idx, kv_idx", False, (SCORE_MOD, 0)),
        ("b, h, q_idx, kv_idx, window=3", False, (MASK_MOD, 0)),
        ("self, b, h, q_idx, kv_idx", True, (MASK_MOD, 1)),
        ("batch, head, token_q, token_kv", False, (MASK_MOD, 0)),
        ("b, h, query_idx, key_idx", False, (MASK_MOD, 0)),
        ("b, h, q_idx, physical_kv_idx", False, (MASK_MOD, 0)),
        ("window, b, h, q_idx, kv_idx", False, None),  # a partial's target, not a score_mod
        ("x, mask, q, k", False, None),
        ("position_bias, attention_mask, is_causal, query, key", False, None),
        ("b, h, m, n", False, None),
        ("self, b, h, q_idx", True, None),
        ("b, h, q_idx, kv_idx", True, None),  # a method without `self`-like binding: 3 after self
    ],
)
def test_signature_role(signature: str, in_class: bool, expected: tuple[str, int] | None) -> None:
    node = ast.parse(f"def f({signature}):\n    pass\n").body[0]
    assert isinstance(node, ast.FunctionDef)
    assert signature_role(node, in_class) == expected


def test_signature_uses_only_in_a_module_that_imports_flex_attention() -> None:
    source = """
        def causal(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx
        """
    facts = _facts(source)
    assert [(u.by_signature, u.role, _names(u)) for u in facts.signature_uses] == [(True, MASK_MOD, ["causal"])]
    assert facts.uses == []
    no_import = _facts(source, imports="from mylib import create_mask  # flex_attention, in words only\n")
    assert no_import.signature_uses == []


def test_signature_uses_leave_out_functions_a_call_reaches_and_plain_python_ones() -> None:
    facts = _facts("""
        def causal(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx
        def tested(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx
        assert tested(0, 0, 1, 0)
        @functools.cache
        def cached(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx
        create_block_mask(causal, None, None, 8, 8)
        """)
    assert facts.signature_uses == []


def test_functions_known_by_signature_reach_only_the_body_rules() -> None:
    # ESP007 (needs the call) never sees it; ESP008 does, without judging min/max (no call, no vmap known).
    codes = _codes("""
        def by_batch(b, h, q_idx, kv_idx):
            if b > 0:
                return min(q_idx, kv_idx) > 0
            return q_idx >= kv_idx
        """)
    assert codes == [(3, "ESP008")]


def test_routes_name_the_way_in_the_message() -> None:
    [finding] = [
        f
        for f in lint_snippet(
            IMPORTS
            + textwrap.dedent("""
            def window(b, h, q_idx, kv_idx):
                return q_idx >= kv_idx and q_idx - kv_idx < 8
            def build(n):
                masks = []
                masks.append(window)
                return create_block_mask(and_masks(*masks), None, None, n, n)
            """)
        )
        if f.code == "ESP008"
    ]
    assert "`window` (line 5, via `and_masks(*masks)` at line 10)" in finding.message, finding.message


def test_a_loop_over_a_captured_tensor_is_no_control_flow_but_range_of_a_parameter_is() -> None:
    codes = _codes("""
        segments = torch.zeros(2, 3, 2, dtype=torch.long)
        def by_segment(b, h, q_idx, kv_idx):
            keep = q_idx >= kv_idx
            for start, length in segments[b]:
                keep = keep & (q_idx >= start) & (q_idx < start + length)
            return keep
        def by_range(b, h, q_idx, kv_idx):
            keep = q_idx >= kv_idx
            for i in range(kv_idx):
                keep = keep & (q_idx != i)
            return keep
        def by_value(b, h, q_idx, kv_idx):
            d = q_idx - kv_idx
            for i in d:
                pass
            return d > 0
        create_block_mask(by_segment, 2, None, 128, 128)
        create_block_mask(by_range, None, None, 128, 128)
        create_block_mask(by_value, None, None, 128, 128)
        """)
    assert codes == [(10, "ESP008"), (15, "ESP008")]
    [message] = [
        f.message for f in lint_snippet(IMPORTS + "def m(b, h, q, kv):\n    for i in range(kv):\n        pass\n")
    ]
    assert "`for` over `range()` of a tensor" in message and "calling .item()" in message
    assert "a loop over a fixed Python bound" in message


def test_prints_in_a_score_mod_are_meant_in_flex_attentions_debug_mode() -> None:
    source = """
        def bias(score, b, h, q_idx, kv_idx):
            print(q_idx)
            return score + (q_idx - kv_idx)
        def attend(q, k, v):
            return flex_attention(q, k, v, score_mod=bias)
        """
    assert (3, "ESP022") in _codes(source)
    import_fa = "import torch.nn.attention.flex_attention as fa\nfa._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = True\n"
    assert (3, "ESP022") not in _codes(textwrap.dedent(source) + import_fa)
