"""One function, two uses; the first is suppressed: hoisting for the second would move the first too."""

# expect: declined: is suppressed with
# naive hoist: same output (what the decline protects is the suppression, not the output)
from torch.nn.attention.flex_attention import create_block_mask


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    kept = create_block_mask(causal, None, None, n, n)  # noqa: ESP001
    return kept, create_block_mask(causal, None, None, n, n)


print(build(2))
