"""Fixed: a walrus lambda becomes a module-level def named after its variable, and `fn := lambda ...`
becomes that name; its later uses read the same function. A walrus that may be skipped stays in place."""

# expect: fixed
from torch.nn.attention.flex_attention import create_block_mask, create_mask

band = "a module-level name: the hoisted function is renamed, and every use of the variable with it"


def build(n):
    dense = create_mask(band := lambda b, h, q, kv: abs(q - kv) <= 1, None, None, n, n)
    return dense, band(0, 0, 1, 0)


def build_keyword(n):
    mask = create_block_mask(mask_mod=(causal := lambda b, h, q, kv: q >= kv), B=None, H=None, Q_LEN=n, KV_LEN=n)
    if causal(0, 0, 2, 1):
        return mask
    return None


def everything(b, h, q, kv):
    return q >= 0


def build_maybe(n, flag):
    mask = create_block_mask((window := lambda b, h, q, kv: q - kv < 2) if flag else everything, None, None, n, n)
    return mask, flag and window(0, 0, 1, 0)


print(build(3), build_keyword(4), build_maybe(3, True), build_maybe(3, False), band)
