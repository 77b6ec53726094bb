"""A caller that holds the score tensor (or a view of it) sees `score += x` change it; `score = score + x`
leaves it alone. An integer tensor score raises on `/=` in place, and not out of place. Unsafe."""

# expect: unsafe ESP011: no longer updated in place
import torch
from _observe import direct_calls, under_flex_attention
from torch.nn.attention.flex_attention import flex_attention


def relative(score, b, h, q_idx, kv_idx):
    score += q_idx - kv_idx
    return score


def halved(score, b, h, q_idx, kv_idx):
    score /= 2
    return score


def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=relative), flex_attention(q, k, v, score_mod=halved)


scores = torch.zeros(2, 3)
view = scores[1]
print(relative(view[0], 0, 0, torch.tensor(3), torch.tensor(1)), scores.tolist())
direct_calls(halved, score=True)
under_flex_attention(relative)
under_flex_attention(halved)
