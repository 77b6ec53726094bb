"""Mask and score functions known by their parameters alone, where no call to them is visible.

torch tells a mask_mod from a score_mod by its signature (`_get_mod_type` in
torch/nn/attention/flex_attention.py): it counts the positional parameters without defaults, 4 for a
mask_mod `(b, h, q_idx, kv_idx)`, 5 for a score_mod `(score, b, h, q_idx, kv_idx)`. A count alone says
little (`def f(x, y, z, w)` is everywhere), so a function counts here only when its parameters also carry
the names FlexAttention code gives them, in a module that imports FlexAttention.

The names are those real code uses, read from the ~34 FlexAttention repositories of the corpus (attention-gym,
torchtitan, torchtune, transformers' masking_utils, flash-attention's tests, MagiAttention, ...):
- query/key index: `q_idx`/`kv_idx` (nearly all), `q`/`kv`, `q_i`/`kv_i`, `query_idx`/`key_idx`,
  `query_index`/`key_index`, `q_indices`/`kv_indices`, `token_q`/`token_kv` (torch's own), `q_idx`/
  `physical_kv_idx` (paged attention), `query_idx`/`key_value_idx`; either order (ESP014 reports the
  swapped one);
- batch and head: `b`/`h`, `batch`/`head`, `batch_idx`/`head_idx`, `b_idx`/`h_idx`, `batch_index`/
  `head_index`, `batch_indices`/`head_indices`, or any name starting with `_` (`_`, `__`, `_b`);
- score: `score`, `scores`, `s`, `qk`, `logit(s)`, `attn_score(s)`.
Left out on purpose: `m`/`n` (torch's internal names, but any numeric code uses them), bare `k`/`key`/
`query` (tensors of that name are everywhere: `def f(bias, mask, query, key)` is no mask), and a score
named anything else (`def mask(window, b, h, q_idx, kv_idx)` is a mask_mod with a leading parameter for
`partial`, not a score_mod).

A bound method counts without its `self` (`cls`). A decorated function does not (a decorator may change
the signature), nor one called in the module with a literal number (used as plain Python, not by torch).
"""

from __future__ import annotations

import ast
import functools
import re

from ..core.apis import FLEX_MODULE
from .model import MASK_MOD, SCORE_MOD
from .syntax import FuncNode

_INDEX_SUFFIXES = ("idx", "index", "indices", "i", "pos", "position", "positions", "id", "ids")
# Lower-cased, underscores removed.
_Q_NAMES = frozenset(
    {"q", "tokenq", "qtoken"}
    | {f"q{s}" for s in _INDEX_SUFFIXES}
    | {f"query{s}" for s in _INDEX_SUFFIXES if s not in ("i", "id", "ids")}
)
_KV_NAMES = frozenset(
    {"kv", "tokenkv", "kvtoken"}
    | {f"{stem}{s}" for stem in ("kv", "k", "physicalkv", "logicalkv") for s in _INDEX_SUFFIXES}
    | {f"{stem}{s}" for stem in ("key", "keyvalue") for s in _INDEX_SUFFIXES if s not in ("i", "id", "ids")}
)
_BATCH_NAMES = frozenset({"b", "batch", "bs"} | {f"{stem}{s}" for stem in ("b", "batch") for s in _INDEX_SUFFIXES})
_HEAD_NAMES = frozenset({"h", "head"} | {f"{stem}{s}" for stem in ("h", "head") for s in _INDEX_SUFFIXES})
_SCORE_NAMES = frozenset({"score", "scores", "s", "qk", "logit", "logits", "attnscore", "attnscores"})
_METHOD_DECORATORS = frozenset({"staticmethod", "classmethod"})


# An import of FlexAttention, as written at the start of a line: the text test for "may use FlexAttention"
# made before the walk (the walk's bindings decide, `imports_flex_attention`).
FLEX_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+torch\.nn\.attention(?:\.flex_attention[ \t]+import|[ \t]+import[^\n]*\bflex_attention\b)"
    r"|import[ \t]+torch\.nn\.attention\.flex_attention)",
    re.MULTILINE,
)


# Text a definition holding a mask or score function must contain (a key/value index parameter), to decide
# without parsing which skipped definitions are worth a full visit in a module that uses FlexAttention.
@functools.cache
def _index_words() -> re.Pattern[str]:
    """Compiled on first use (start-up): only a text holding one of `_INDEX_HINTS` needs it."""
    return re.compile(
        r"\b(?:token_?)?kv(?:_?token)?\b"
        r"|\b(?:physical_?|logical_?|token_?)?(?:kv|k|key|key_?value)_?(?:idx|index|indices|i|pos|position|positions|ids?)\b",
        re.IGNORECASE,
    )


# Substrings one of which every spelling `_index_words` matches contains: found at C speed, so the regex
# (slow on long texts) runs only where one is.
_INDEX_HINTS = (
    "kv", "KV", "Kv", "k_i", "k_p", "kI", "kidx", "kindex", "kpos", "key_i", "key_p", "keyI", "keyi", "keyp",
    "key_value", "keyvalue", "keyValue", "K_I", "K_P", "KEY_",
)  # fmt: skip


def names_an_index(text: str) -> bool:
    """The text spells a key/value index parameter name (`kv_idx`, `kv`, `key_idx`, ...) as a word."""
    return any(hint in text for hint in _INDEX_HINTS) and _index_words().search(text) is not None


def _word(name: str) -> str:
    return name.lower().replace("_", "")


def _side(name: str) -> str | None:
    word = _word(name)
    if word in _Q_NAMES:
        return "q"
    if word in _KV_NAMES:
        return "kv"
    return None


def _is_unused(name: str) -> bool:
    return name.startswith("_")


def _batch_head(batch: str, head: str) -> bool:
    return (_is_unused(batch) or _word(batch) in _BATCH_NAMES) and (_is_unused(head) or _word(head) in _HEAD_NAMES)


def signature_role(node: FuncNode, in_class: bool) -> tuple[str, int] | None:
    """(MASK_MOD or SCORE_MOD, how many leading parameters a bound method binds) when the function's
    signature is FlexAttention's; None otherwise. `in_class`: a def directly in a class body."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    bound = 0
    if in_class and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
        if len(decorators) != len(node.decorator_list) or not decorators <= _METHOD_DECORATORS:
            return None
        bound = 0 if "staticmethod" in decorators else 1
    elif not isinstance(node, ast.Lambda) and node.decorator_list:
        return None
    if len(positional) < bound:
        return None
    names = [a.arg for a in positional[bound : len(positional) - len(args.defaults)]]
    if len(names) == 4:
        role, rest = MASK_MOD, names
    elif len(names) == 5 and _word(names[0]) in _SCORE_NAMES:
        role, rest = SCORE_MOD, names[1:]
    else:
        return None
    sides = {_side(rest[2]), _side(rest[3])}
    if sides != {"q", "kv"} or not _batch_head(rest[0], rest[1]):
        return None
    return role, bound


def imports_flex_attention(bindings: list[tuple[str, set[str]]]) -> bool:
    """Some import binds a name to FlexAttention's module or something in it (given every import
    binding's name and qualified names)."""
    prefix = FLEX_MODULE + "."
    return any(q == FLEX_MODULE or q.startswith(prefix) for _, names in bindings for q in names)


def called_with_literal_number(call: ast.Call) -> bool:
    """`causal(0, 0, 3, 2)`: a call that passes a number literal, so the function runs on Python numbers."""
    return any(
        isinstance(a, ast.Constant) and type(a.value) in (int, float)
        for a in (*call.args, *(k.value for k in call.keywords))
    )
