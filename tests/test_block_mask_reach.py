"""Where a BlockMask goes, followed forward from its `create_block_mask` call (analysis/block_mask_reach.py), and
the sizes code visibly gives tensors (analysis/visible_sizes.py): the facts ESP009 and ESP007 decide on."""

from __future__ import annotations

import ast
import textwrap

import pytest

from esper_lint.analysis.model import BlockMaskReach, MaskUse
from esper_lint.analysis.module_facts import analyze_source
from esper_lint.core.apis import ApiTable

IMPORTS = (
    "import torch\n"
    "from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention\n\n"
    "def causal(b, h, q_idx, kv_idx):\n"
    "    return q_idx >= kv_idx\n\n"
)
BOTH = frozenset({0, 1})
NONE: frozenset[int] = frozenset()


def _uses(source: str) -> list[MaskUse]:
    text = IMPORTS + textwrap.dedent(source)
    return analyze_source(ast.parse(text), text, ApiTable()).uses


def _reach(source: str) -> BlockMaskReach:
    """The reach of the one `create_block_mask` call given a B or H."""
    [reach] = [u.reach for u in _uses(source) if u.reach is not None]
    return reach


def test_a_local_read_only_by_flex_attention_is_attended_and_its_layout_unused() -> None:
    reach = _reach("""
        def attend(q, k, v, batch):
            bm = create_block_mask(causal, batch, None, 128, 128)
            return flex_attention(q, k, v, block_mask=bm)
        """)
    assert (reach.layout_used, reach.out_of_sight, reach.indexed, reach.attended) == (NONE, None, False, True)


def test_no_reach_without_sizes() -> None:
    uses = _uses("bm = create_block_mask(causal, None, None, 128, 128)\n")
    assert [u.reach for u in uses] == [None]


@pytest.mark.parametrize(
    ("use", "used"),
    [
        ("bm[0]", NONE),  # batch 0: a broadcast BlockMask has it too
        ("bm[:, :, rows]", NONE),  # every batch and head: the slice keeps the broadcast
        ("bm[:, h]", frozenset({1})),
        ("bm[1:]", frozenset({0})),
        ("bm[i]", BOTH),  # a variable may hold a tuple: both positions may be indexed
        ("bm[..., i]", BOTH),
        ("bm[0][h]", BOTH),  # after an int index the positions shift
        ("bm.kv_num_blocks[0, 0]", NONE),
        ("bm.kv_num_blocks[0]", frozenset({1})),  # the tensor keeps the head dimension
        ("bm.kv_indices[b, h]", BOTH),
        ("bm.full_q_indices.shape", BOTH),
        ("bm.shape", BOTH),
        ("bm.to_dense()", BOTH),
        ("bm.numel()", BOTH),
        ("getattr(bm, name)", BOTH),
        ("bm.sparsity()", NONE),
        ("bm.mask_mod", NONE),
        ("print(bm)", NONE),
        ("bm.to('cuda')[:, h]", frozenset({1})),  # `.to()` keeps the layout
        ("for part in bm: pass", BOTH),
    ],
)
def test_what_counts_as_using_the_layout(use: str, used: frozenset[int]) -> None:
    reach = _reach(f"""
        def attend(q, k, v, batch, heads, rows, h, i, b, name):
            bm = create_block_mask(causal, batch, heads, 128, 128)
            {use}
            return flex_attention(q, k, v, block_mask=bm)
        """)
    assert reach.layout_used == used
    assert reach.indexed == ("[" in use and "shape" not in use)


def test_self_attribute_read_in_forward_and_subclasses_but_not_unrelated_classes() -> None:
    reach = _reach("""
        class Attention(torch.nn.Module):
            def __init__(self, batch, n):
                super().__init__()
                self.block_mask = create_block_mask(causal, batch, None, n, n)

            def forward(self, q, k, v):
                return flex_attention(q, k, v, block_mask=self.block_mask)

        class Other:
            def lengths(self, i):
                return self.block_mask.kv_num_blocks[i]  # another class's attribute of the same name
        """)
    assert (reach.layout_used, reach.attended, reach.out_of_sight) == (NONE, True, None)
    subclass = _reach("""
        class Attention(torch.nn.Module):
            def __init__(self, batch, n):
                super().__init__()
                self.block_mask = create_block_mask(causal, batch, None, n, n)

        class Paged(Attention):
            def lengths(self, i):
                return self.block_mask.kv_num_blocks[i]
        """)
    assert subclass.layout_used == BOTH


def test_returned_to_this_module_s_callers_through_tuples_and_loops() -> None:
    reach = _reach("""
        def _build(batch, n):
            return create_block_mask(causal, batch, None, n, n), n

        def attend(q, k, v):
            bm, n = _build(q.shape[0], q.shape[-2])
            cases = [("causal", bm), ("none", None)]
            for name, mask in cases:
                flex_attention(q, k, v, block_mask=mask)
            return name[0]  # another element of the tuple: not the BlockMask
        """)
    assert (reach.layout_used, reach.attended, reach.out_of_sight) == (NONE, True, None)


def test_a_public_function_s_other_callers_are_out_of_sight() -> None:
    reach = _reach("""
        def make_block_mask(batch, n):
            return create_block_mask(causal, batch, None, n, n)
        """)
    assert (reach.out_of_sight, reach.attended) == ("the callers of `make_block_mask` in other modules", False)


def test_containers_by_key_append_and_items() -> None:
    reach = _reach("""
        def attend(q, k, v, batch):
            masks = {"causal": create_block_mask(causal, batch, None, 128, 128), "other": None}
            extra = []
            extra.append(masks["causal"])
            masks["other"].kv_num_blocks[batch]  # another key
            for name, bm in masks.items():
                flex_attention(q, k, v, block_mask=bm)
            return [flex_attention(q, k, v, block_mask=m) for m in extra]
        """)
    assert (reach.layout_used, reach.attended) == (NONE, True)


def test_parameters_of_this_module_s_functions_compiled_or_not() -> None:
    reach = _reach("""
        def forward(q, k, v, bm):
            return flex_attention(q, k, v, block_mask=bm)

        class Runner:
            def __init__(self, bm):
                self.lengths = bm.kv_num_blocks[:, 0]

        def attend(q, k, v, batch):
            bm = create_block_mask(causal, batch, None, 128, 128)
            compiled = torch.compile(forward, fullgraph=True)
            Runner(bm)
            return compiled(q, k, v, bm)
        """)
    # The batch dimension kept whole by `[:, 0]` in Runner.__init__ (a class the relevance filter skipped).
    assert (reach.layout_used, reach.attended) == (frozenset({0}), True)


def test_isinstance_rules_out_a_tensor_branch() -> None:
    reach = _reach("""
        def _build(use_flex, batch, n):
            if use_flex:
                return create_block_mask(causal, batch, None, n, n)
            return torch.ones(batch, 1, n, n)

        def run(model, x, use_flex, n):
            mask = _build(use_flex, x.shape[0], n)
            for i in range(x.shape[0]):
                if isinstance(mask, torch.Tensor) and mask.dim() == 4:
                    row = mask[i : i + 1]
                else:
                    row = mask
                model(x[i : i + 1], attention_mask=row)
        """)
    assert (reach.layout_used, reach.attended, reach.indexed) == (NONE, True, False)
    assert reach.out_of_sight == "`model` at line 20"


def test_a_call_we_cannot_see_into_is_attended_only_through_a_mask_keyword() -> None:
    passed = _reach("""
        from kernels import flash, export

        def attend(q, k, v, batch):
            bm = create_block_mask(causal, batch, None, 128, 128)
            export(bm)
            return flash(q, k, v, block_mask=bm)
        """)
    assert (passed.out_of_sight, passed.attended) == ("`export` at line 12", True)
    exported = _reach("""
        from kernels import export

        def attend(q, k, v, batch):
            bm = create_block_mask(causal, batch, None, 128, 128)
            return export(bm)
        """)
    assert exported.attended is False


def test_flex_attention_compiled_onto_self_counts_as_flex_attention() -> None:
    reach = _reach("""
        class Attention(torch.nn.Module):
            def __init__(self, batch, n):
                super().__init__()
                self.attend = torch.compile(flex_attention)
                self.block_mask = create_block_mask(causal, batch, None, n, n)

            def forward(self, q, k, v):
                return self.attend(q, k, v, block_mask=self.block_mask)
        """)
    assert (reach.attended, reach.out_of_sight) == (True, None)


def test_larger_sizes_from_queries_and_indexed_captures() -> None:
    [use] = [
        u
        for u in _uses("""
        LENGTHS = torch.tensor([64, 128, 256])

        def padding(b, h, q_idx, kv_idx):
            return kv_idx < LENGTHS[b]

        def attend():
            B, H, S, D = 1, 8, 128, 16
            q = torch.randn(B, H, S, D).to("cpu")
            bm = create_block_mask(padding, 1, 1, S, S)
            return flex_attention(q, q, q, block_mask=bm)
        """)
        if u.reach is not None
    ]
    assert use.reach is not None
    batch, heads = use.reach.larger
    assert batch is not None and (batch.what, batch.size, batch.query) == ("LENGTHS", 3, False)
    assert heads is not None and (heads.what, heads.size, heads.query) == ("q", 8, True)


def test_no_larger_size_where_the_code_shows_one() -> None:
    reach = _reach("""
        TOPK = torch.tensor([[[[0, 2], [1, 3]]]])

        def tiles(b, h, q_idx, kv_idx):
            return TOPK[b, h, q_idx // 2, 0] == kv_idx // 2

        def attend(x):
            q = x.view(1, 1, 4, 16)
            return flex_attention(q, q, q, block_mask=create_block_mask(tiles, 1, 1, 4, 8))
        """)
    assert reach.larger == (None, None)
