"""The facts the analysis (`fast_backend.py`, on the stdlib `ast`) extracts from one module.

The analysis only *describes* the code: which calls reach a FlexAttention mask API, which function each
mask argument resolves to, what that function captures, and what moving it to module level would touch.
Rules turn these facts into findings; the fixer (`esper_lint/fix/hoist.py`) rewrites exactly what the
`HoistSite` of a fixable finding names, so checking and fixing can never disagree.
"""

from __future__ import annotations

import ast
import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Span(NamedTuple):
    """A source range: 1-based lines, 1-based columns, end column exclusive (as ruff and SARIF).

    (Value types here are NamedTuples, not frozen dataclasses: building those classes is a measurable
    part of a one-file run's start-up, and equality, hashing and ordering are the same.)"""

    line: int
    column: int
    end_line: int
    end_column: int


class CaptureKind(enum.Enum):
    SELF = "self"  # first parameter of an enclosing method: `self` / `cls` whatever it is called
    LOOP = "loop"  # rebound by a loop that also re-creates the closure
    LOCAL = "local"  # any other local of an enclosing function


class Capture(NamedTuple):
    name: str
    kind: CaptureKind
    scope_name: str  # the enclosing function (or comprehension) that binds it


# What a function argument of an API is used as: `mask_mod(b, h, q_idx, kv_idx)` or
# `score_mod(score, b, h, q_idx, kv_idx)`. Rules say which roles they check (`Rule.roles`).
MASK_MOD = "mask_mod"
SCORE_MOD = "score_mod"


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
    # `create_mask(fn := lambda ...)` run whenever its statement runs: `fn := lambda ...` becomes `fn`
    WALRUS_LAMBDA = "walrus-lambda"
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
    # The same uses as `ast.Name` nodes (for the safety checks: how the function object is used).
    reference_nodes: list[Any] = field(default_factory=list, compare=False, repr=False)
    # Names bound by a scope between a reader of the new module-level name and module level, with the
    # identities of those scopes: the new name must not be one of them (that binding would answer the
    # lookup), unless the only such binding is a variable a hoist replaces (`owner`, `variable`).
    shadowing: dict[str, frozenset[int]] = field(default_factory=dict)
    owner: int | None = None  # identity of the scope whose `variable` the hoist removes
    # The innermost `def` around the function (its `ast` node): every use of a def's variable is inside
    # the def around it, so this is all the rewrite must parse. None: no def around (a lambda in a lambda).
    enclosing_def: Any = field(default=None, compare=False, repr=False)
    # `mask = mask` statements (`ast.Assign`) in the owner: the fix deletes them with the binding.
    self_assignments: list[Any] = field(default_factory=list, compare=False, repr=False)
    # For naming an inline lambda: the parameter it is passed as (`mask_mod`, `score_mod`), and the
    # variable of a walrus the fix leaves in place (`(window := lambda ...) if flag else m`).
    role: str = MASK_MOD
    walrus: str | None = None


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
    # The stdlib `ast` node of the def / lambda, for rules that read the function's body.
    ast_node: Any = field(default=None, compare=False, repr=False)
    # The module's stdlib `ast` tree and the backend's position converter (`.span(node)` -> Span with
    # character columns, `.lines`), so body rules can report and edit inside `ast_node`.
    module_ast: Any = field(default=None, compare=False, repr=False)
    positions: Any = field(default=None, compare=False, repr=False)
    # The defs / lambdas around `ast_node`, outermost first (from the analysis' parent table), so body rules
    # need not search `module_ast` for them; None when not known (mask_bodies then searches).
    outer_functions: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)
    # The same-module factory whose call returned this function (`padding_factory(lengths)`), if any.
    factory: str | None = None
    # Functions of this module it calls by name: id(the ast.Call in its body) -> what the callee may be
    # (only when every binding of the name is a def or a lambda). Lets rules follow `causal(b, h, q, kv)`.
    callees: dict[int, list[MaskFunction]] = field(default_factory=dict, compare=False, repr=False)
    # Set for nested functions (enclosing is not None): what a hoist would rewrite.
    site: HoistSite | None = field(default=None, compare=False, repr=False)

    @property
    def nested(self) -> bool:
        return self.enclosing is not None

    def captures_of(self, kind: CaptureKind) -> list[Capture]:
        return [c for c in self.captures if c.kind is kind]


@dataclass(frozen=True)
class CallArgument:
    """One argument of an API call, bound to the API's parameter it fills."""

    parameter: str
    span: Span  # the value expression
    keyword_span: Span | None  # `name=value` as a whole, when passed by keyword
    # Where to cut to remove the argument with its separating comma; None when comments or anything but
    # whitespace sit in between (then no fix removes it).
    removal_span: Span | None = None
    node: Any = field(default=None, compare=False, repr=False)  # the stdlib `ast` expression

    @property
    def constant(self) -> object:
        """The literal value (`None`, `1`, `True`), or NOT_CONSTANT."""
        if isinstance(self.node, ast.Constant):
            return self.node.value
        return NOT_CONSTANT


NOT_CONSTANT = object()


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
    role: str = MASK_MOD
    # Every function the argument may be is known (no parameter, import, or unresolved value).
    functions_known: bool = False
    # The call's arguments by the API's parameter names (`B`, `H`, `_compile`, ...); empty when a
    # starred argument or a partial makes the binding unknown.
    arguments: dict[str, CallArgument] = field(default_factory=dict)
    callee_span: Span | None = None  # the called expression, e.g. `create_block_mask` / `fa.create_block_mask`
    callee_is_api: bool = False  # the callee names the API itself (not a wrapper, alias variable or partial)
    # The name `torch` resolves to the torch module at the call (a fix may then write `torch.compile`).
    torch_in_scope: bool = False
    # The call reaches the API through a same-module helper that passes its parameter on (`make(causal, n)`):
    # the helper's name; the arguments above are then those of the call inside the helper.
    via_helper: str | None = None
    call_node: Any = field(default=None, compare=False, repr=False)  # the stdlib `ast.Call`
    # The call's result (a BlockMask) only ever reaches `flex_attention`'s block_mask slot: passed there
    # directly, or through a local variable read nowhere else. False when it is stored on an object,
    # returned, indexed, or passed elsewhere (then its B/H dimensions may be used on purpose: ESP009).
    result_only_attended: bool = False

    @property
    def direct_functions(self) -> list[MaskFunction]:
        """The functions passed as such, not returned by a factory call (ESP001-ESP006 judge only these)."""
        return [f for f in self.functions if f.factory is None]


@dataclass
class AttentionCall:
    """One call of `flex_attention` (ESP013, ESP016)."""

    call_span: Span
    callee_span: Span
    score_mod: CallArgument | None  # the 4th argument / `score_mod=`
    score_mod_is_block_mask: bool  # ... is a BlockMask built in this module (ESP013)
    # The BlockMask in the score_mod slot can become `block_mask=` by inserting the keyword: it is the last
    # positional argument and no `block_mask=` is given.
    score_mod_to_keyword: bool
    block_mask: CallArgument | None
    block_mask_functions: list[MaskFunction]  # what `block_mask=` resolves to when it is a function (ESP013)
    # True: called through `torch.compile(...)` or inside a compiled function; False: nothing in the module
    # compiles anything; None: the module compiles something, so this call may be compiled (ESP016).
    compiled: bool | None
    call_node: Any = field(default=None, compare=False, repr=False)


@dataclass
class ModuleFacts:
    uses: list[MaskUse] = field(default_factory=list)
    attention_calls: list[AttentionCall] = field(default_factory=list)
