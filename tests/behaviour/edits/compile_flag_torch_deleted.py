"""`del torch` before the call: a `torch.compile(...)` written at the call would raise NameError. The
finding stays; no fix."""

# expect: declined ESP010: change it by hand
import torch
from torch.nn.attention.flex_attention import create_block_mask

torch._dynamo.config.disable = True  # compiling takes 40 s on CPU; the behaviour at stake is the name


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def build(n):
    return create_block_mask(causal, None, None, n, n, device="cpu", _compile=True)


del torch
print(build(128).shape)
