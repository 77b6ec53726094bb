"""A method call (`.sqrt()`) can make NaN from integers: `not (a < b)` and `a >= b` then differ."""

# expect: declined ESP008: may raise, bind a name or have another effect
from _observe import T, outcome, under_create_mask
from torch.nn.attention.flex_attention import create_mask


def rooted(b, h, q_idx, kv_idx):
    return not ((q_idx - kv_idx).sqrt() < 1)


def build(n):
    return create_mask(rooted, None, None, n, n)


for q, kv in ((0, 3), (3, 0), (1, 1)):
    print(q, kv, outcome(rooted, T(0), T(0), T(q), T(kv)))
under_create_mask(rooted)
