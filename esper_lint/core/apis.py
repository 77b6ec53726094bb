"""The FlexAttention APIs that take a mask function, and the wrappers real code puts around them.

Everything is keyed by fully qualified name: a call is checked only when its callee resolves, through
imports, aliases and assignments, to one of these names.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

from .records import NamedTuple

FLEX_MODULE = "torch.nn.attention.flex_attention"

# A BlockMask's block tensors, each with batch and head dimensions first (torch's BlockMask fields): the
# analysis reads indexing of them as use of the batch/head layout, the harness copies them.
BLOCK_MASK_TENSORS = (
    "kv_num_blocks",
    "kv_indices",
    "full_kv_num_blocks",
    "full_kv_indices",
    "q_num_blocks",
    "q_indices",
    "full_q_num_blocks",
    "full_q_indices",
)


class MaskApi(NamedTuple):
    qualified_name: str
    mask_position: int | None  # positional index of the mask function, None if keyword-only in practice
    mask_keyword: str
    builds_block_mask: bool = False  # the result is a BlockMask computed from the mask (ESP005)
    role: str = "mask_mod"  # what the function argument is: "mask_mod" or "score_mod" (see analysis/model.py)
    # The API's parameters in order, to bind a call's arguments by name (B, H, _compile...); () if unknown.
    parameters: tuple[str, ...] = ()

    @property
    def short_name(self) -> str:
        return self.qualified_name.rsplit(".", 1)[-1]


_BLOCK_MASK_PARAMETERS = ("mask_mod", "B", "H", "Q_LEN", "KV_LEN", "device", "BLOCK_SIZE", "_compile")
FLEX_ATTENTION = f"{FLEX_MODULE}.flex_attention"
FLEX_ATTENTION_PARAMETERS = (
    "query",
    "key",
    "value",
    "score_mod",
    "block_mask",
    "scale",
    "enable_gqa",
    "return_lse",
    "kernel_options",
)

BUILTIN_MASK_APIS: tuple[MaskApi, ...] = (
    MaskApi(
        f"{FLEX_MODULE}.create_block_mask", 0, "mask_mod", builds_block_mask=True, parameters=_BLOCK_MASK_PARAMETERS
    ),
    MaskApi(f"{FLEX_MODULE}.create_mask", 0, "mod_fn", parameters=("mod_fn", "B", "H", "Q_LEN", "KV_LEN", "device")),
    # Present in torch 2.6-2.8; still found in code pinned to those releases.
    MaskApi(f"{FLEX_MODULE}.create_nested_block_mask", 0, "mask_mod", builds_block_mask=True),
    MaskApi(f"{FLEX_MODULE}.BlockMask.from_kv_blocks", 5, "mask_mod"),
    # The score_mod slot of flex_attention (its block_mask slot is checked by ESP013 from AttentionCall facts).
    MaskApi(FLEX_ATTENTION, 3, "score_mod", role="score_mod", parameters=FLEX_ATTENTION_PARAMETERS),
)

# Calls whose result is a BlockMask (ESP013 recognises one passed in the score_mod slot).
BLOCK_MASK_CONSTRUCTORS: frozenset[str] = frozenset(
    {
        f"{FLEX_MODULE}.create_block_mask",
        f"{FLEX_MODULE}.create_nested_block_mask",
        f"{FLEX_MODULE}.BlockMask.from_kv_blocks",
        f"{FLEX_MODULE}.BlockMask",
    }
)

# APIs that only evaluate the mask and return a dense tensor: nothing keeps the function afterwards, so
# captures cannot leak or bind late through them (ESP003/ESP004/ESP006 do not apply).
NON_RETAINING_APIS: frozenset[str] = frozenset({f"{FLEX_MODULE}.create_mask", FLEX_ATTENTION})


def keeps_mask_function(api: str) -> bool:
    """True when the object an API returns keeps the mask function (a BlockMask's `mask_mod`)."""
    return api not in NON_RETAINING_APIS


# Functions that combine mask functions: each positional argument is itself a mask function.
MASK_COMBINATORS: frozenset[str] = frozenset({f"{FLEX_MODULE}.and_masks", f"{FLEX_MODULE}.or_masks"})

# Wrappers that return the same callable with the same parameters (first argument is the function).
TRANSPARENT_WRAPPERS: frozenset[str] = frozenset(
    {
        "torch.compile",
        "torch.compiler.disable",
        "torch._dynamo.disable",
        "torch._dynamo.optimize",
        "functools.lru_cache",
        "functools.cache",
    }
)

# functools.partial binds leading positional arguments and keywords.
PARTIAL = "functools.partial"


class ApiTable:
    """Built-in APIs plus those a user configured (`mask-apis` in `[tool.esper-lint]`)."""

    def __init__(self, extra: Iterable[MaskApi] = ()) -> None:
        self._by_name: dict[str, MaskApi] = {api.qualified_name: api for api in BUILTIN_MASK_APIS}
        for api in extra:
            self._by_name[api.qualified_name] = api

    def get(self, qualified_name: str) -> MaskApi | None:
        return self._by_name.get(qualified_name)

    def __iter__(self) -> Iterator[MaskApi]:
        return iter(self._by_name.values())

    def spellings(self) -> frozenset[str]:
        """The last component of every API name: a file that calls an API must contain one of them.

        (An alias such as `cbm` is still introduced by an import or assignment that spells the
        original name, which is why the text prefilter can rely on these.)
        """
        return frozenset(name.decode() for name in self.spelling_bytes)

    @functools.cached_property
    def spelling_bytes(self) -> tuple[bytes, ...]:
        """`spellings()` as bytes, computed once: the prefilter searches every file's bytes for them."""
        return tuple(sorted({name.rsplit(".", 1)[-1].encode() for name in self._by_name}))
