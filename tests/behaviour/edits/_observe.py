"""What the behaviour programs of the text-edit fixes print: every input a mask or score function can receive.

`direct_calls` calls the function as a unit test's reference loop would: with Python ints and floats (NaN
included), with 0-d integer and floating tensors, and with a mix of numbers and tensors; each line shows the
result's type, dtype and value, or the exception it raises. `under_create_mask` and `under_flex_attention`
run it where torch does (vmap; dynamo); they print one fixed line when torch refuses the original's
control flow (the error the finding reports, which the fix removes) or when the result equals the function
evaluated element by element, and the difference otherwise. So a program prints the same before and after
a fix exactly when the fix kept the function's behaviour (docs/fix.md, "What safe means").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.nn.attention.flex_attention import create_mask, flex_attention

NAN = math.nan


def T(value: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    return torch.tensor(value, dtype=dtype)


def show(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor[{value.dtype}]{value.tolist()}"
    return f"{type(value).__name__}:{value!r}"


def outcome(fn: Callable[..., Any], *args: Any) -> str:
    try:
        return show(fn(*args))
    except Exception as exc:  # the type is the behaviour; messages may name addresses
        return f"raises {type(exc).__name__}"


def index_arguments() -> list[tuple[str, tuple[Any, ...]]]:
    """(label, (b, h, q_idx, kv_idx)) for the inputs a direct call can pass."""
    found: list[tuple[str, tuple[Any, ...]]] = []
    for q, kv in ((0, 0), (1, 3), (3, 1), (5, 0), (6, 2)):
        found.append((f"ints {q},{kv}", (0, 0, q, kv)))
        found.append((f"int64 {q},{kv}", (T(0), T(0), T(q), T(kv))))
        found.append((f"int32 {q},{kv}", (T(0), T(0), T(q, torch.int32), T(kv, torch.int32))))
        found.append((f"int, tensor {q},{kv}", (0, 0, q, T(kv))))
        found.append((f"tensor, int {q},{kv}", (T(0), T(0), T(q), kv)))
    for q, kv in ((1.5, 0.5), (NAN, 1.0), (1.0, NAN), (-0.0, 0.0)):
        found.append((f"floats {q},{kv}", (0, 0, q, kv)))
        found.append((f"float32 {q},{kv}", (T(0), T(0), T(q), T(kv))))
    found.append(("a Python int too large for a float", (0, 0, 10**400, 2)))
    return found


def direct_calls(fn: Callable[..., Any], score: bool = False) -> None:
    """Call `fn` with every argument tuple of `index_arguments` (after a score, for a score_mod)."""
    scores: list[tuple[str, Any]] = [("", None)]
    if score:
        scores = [("score 0.5, ", 0.5), ("score tensor 0.5, ", T(0.5)), ("score int tensor 7, ", T(7))]
    for prefix, value in scores:
        for label, args in index_arguments():
            full = args if value is None else (value.clone() if isinstance(value, torch.Tensor) else value, *args)
            print(f"{prefix}{label}: {outcome(fn, *full)}")


def _refused(exc: BaseException) -> bool:
    """vmap's or dynamo's refusal of Python control flow on a tensor: what ESP008 reports."""
    text = str(exc)
    return isinstance(exc, torch._dynamo.exc.Unsupported) or any(
        words in text for words in ("data-dependent", "Data-dependent", ".item()", "vmap")
    )


AGREES = "refused (what the finding reports) or the same as element by element"


def under_create_mask(fn: Callable[..., Any], n: int = 6) -> None:
    """create_mask (vmap) against the function called element by element with 0-d tensors."""
    try:
        reference: Any = [[bool(fn(T(0), T(0), T(q), T(kv))) for kv in range(n)] for q in range(n)]
    except Exception as exc:
        reference = f"raises {type(exc).__name__}"
    try:
        dense: Any = create_mask(fn, 1, 1, n, n, device="cpu")[0, 0].tolist()
    except Exception as exc:
        if _refused(exc):
            print(f"create_mask: {AGREES}")
            return
        dense = f"raises {type(exc).__name__}"
    print(f"create_mask: {AGREES}" if dense == reference else f"create_mask: {dense}, element by element {reference}")


def under_flex_attention(score_mod: Callable[..., Any], n: int = 6) -> None:
    """Eager flex_attention (dynamo traces the score_mod) against attention with the score_mod applied element
    by element."""
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, n, 8, generator=generator)
    k = torch.randn(1, 1, n, 8, generator=generator)
    v = torch.randn(1, 1, n, 8, generator=generator)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(8)
    try:
        modified = torch.tensor(
            [[float(score_mod(scores[0, 0, i, j], T(0), T(0), T(i), T(j))) for j in range(n)] for i in range(n)]
        )
        reference: Any = torch.softmax(modified, dim=-1) @ v[0, 0]
    except Exception as exc:
        reference = f"raises {type(exc).__name__}"
    try:
        out: Any = flex_attention(q, k, v, score_mod=score_mod)[0, 0]
    except Exception as exc:
        if _refused(exc):
            print(f"flex_attention: {AGREES}")
            return
        out = f"raises {type(exc).__name__}"
    same = isinstance(out, torch.Tensor) and isinstance(reference, torch.Tensor) and torch.allclose(out, reference)
    print(f"flex_attention: {AGREES}" if same or out == reference else f"flex_attention: {out}, expected {reference}")
