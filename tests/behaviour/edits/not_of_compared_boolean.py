"""`not (a and b) == c` and a cascade of `not`s: once an internal error (the rewrite made a new `and`);
now each is reported with its reason and nothing is rewritten."""

# expect: declined ESP008: no automatic fix because
# naive: internal error (the rewrite of `not` kept the `and` inside: a new finding, refused by the verification)
from _observe import direct_calls
from torch.nn.attention.flex_attention import create_mask


def odd(b, h, q_idx, kv_idx):
    return not (q_idx >= kv_idx and q_idx < 5) == kv_idx


def cascade(b, h, q_idx, kv_idx):
    x = 1
    return not (not type(q_idx) == (not x < q_idx - kv_idx))


def build(n):
    return create_mask(odd, None, None, n, n), create_mask(cascade, None, None, n, n)


direct_calls(odd)
direct_calls(cascade)
