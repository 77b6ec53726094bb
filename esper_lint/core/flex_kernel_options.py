"""The `kernel_options` keys torch 2.13 defines, copied from its own `FlexKernelOptions` TypedDict
(torch/nn/attention/flex_attention.py); tests/test_rationale_call_flow.py checks them against the
installed torch. ESP023 reports any other literal key.

A key may also carry a `fwd_` or `bwd_` prefix (applied to the forward or backward kernel only): torch's
inductor strips the prefix and reads the key itself.
"""

from __future__ import annotations

# FlexKernelOptions' keys, in the order torch declares them.
FLEX_KERNEL_OPTIONS: tuple[str, ...] = (
    "num_warps",
    "num_stages",
    "BLOCK_M",
    "BLOCK_N",
    "BLOCK_M1",
    "BLOCK_N1",
    "BLOCK_M2",
    "BLOCK_N2",
    "PRESCALE_QK",
    "ROWS_GUARANTEED_SAFE",
    "BLOCKS_ARE_CONTIGUOUS",
    "WRITE_DQ",
    "FORCE_USE_FLEX_ATTENTION",
    "USE_TMA",
    "kpack",
    "matrix_instr_nonkdim",
    "waves_per_eu",
    "BACKEND",
)
# Keys torch's inductor reads from `kernel_options` that FlexKernelOptions does not declare (the CPU
# kernel's `SKIP_MASK_SCORE` and `PARTITION_SIZE`, the warp-specialisation knobs): honoured, so not typos.
UNDECLARED_BUT_READ: tuple[str, ...] = (
    "SKIP_MASK_SCORE",
    "PARTITION_SIZE",
    "num_consumer_groups",
    "num_buffers_warp_spec",
)
# The values `BACKEND` accepts (torch's `_Backend` literal); any other raises ValueError.
BACKENDS: tuple[str, ...] = ("AUTO", "TRITON", "FLASH", "TRITON_DECODE")
PREFIXES: tuple[str, ...] = ("fwd_", "bwd_")

_KNOWN = frozenset(FLEX_KERNEL_OPTIONS) | frozenset(UNDECLARED_BUT_READ)


def split_prefix(key: str) -> tuple[str, str]:
    """`fwd_BLOCK_M` -> ("fwd_", "BLOCK_M"); `BLOCK_M` -> ("", "BLOCK_M")."""
    for prefix in PREFIXES:
        if key.startswith(prefix) and key[len(prefix) :] in _KNOWN:
            return prefix, key[len(prefix) :]
    return "", key


def is_known(key: str) -> bool:
    return split_prefix(key)[1] in _KNOWN


def nearest(key: str) -> str | None:
    """The valid key `key` was most likely meant to be (`BLOCK_m` -> `BLOCK_M`, `num_warp` -> `num_warps`,
    `"PRESCALE_QK "` -> `PRESCALE_QK`), keeping a `fwd_`/`bwd_` prefix; None when nothing is close."""
    prefix = next((p for p in PREFIXES if key.startswith(p)), "")
    bare = key[len(prefix) :]
    by_folded = {k.lower(): k for k in FLEX_KERNEL_OPTIONS}
    folded = bare.strip().lower()
    if folded in by_folded:  # only the case or surrounding spaces differ
        return prefix + by_folded[folded]
    import difflib  # only when a key is unknown: checking a file need not import it

    found = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=0.75)
    return prefix + by_folded[found[0]] if found else None
