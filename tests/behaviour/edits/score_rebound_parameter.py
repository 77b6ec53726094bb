"""A parameter rebound to a float64 tensor: in place the result keeps the score's dtype, out of place torch
promotes it to float64."""

# expect: declined ESP011: not a parameter the body leaves alone
from _observe import direct_calls
from torch.nn.attention.flex_attention import flex_attention


def biased(score, b, h, q_idx, kv_idx):
    q_idx = q_idx.double() / 3
    score += q_idx
    return score


def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=biased)


direct_calls(biased, score=True)
