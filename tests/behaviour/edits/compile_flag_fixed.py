"""`_compile=True` is `torch.compile(create_block_mask)(...)` on torch 2.13 (with a DeprecationWarning):
the rewrite gives the same BlockMask. (Dynamo is switched off: compiling takes 40 s on CPU, and what
is compared is the call the fix writes, not the compiler.)"""

# expect: fixed ESP010
import torch
from torch.nn.attention.flex_attention import create_block_mask

torch._dynamo.config.disable = True


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def build(n):
    return create_block_mask(causal, None, None, n, n, device="cpu", _compile=True)


mask = build(256)
print(mask.shape, mask.kv_num_blocks.tolist(), mask.kv_indices.tolist())
