"""Identity of the function compared against an earlier one."""

# expect: declined: it is compared
from torch.nn.attention.flex_attention import create_block_mask

previous = []


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    fresh = not previous or previous[-1] is not causal
    previous.append(create_block_mask(causal, None, None, n, n).mask_mod)
    return fresh


print(build(2), build(2))
