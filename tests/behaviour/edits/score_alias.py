"""A name that holds the score before `score += x` sees the update; after `score = score + x` it would hold
the old tensor."""

# expect: declined ESP011: is read on line
from _observe import direct_calls, under_flex_attention
from torch.nn.attention.flex_attention import flex_attention


def biased(score, b, h, q_idx, kv_idx):
    original = score
    score += q_idx - kv_idx
    return original * 2


def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=biased)


direct_calls(biased, score=True)
under_flex_attention(biased)
