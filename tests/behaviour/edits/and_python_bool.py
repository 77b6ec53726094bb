"""An operand the analysis cannot type (`q.nelement() > 1`: a Python bool even for a tensor, like any method
it does not know) may be a plain bool: `and` returns it as it is, `&` makes a tensor of it, and under
vmap the mask changes."""

# expect: declined ESP008: may raise, bind a name or have another effect, or not be a number or tensor
from _observe import T, outcome, under_create_mask
from torch.nn.attention.flex_attention import create_mask


def batched_only(b, h, q_idx, kv_idx):
    return q_idx.nelement() > 1 and q_idx >= kv_idx


def build(n):
    return create_mask(batched_only, None, None, n, n)


print(outcome(batched_only, T(0), T(0), T(3), T(1)))
under_create_mask(batched_only)
