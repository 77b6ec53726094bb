"""`torch.where` computes both branches: a branch that reads a property (which counts its reads) would run
for every element instead of where it was chosen."""

# expect: declined ESP008: computes both branches
import torch
from _observe import T, outcome
from torch.nn.attention.flex_attention import flex_attention


class Scale:
    reads = 0

    @property
    def value(self):
        Scale.reads += 1
        return 2.0


SCALE = Scale()


def scaled(score, b, h, q_idx, kv_idx):
    return score * SCALE.value if q_idx >= kv_idx else score


def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=scaled)


for q, kv in ((0, 1), (1, 0), (2, 2)):
    print(outcome(scaled, T(0.5), T(0), T(0), T(q), T(kv)))
print("property reads:", Scale.reads, torch.__name__)
