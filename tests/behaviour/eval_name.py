"""`eval` of a string naming the function: a rename would not reach the string."""

# expect: declined: calls `eval()`
from torch.nn.attention.flex_attention import create_block_mask

causal = "module-level causal"


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    found = eval("causal")
    return found is causal, create_block_mask(causal, None, None, n, n)


print(build(2)[0])
