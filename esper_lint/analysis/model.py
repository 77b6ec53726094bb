"""The facts the analysis (`fast_backend.py`, on the stdlib `ast`) extracts from one module.

The analysis only *describes* the code: which calls reach a FlexAttention mask API, which function each
mask argument resolves to, what that function captures, and what moving it to module level would touch.
Rules turn these facts into findings; the fixer (`esper_lint/fix/hoist.py`) rewrites exactly what the
`HoistSite` of a fixable finding names, so checking and fixing can never disagree.
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


# Reasons a capture-free function cannot be hoisted, worded once for the analysis and the fixer.
CLASS_CELL_REASON = "it uses `super()` or `__class__`, which need the enclosing class"


def class_attribute_reason(name: str) -> str:
    return f"it is an attribute of the class that defines it (`{name}`), which would disappear"


class FunctionKind(enum.Enum):
    DEF = "def"
    LAMBDA = "lambda"


class HoistForm(enum.Enum):
    DEF = "def"  # a nested `def`: the statement moves
    ASSIGNED_LAMBDA = "assigned-lambda"  # `v = lambda ...` alone on its line in a function: becomes `def v`
    INLINE_LAMBDA = "inline-lambda"  # any other lambda: becomes a module-level def, replaced by its name


@dataclass
class HoistSite:
    """What moving a nested function to module level touches, as Python's scoping rules say.

    Computed once by the analysis for every nested mask function; the fixer rewrites exactly this and
    decides nothing about names itself (it only picks a free name, avoiding `shadowing`).
    """

    top_index: int  # index in the module's body of the top-level statement enclosing the function
    form: HoistForm
    variable: str | None  # the enclosing function's variable that is bound to the function (None: inline)
    # Every use of that variable (loads and stores, NFKC-normalised by Python): renamed with the function.
    references: list[Span] = field(default_factory=list)
    # Names bound by a scope between a reader of the new module-level name and module level, with the
    # identities of those scopes: the new name must not be one of them (that binding would answer the
    # lookup), unless the only such binding is a variable a hoist replaces (`owner`, `variable`).
    shadowing: dict[str, frozenset[int]] = field(default_factory=dict)
    owner: int | None = None  # identity of the scope whose `variable` the hoist removes
    # The innermost `def` around the function (its `ast` node): every use of a def's variable is inside
    # the def around it, so this is all the rewrite must parse. None: no def around (a lambda in a lambda).
    enclosing_def: Any = field(default=None, compare=False, repr=False)


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
    # The `ast` node of the def / lambda and of the variable it is bound to; never used by rules.
    node: Any = field(default=None, compare=False, repr=False)
    binding_node: Any = field(default=None, compare=False, repr=False)
    # Set for nested functions (enclosing is not None): what a hoist would rewrite.
    site: HoistSite | None = field(default=None, compare=False, repr=False)

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
    arg_node: Any = field(default=None, compare=False, repr=False)  # the `ast` expression


@dataclass
class ModuleFacts:
    uses: list[MaskUse] = field(default_factory=list)
