"""Nested functions in tests: the hoisted names must not start with `test` (pytest would collect them)."""

# expect: fixed
from torch.nn.attention.flex_attention import create_block_mask


def test_sandwich_matches_reference():
    def test_causal(b, h, q, kv):
        return q >= kv

    first = create_block_mask(test_causal, None, None, 3, 3)
    second = create_block_mask(lambda b, h, q, kv: q <= kv, None, None, 3, 3)
    assert first.dense != second.dense
    return first, second


print(test_sandwich_matches_reference())
