"""`torch.where` needs tensors: called with Python numbers the condition is a bool and it raises TypeError;
with 0-d tensors it returns a tensor where the conditional expression returned a number. Unsafe."""

# expect: unsafe ESP008: `torch.where` needs tensors
import torch
from _observe import direct_calls, under_create_mask
from torch.nn.attention.flex_attention import create_mask


def window(b, h, q_idx, kv_idx):
    return True if q_idx - kv_idx < 3 else False


def build(n):
    return create_mask(window, None, None, n, n)


direct_calls(window)
under_create_mask(window)
print(torch.__name__)
