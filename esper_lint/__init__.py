"""esper-lint: static analysis (and safe fixes) for FlexAttention mask functions in PyTorch code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from .sanitizer import sanitize

__all__ = ["__version__", "sanitize"]


def __getattr__(name: str) -> Any:
    # `esper_lint.sanitize` loads the sanitizer on first use: a plain check (pre-commit) imports nothing of it.
    if name == "sanitize":
        from .sanitizer import sanitize

        return sanitize
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
