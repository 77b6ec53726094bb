"""An eagerly evaluated annotation with a side effect runs per `def`."""

# expect: declined: its annotation `note('q')`
from torch.nn.attention.flex_attention import create_block_mask

NOTES = []


def note(what):
    NOTES.append(what)
    return int


def build(n):
    def causal(b, h, q: note("q"), kv) -> bool:
        return q >= kv

    return create_block_mask(causal, None, None, n, n)


build(2)
build(2)
print(NOTES)
