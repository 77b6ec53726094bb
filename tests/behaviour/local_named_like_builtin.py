"""A local variable named like a builtin (`dir`) is not the builtin: the hoist stays safe."""

# expect: fixed
import os

from torch.nn.attention.flex_attention import create_block_mask


def paths(names):
    out = []
    for dir in names:
        out.append(os.path.join(dir, "x"))
    return out


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


print(build(2), paths(["a", "b"]), [vars for vars in range(2)])
