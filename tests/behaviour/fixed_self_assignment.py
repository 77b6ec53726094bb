"""Fixed: `mask = mask` rebinds the variable to the function it already holds. The fix deletes it with
the definition (kept, it would make the name local again: `UnboundLocalError`), comments stay."""

# expect: fixed
from torch.nn.attention.flex_attention import create_block_mask

causal = "a module-level name: the hoisted function is renamed, and every use with it"


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    # an alias kept for readability
    causal = causal  # why it was there
    return create_block_mask(causal, None, None, n, n), causal(0, 0, 1, 0)


def build_conditional(n, flag):
    def window(b, h, q, kv):
        return q - kv < 2

    if flag:
        window = window
    return create_block_mask(window, None, None, n, n)


def build_lambda(n):
    sliding = lambda b, h, q, kv: abs(q - kv) <= 1  # noqa: E731
    sliding = sliding
    return create_block_mask(sliding, None, None, n, n)


print(build(3), build_conditional(4, True), build_conditional(4, False), build_lambda(3), causal)
