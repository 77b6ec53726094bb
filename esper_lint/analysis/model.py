"""The facts an analysis backend extracts from one module, and that rules decide on.

Backends (LibCST metadata, or the faster stdlib path) only *describe* the code: which calls reach a
FlexAttention mask API, which function each mask argument resolves to, and what that function captures.
Rules turn these facts into findings, so every backend is judged by the same rules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Span:
    """A source range: 1-based lines, 1-based columns, end column exclusive (as ruff and SARIF)."""

    line: int
    column: int
    end_line: int
    end_column: int


class CaptureKind(enum.Enum):
    SELF = "self"  # first parameter of an enclosing method: `self` / `cls` whatever it is called
    LOOP = "loop"  # rebound by a loop that also re-creates the closure
    LOCAL = "local"  # any other local of an enclosing function


@dataclass(frozen=True)
class Capture:
    name: str
    kind: CaptureKind
    scope_name: str  # the enclosing function (or comprehension) that binds it


# Reasons a capture-free function cannot be hoisted, worded once for both backends and the fixer.
CLASS_CELL_REASON = "it uses `super()` or `__class__`, which need the enclosing class"


def class_attribute_reason(name: str) -> str:
    return f"it is an attribute of the class that defines it (`{name}`), which would disappear"


class FunctionKind(enum.Enum):
    DEF = "def"
    LAMBDA = "lambda"


@dataclass
class MaskFunction:
    """A function object passed (directly or through a local variable) as a mask function."""

    kind: FunctionKind
    name: str  # the def's name, or the variable holding the lambda, or "<lambda>"
    span: Span  # where the def / lambda is
    enclosing: str | None  # qualified name of the innermost enclosing function; None at module/class level
    captures: list[Capture] = field(default_factory=list)
    # Names of enclosing locals read when the `def` statement itself runs (decorators, defaults,
    # annotations evaluated eagerly): they make hoisting unsafe even when the body captures nothing.
    definition_time_refs: list[str] = field(default_factory=list)
    # The subset read by parameter defaults (`w=w`): values bound per call, like a capture by value.
    default_refs: list[str] = field(default_factory=list)
    # Reasons, beyond captures, why the function cannot be moved mechanically (nonlocal/global,
    # several bindings, the variable is reassigned, ...). Empty means a hoist is provably safe.
    unfixable_reasons: list[str] = field(default_factory=list)
    # Backend-specific handle used by the fixer (a LibCST node); never used by rules.
    node: Any = field(default=None, compare=False, repr=False)
    binding_node: Any = field(default=None, compare=False, repr=False)

    @property
    def nested(self) -> bool:
        return self.enclosing is not None

    def captures_of(self, kind: CaptureKind) -> list[Capture]:
        return [c for c in self.captures if c.kind is kind]


@dataclass
class MaskUse:
    """One mask-function argument at one call of a FlexAttention mask API."""

    api: str  # qualified name of the API reached, e.g. torch.nn.attention.flex_attention.create_block_mask
    arg_span: Span  # the mask argument expression: findings are reported here (noqa goes on this line)
    call_span: Span
    functions: list[MaskFunction]  # what the argument may be (several through and_masks / branches)
    # Where the call is evaluated: the qualified name of the innermost function, and whether that
    # function is a module's `forward` (called on every step) with the call unconditionally in its body.
    caller: str | None
    per_forward: bool = False
    # True when every mask function is known and captures nothing (module level or capture-free):
    # the BlockMask is then a pure function of the size arguments.
    mask_is_capture_free: bool = False
    arg_node: Any = field(default=None, compare=False, repr=False)


@dataclass
class ModuleFacts:
    uses: list[MaskUse] = field(default_factory=list)
