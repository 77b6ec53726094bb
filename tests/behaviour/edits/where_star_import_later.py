"""A star import after the mask function binds `torch` to another object: a `torch.where` written into the
mask would call it."""

# expect: declined ESP008: not certainly the torch module
import torch
from _observe import T, outcome
from torch.nn.attention.flex_attention import create_mask


def window(b, h, q_idx, kv_idx):
    return 1 if q_idx >= kv_idx else 0


def build(n):
    return create_mask(window, None, None, n, n)


from _star_torch import *  # noqa: E402, F403

for q, kv in ((0, 1), (1, 0)):
    print(outcome(window, T(0), T(0), T(q), T(kv)))
print(type(torch).__name__)
