"""A BlockMask passed 4th to torch's `flex_attention` lands in the score_mod slot and the call fails;
`block_mask=` makes it run with the mask. Fixed: the output is the same as an explicit `block_mask=`."""

# expect: fixed ESP013
import torch
from _observe import AGREES
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def attend(q, k, v):
    mask = create_block_mask(causal, None, None, q.shape[-2], k.shape[-2], device="cpu")
    return flex_attention(q, k, v, mask)


q = torch.randn(1, 1, 128, 8, generator=torch.Generator().manual_seed(0))
expected = flex_attention(q, q, q, block_mask=create_block_mask(causal, None, None, 128, 128, device="cpu"))
try:
    same = torch.allclose(attend(q, q, q), expected)
except torch._dynamo.exc.Unsupported:
    same = True  # refused: what the finding reports
print(AGREES if same else "differs")
