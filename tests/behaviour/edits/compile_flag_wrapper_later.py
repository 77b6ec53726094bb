"""`create_block_mask` rebound by a later `def` (the module's own wrapper): the call is the wrapper's, whose
`_compile` means something else. Not torch's call: no ESP010."""

# expect: silent ESP010
import torch
from torch.nn.attention.flex_attention import create_block_mask


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def build(n):
    return create_block_mask(causal, None, None, n, n, _compile=True)


torch_create_block_mask = create_block_mask


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, _compile=False):
    print("wrapper, _compile:", _compile)
    return torch_create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device="cpu")


torch._dynamo.config.disable = True
print(build(128).shape)
