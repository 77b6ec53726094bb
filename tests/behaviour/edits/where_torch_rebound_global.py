"""`torch` is rebound by `global torch` in another function: a `torch.where` written into the mask would call
whatever that function put there."""

# expect: declined ESP008: not certainly the torch module
import torch
from _observe import T, outcome
from torch.nn.attention.flex_attention import create_mask


class Recorder:
    def where(self, *args):
        return "not torch's where"


def use_recorder():
    global torch
    torch = Recorder()


def window(b, h, q_idx, kv_idx):
    return 1 if q_idx >= kv_idx else 0


def build(n):
    return create_mask(window, None, None, n, n)


use_recorder()
for q, kv in ((0, 1), (1, 0)):
    print(outcome(window, T(0), T(0), T(q), T(kv)))
