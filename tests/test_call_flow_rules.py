"""ESP018-ESP020, ESP023, ESP027-ESP030 beyond their own examples: names resolved as Python resolves them,
the near-misses that must stay silent, and what the messages say."""

from __future__ import annotations

import pytest
from conftest import lint_snippet

HEADER = """
    import torch
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx
"""


def _codes(source: str, *codes: str) -> list[str]:
    return [f.code for f in lint_snippet(source, "ast", *codes) if f.code in codes]


def _message(source: str, code: str) -> str:
    [finding] = [f for f in lint_snippet(source, "ast", code) if f.code == code]
    return finding.message


# ----------------------------------------------------------------------------- resolution, not spelling
def test_kernel_options_of_an_aliased_flex_attention_are_checked() -> None:
    source = """
        from torch.nn.attention.flex_attention import flex_attention as attend

        def run(q, k, v):
            return attend(q, k, v, kernel_options={"BLOCK_m": 64})
    """
    assert _message(source, "ESP023").startswith("`BLOCK_m` is not a kernel option torch knows")


def test_kernel_options_bound_by_partial_are_checked() -> None:
    source = """
        import functools
        import torch
        from torch.nn.attention.flex_attention import flex_attention

        attention = torch.compile(functools.partial(flex_attention, kernel_options={"BLOCK_M": 64, "BLOCKM_N": 64}))
    """
    assert "Did you mean `BLOCK_N`?" in _message(source, "ESP023")


@pytest.mark.parametrize(
    "source",
    [
        # a function of the same name that is not torch's
        """
        def flex_attention(q, k, v, **kwargs):
            return q

        def run(q, k, v):
            return flex_attention(q, k, v, kernel_options={"BLOCK_m": 64}, return_lse=True)
        """,
        # torch's, shadowed by a parameter
        """
        from torch.nn.attention.flex_attention import flex_attention

        def run(q, k, v, flex_attention):
            return flex_attention(q, k, v, kernel_options={"BLOCK_m": 64}, return_lse=True)
        """,
    ],
    ids=["own-function", "parameter"],
)
def test_calls_that_are_not_torchs_flex_attention_are_not_checked(source: str) -> None:
    assert _codes(source, "ESP023", "ESP027") == []


def test_keywords_forwarded_through_kwargs_reach_flex_attention() -> None:
    source = """
        import torch
        from torch.nn.attention.flex_attention import flex_attention

        @torch.compile(fullgraph=True)
        def fused(query, key, value, mask, **kwargs):
            return flex_attention(query, key, value, block_mask=mask, **kwargs)

        def not_forwarding(query, key, value, **kwargs):
            return flex_attention(query, key, value)

        class Layer:  # names no API: visited for the call of `fused`
            def attend(self, q, k, v, m):
                out, lse = fused(q, k, v, m, return_lse=True, kernel_options={"num_warp": 2})
                fused(q, k, v, mask=m, enable_gqa=True)  # nothing deprecated
                not_forwarding(q, k, v, return_lse=True)
                return out, lse
    """
    findings = [f for f in lint_snippet(source, "ast", "ESP023", "ESP027") if f.code in ("ESP023", "ESP027")]
    assert [(f.code, f.span.line) for f in findings] == [("ESP027", 14), ("ESP023", 14)]
    assert "through `fused`'s `**kwargs`" in findings[0].message and not findings[0].fixable


def test_adjust_on_an_object_that_is_not_a_block_mask_is_not_reported() -> None:
    source = """
        from torch.nn.attention.flex_attention import create_block_mask

        class Cache:
            def _adjust(self, q_len, kv_len):
                return self

        def build(n):
            def mask(b, h, q_idx, kv_idx):
                return kv_idx < n
            cache = Cache()
            return cache._adjust(n, n), create_block_mask(mask, None, None, n, n)
    """
    assert _codes(source, "ESP018") == []


def test_adjust_through_a_variable_and_a_chained_adjust_is_reported() -> None:
    source = (
        HEADER
        + """
        def build(q, n):
            def recent(b, h, q_idx, kv_idx):
                return kv_idx > n - 128
            block_mask = create_block_mask(recent, None, None, n, n)
            half = block_mask._adjust(n // 2, n // 2)
            return half._adjust(q.shape[-2], q.shape[-2])
    """
    )
    assert _codes(source, "ESP018") == ["ESP018", "ESP018"]


# ----------------------------------------------------------------------------- precision: near-misses
@pytest.mark.parametrize(
    "options",
    [
        '{"BLOCK_M": 64, "BLOCK_N": 64, "PRESCALE_QK": True, "num_warps": 4, "num_stages": 2}',
        '{"fwd_BLOCK_M": 64, "bwd_BLOCK_M1": 32, "bwd_BLOCK_N2": 32, "WRITE_DQ": False}',
        '{"ROWS_GUARANTEED_SAFE": True, "BLOCKS_ARE_CONTIGUOUS": True, "USE_TMA": True, "BACKEND": "TRITON"}',
        '{"BACKEND": "FLASH", "FORCE_USE_FLEX_ATTENTION": False}',
        "dict(kpack=2, matrix_instr_nonkdim=16, waves_per_eu=1, PARTITION_SIZE=64)",
        "options_from_elsewhere",
    ],
    ids=["forward", "prefixed", "flags", "backend-with-false", "rocm-cpu", "unknown"],
)
def test_valid_kernel_options_are_silent(options: str) -> None:
    source = (
        HEADER
        + f"""
        def run(q, k, v, options_from_elsewhere):
            return flex_attention(q, k, v, kernel_options={options})
    """
    )
    assert _codes(source, "ESP023") == []


def test_return_aux_is_silent() -> None:
    source = """
        from torch.nn.attention.flex_attention import AuxRequest, flex_attention

        def run(q, k, v):
            out, aux = flex_attention(q, k, v, return_aux=AuxRequest(lse=True, max_scores=True))
            return out, aux.lse, aux.max_scores
    """
    assert _codes(source, "ESP027") == []


def test_slice_given_the_original_mask_mod_is_silent() -> None:
    source = (
        HEADER
        + """
        def decode(q, k, v, block_mask: BlockMask, i, offset):
            sliced = block_mask[:, :, i]
            sliced.mask_mod = lambda b, h, q_idx, kv_idx: block_mask.mask_mod(b, h, q_idx + offset, kv_idx)
            return flex_attention(q, k, v, block_mask=sliced)
    """
    )
    assert _codes(source, "ESP020") == []


def test_h_from_query_heads_is_silent() -> None:
    source = (
        HEADER
        + """
        WINDOWS = torch.tensor([128, 64, 32, 16])

        def window(b, h, q_idx, kv_idx):
            return q_idx - kv_idx < WINDOWS[h]

        def run(q, k, v, n_heads):
            for heads in (q.shape[1], q.size(-3), n_heads):
                block_mask = create_block_mask(window, None, heads, q.shape[-2], k.shape[-2])
                flex_attention(q, k, v, block_mask=block_mask, enable_gqa=True)
    """
    )
    assert _codes(source, "ESP019") == []


def test_block_masks_built_per_forward_from_the_input_are_silent_for_esp028_esp029() -> None:
    source = (
        HEADER
        + """
        class Attention(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.cache = {}

            def forward(self, q, k, v):
                key = (q.shape[0], q.shape[-2])
                if key not in self.cache:
                    self.cache[key] = create_block_mask(causal, q.shape[0], None, q.shape[-2], k.shape[-2])
                return flex_attention(q, k, v, block_mask=self.cache[key])
    """
    )
    assert _codes(source, "ESP028", "ESP029") == []


def test_a_stored_block_mask_only_inspected_in_forward_is_silent() -> None:
    source = (
        HEADER
        + """
        class Attention(torch.nn.Module):
            def __init__(self, batch, n):
                super().__init__()
                self.block_mask = create_block_mask(causal, batch, None, n, n)

            def forward(self, q):
                return q.shape[-2] <= self.block_mask.shape[-2]
    """
    )
    assert _codes(source, "ESP028", "ESP029") == []


def test_eager_create_block_mask_is_silent_when_the_module_compiles_something_else() -> None:
    source = (
        HEADER
        + """
        model_step = torch.compile(lambda x: x)

        def run(q, k, v):
            return flex_attention(q, k, v, block_mask=create_block_mask(causal, None, None, q.shape[-2], k.shape[-2]))
    """
    )
    assert _codes(source, "ESP030") == []
    assert _codes(source.replace("model_step = torch.compile(lambda x: x)", "# compiled elsewhere"), "ESP030") == [
        "ESP030"
    ]


# ----------------------------------------------------------------------------- messages
def test_messages_say_what_happens_and_what_to_do() -> None:
    adjust = _message(
        HEADER
        + """
        def build(n):
            def tail(b, h, q_idx, kv_idx):
                return kv_idx >= n - 8
            return create_block_mask(tail, None, None, n, n)._adjust(8, 8)
        """,
        "ESP018",
    )
    assert "(`n`)" in adjust and "silently wrong output" in adjust and "Build a BlockMask for each length" in adjust
    sliced = _message(
        HEADER
        + """
        def decode(q, k, v, block_mask: BlockMask):
            return flex_attention(q, k, v, block_mask=block_mask[0])
        """,
        "ESP020",
    )
    assert "Cannot use mask_mod from a sliced BlockMask" in sliced and "sliced.mask_mod = block_mask.mask_mod" in sliced
    typo = _message(HEADER + '\n    flex_attention(1, 2, 3, kernel_options={"num_warp": 2})\n', "ESP023")
    assert "ignores it without a warning" in typo and "Did you mean `num_warps`?" in typo
    lse = _message(HEADER + "\n    out, lse = flex_attention(1, 2, 3, return_lse=True)\n", "ESP027")
    assert "FutureWarning" in lse and "return_aux=AuxRequest(lse=True)" in lse and "--fix" in lse
