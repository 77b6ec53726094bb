"""The facts the analysis (`module_facts.py` and its parts, on the stdlib `ast`) extracts from a module.

The analysis only *describes* the code: which calls reach a FlexAttention mask API, which function each
mask argument resolves to, what that function captures, and what moving it to module level would touch.
Rules turn these facts into findings; the fixer (`esper_lint/fix/hoist.py`) rewrites exactly what the
`HoistSite` of a fixable finding names, so checking and fixing can never disagree.
"""

from __future__ import annotations

import ast
import copy
import enum
from typing import Any

from ..core.records import NamedTuple, record_repr
from ..core.span import Span


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
# `MaskUse.api` of a use without a call: a function known by its parameters alone (signature_uses.py).
SIGNATURE_ONLY = "<signature>"


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


# The mutable facts below are plain classes with slots, not dataclasses: building dataclasses is a
# measurable part of a one-file run's start-up. Each is made only by the analysis and compared by
# identity (two facts about different code always differ in their spans anyway).


class HoistSite:
    """What moving a nested function to module level touches, as Python's scoping rules say.

    Computed once by the analysis for every nested mask function; the fixer rewrites exactly this and
    decides nothing about names itself (it only picks a free name, avoiding `shadowing`).
    """

    __slots__ = (
        "enclosing_def",
        "form",
        "owner",
        "reference_nodes",
        "references",
        "role",
        "self_assignments",
        "shadowing",
        "top_index",
        "variable",
        "walrus",
    )
    _shown = ("top_index", "form", "variable", "references", "shadowing", "owner", "role", "walrus")
    __repr__ = record_repr

    def __init__(self, top_index: int, form: HoistForm, variable: str | None) -> None:
        self.top_index = top_index  # index in the module's body of the top-level statement enclosing the function
        self.form = form
        self.variable = variable  # the enclosing function's variable bound to the function (None: inline)
        # Every use of that variable (loads and stores, NFKC-normalised by Python): renamed with the function.
        self.references: list[Span] = []
        # The same uses as `ast.Name` nodes (for the safety checks: how the function object is used).
        self.reference_nodes: list[Any] = []
        # Names bound by a scope between a reader of the new module-level name and module level, with the
        # identities of those scopes: the new name must not be one of them (that binding would answer the
        # lookup), unless the only such binding is a variable a hoist replaces (`owner`, `variable`).
        self.shadowing: dict[str, frozenset[int]] = {}
        self.owner: int | None = None  # identity of the scope whose `variable` the hoist removes
        # The innermost `def` around the function (its `ast` node): every use of a def's variable is inside
        # the def around it, so this is all the rewrite must parse. None: no def around (a lambda in a lambda).
        self.enclosing_def: Any = None
        # `mask = mask` statements (`ast.Assign`) in the owner: the fix deletes them with the binding.
        self.self_assignments: list[Any] = []
        # For naming an inline lambda: the parameter it is passed as (`mask_mod`, `score_mod`), and the
        # variable of a walrus the fix leaves in place (`(window := lambda ...) if flag else m`).
        self.role: str = MASK_MOD
        self.walrus: str | None = None


class MaskFunction:
    """A function object passed (directly or through a local variable) as a mask function."""

    __slots__ = (
        "ast_node",
        "binding_node",
        "bound_keywords",
        "bound_method",
        "bound_positional",
        "called_view",
        "callees",
        "captures",
        "default_refs",
        "defined_in",
        "definition_time_refs",
        "enclosing",
        "factory",
        "kind",
        "known_reads",
        "module_ast",
        "module_summary",
        "name",
        "outer_functions",
        "positions",
        "replaced_by_decorator",
        "route",
        "site",
        "span",
        "unfixable_reasons",
    )
    _shown = ("kind", "name", "span", "enclosing", "captures", "definition_time_refs", "default_refs")
    __repr__ = record_repr

    def __init__(
        self,
        kind: FunctionKind,
        name: str,
        span: Span,
        enclosing: str | None,
        *,
        binding_node: Any = None,
        ast_node: Any = None,
        module_ast: Any = None,
        positions: Any = None,
        outer_functions: tuple[Any, ...] | None = None,
        module_summary: Any = None,
        bound_positional: int = 0,
        bound_keywords: frozenset[str] = frozenset(),
    ) -> None:
        self.kind = kind
        self.name = name  # the def's name, or the variable holding the lambda, or "<lambda>"
        self.span = span  # where the def / lambda is
        self.enclosing = enclosing  # qualified name of the innermost enclosing function; None at module/class level
        self.captures: list[Capture] = []
        # Names of enclosing locals read when the `def` statement itself runs (decorators, defaults,
        # annotations evaluated eagerly): they make hoisting unsafe even when the body captures nothing.
        self.definition_time_refs: list[str] = []
        # The subset read by parameter defaults (`w=w`): values bound per call, like a capture by value.
        self.default_refs: list[str] = []
        # Reasons, beyond captures, why the function cannot be moved mechanically (nonlocal/global,
        # several bindings, the variable is reassigned, ...). Empty means a hoist is provably safe.
        self.unfixable_reasons: list[str] = []
        # The stdlib `ast` node of the def / lambda (rules read its body; the fixer finds it by source
        # order), and of the variable it is bound to.
        self.ast_node = ast_node
        self.binding_node = binding_node
        # The module's stdlib `ast` tree and the backend's position converter (`.span(node)` -> Span with
        # character columns, `.lines`), so body rules can report and edit inside `ast_node`.
        self.module_ast = module_ast
        self.positions = positions
        # The analysis' hoist_safety.ModuleSummary of `module_ast` (what the module does with its namespace),
        # so body rules asking whether a name is stable (name_stability.py) share its facts, computed on
        # first use, and its text checks that spare most modules a walk of the whole tree.
        self.module_summary = module_summary
        # The defs / lambdas around `ast_node`, outermost first (from the analysis' parent table), so body
        # rules need not search `module_ast` for them; None when not known (mask_bodies then searches).
        self.outer_functions = outer_functions
        # The same-module factory whose call returned this function (`padding_factory(lengths)`), if any.
        self.factory: str | None = None
        # Functions of this module it calls by name: id(the ast.Call in its body) -> what the callee may be
        # (only when every binding of the name is a def or a lambda). Lets rules follow `causal(b, h, q, kv)`.
        self.callees: dict[int, list[MaskFunction]] = {}
        # Set for nested functions (enclosing is not None): what a hoist would rewrite.
        self.site: HoistSite | None = None
        # A decorator may put another object in its place (a wrapper that calls it with other arguments, or
        # not at all): what the API receives is then unknown. False when undecorated, or when every decorator
        # is a function of this module that returns its argument unchanged.
        self.replaced_by_decorator = False
        # A function defined in another module of the project (analysis/imported_names.py): where
        # (`mypkg/masks.py:12`), and how its first parameters are read (`ParameterRead` values, in order),
        # as that module's analysis found; it has no `ast_node` here.
        self.defined_in: str | None = None
        self.known_reads: tuple[str, ...] = ()
        # Leading positional parameters bound before torch's arguments: `self` of a bound method
        # (`self.mmu_mask`), the positional arguments of `functools.partial(f, window)`.
        self.bound_positional = bound_positional
        self.bound_keywords = bound_keywords  # parameters `functools.partial` binds by keyword
        # Reached as a bound method (`self.mmu_mask`): torch 2.13's `_get_mod_type` counts its `self`, so
        # `create_block_mask`/`create_mask` refuse it (AssertionError / TypeError) while `flex_attention`
        # and `BlockMask.from_kv_blocks` call it as intended. Rules about those calls' sizes skip it.
        self.bound_method = False
        self.called_view: Any = None  # `called_as`, made once
        # How the analysis reached the function when no call passes it by name (mask_flow.py words it:
        # "via `and_masks(*masks)` at line 97", "recognised as a mask_mod by its parameters"); None when
        # some call passes it directly. Messages add it to the function's name (`rules.base.where`).
        self.route: str | None = None

    @property
    def called_as(self) -> Any:
        """The function as torch calls it: `ast_node`, or, when leading parameters are bound (a bound
        method, a partial), a copy of it whose parameters start at torch's first argument. Body facts are
        computed on this node; its body is the original's (the same nodes, the same positions)."""
        if self.bound_positional == 0 or self.ast_node is None:
            return self.ast_node
        if self.called_view is None:
            self.called_view = without_leading_parameters(self.ast_node, self.bound_positional)
        return self.called_view

    @property
    def nested(self) -> bool:
        return self.enclosing is not None

    @property
    def binds_values(self) -> bool:
        """A bound method or a partial: the object torch receives carries values (`self`, the partial's
        arguments) beyond the function, as a closure carries its captures."""
        return self.bound_positional > 0 or bool(self.bound_keywords)

    def captures_of(self, kind: CaptureKind) -> list[Capture]:
        return [c for c in self.captures if c.kind is kind]

    @property
    def hoist_blockers(self) -> list[str]:
        """Why this capture-free nested function still cannot be moved to module level (empty: it can).

        Rules set `fixable` from it and say why no fix is offered; the fixer applies exactly what it allows,
        apart from the rare cases only the whole module decides (the planner in fix/hoist.py), which it
        reports the same way."""
        reasons = list(self.unfixable_reasons)
        if self.definition_time_refs:
            refs = ", ".join(f"`{n}`" for n in self.definition_time_refs)
            reasons.append(f"its decorators or annotations read local {refs}")
        return reasons


def without_leading_parameters(node: Any, count: int) -> Any:
    """A shallow copy of a def/lambda whose first `count` positional parameters are gone (what a bound
    method or a partial presents to its caller); everything else is shared with `node`."""
    args = copy.copy(node.args)
    posonly = list(args.posonlyargs)
    regular = list(args.args)
    dropped = min(count, len(posonly))
    posonly = posonly[dropped:]
    regular = regular[count - dropped :]
    args.posonlyargs, args.args = posonly, regular
    remaining = len(posonly) + len(regular)
    args.defaults = list(args.defaults)[-remaining:] if remaining else []
    view = copy.copy(node)
    view.args = args
    return view


class CallArgument(NamedTuple):
    """One argument of an API call, bound to the API's parameter it fills."""

    parameter: str
    span: Span  # the value expression
    keyword_span: Span | None  # `name=value` as a whole, when passed by keyword
    # Where to cut to remove the argument with its separating comma; None when comments or anything but
    # whitespace sit in between (then no fix removes it).
    removal_span: Span | None = None
    node: Any = None  # the stdlib `ast` expression
    # The literal a name passed here always holds (`heads = 1` ... `H=heads`): its one binding in reach
    # assigns that literal (analysis/constants.py). None for a literal written here or anything else.
    bound_literal: Any = None

    @property
    def constant(self) -> object:
        """The literal value (`None`, `1`, `True`), written here or bound once to the name passed; else
        NOT_CONSTANT."""
        if isinstance(self.node, ast.Constant):
            return self.node.value
        if isinstance(self.bound_literal, ast.Constant):
            return self.bound_literal.value
        return NOT_CONSTANT


NOT_CONSTANT = object()


class VisibleCount(NamedTuple):
    """More than one batch (head) visible in the code (visible_sizes.py): what shows it, how many, where."""

    what: str  # the expression as written: `lengths`, `q`
    size: int  # its size in the position that counts (where the mask indexes it by `b`, or the batch of `q`)
    line: int  # where it is bound (a capture) or passed (a query)
    query: bool  # the query of a `flex_attention` call the BlockMask reaches; False: a tensor the mask indexes


class BlockMaskReach(NamedTuple):
    """Where the BlockMask a constructor call builds goes, and what the code does with it there
    (block_mask_reach.py)."""

    layout_used: frozenset[int]  # dimensions (0: batch, 1: head) whose layout the code visibly uses
    out_of_sight: str | None  # the first place it goes that the analysis cannot see into, in words
    indexed: bool  # the BlockMask, or one of its block tensors, is subscripted somewhere
    # It visibly meets attention: a `flex_attention` call, or `block_mask=`/`attention_mask=` of another call.
    attended: bool
    # Per dimension: what visibly shows more than one batch (head) where it is used, or None.
    larger: tuple[VisibleCount | None, VisibleCount | None]


class MaskUse:
    """One mask-function argument at one call of a FlexAttention mask API."""

    __slots__ = (
        "api",
        "arg_node",
        "arg_span",
        "arguments",
        "by_signature",
        "call_node",
        "call_span",
        "callee_compiled",
        "callee_is_api",
        "callee_span",
        "callee_stable",
        "caller",
        "compiled_alias_line",
        "functions",
        "functions_known",
        "mask_is_capture_free",
        "per_forward",
        "plain_vmap",
        "reach",
        "role",
        "routes",
        "torch_in_scope",
        "via_helper",
        "via_helper_defined_in",
    )
    _shown = ("api", "arg_span", "call_span", "functions", "caller", "role", "via_helper")
    __repr__ = record_repr

    def __init__(
        self,
        api: str,
        arg_span: Span,
        call_span: Span,
        functions: list[MaskFunction],
        caller: str | None,
        *,
        per_forward: bool = False,
        mask_is_capture_free: bool = False,
        arg_node: Any = None,
        role: str = MASK_MOD,
        functions_known: bool = False,
        arguments: dict[str, CallArgument] | None = None,
        callee_span: Span | None = None,
        torch_in_scope: bool = False,
        call_node: Any = None,
        callee_stable: bool = False,
    ) -> None:
        self.api = api  # qualified name of the API reached, e.g. torch.nn.attention.flex_attention.create_block_mask
        self.arg_span = arg_span  # the mask argument expression: findings are reported here (noqa goes on this line)
        self.call_span = call_span
        self.functions = functions  # what the argument may be (several through and_masks / branches)
        # Where the call is evaluated: the qualified name of the innermost function, and whether that
        # function is a module's `forward` (called on every step) with the call unconditionally in its body.
        self.caller = caller
        self.per_forward = per_forward
        # True when every mask function is known and captures nothing (module level or capture-free):
        # the BlockMask is then a pure function of the size arguments.
        self.mask_is_capture_free = mask_is_capture_free
        self.arg_node = arg_node  # the `ast` expression
        self.role = role
        # Every function the argument may be is known (no parameter, import, or unresolved value).
        self.functions_known = functions_known
        # The call's arguments by the API's parameter names (`B`, `H`, `_compile`, ...); empty when a
        # starred argument or a partial makes the binding unknown.
        self.arguments: dict[str, CallArgument] = arguments if arguments is not None else {}
        self.callee_span = callee_span  # the called expression, e.g. `create_block_mask` / `fa.create_block_mask`
        self.callee_is_api = False  # the callee names the API itself (not a wrapper, alias variable or partial)
        # ... and that name is certainly the API wherever the call runs: imported once, never rebound
        # (analysis/name_stability.py). Computed, like `torch_in_scope`, only for a call with `_compile=`.
        self.callee_stable = callee_stable
        # The name `torch` resolves to the torch module at the call (a fix may then write `torch.compile`);
        # computed only for a call with `_compile=` (ESP010), False otherwise.
        self.torch_in_scope = torch_in_scope
        # The call reaches the API through a same-module helper that passes its parameter on
        # (`make(causal, n)`): the helper's name; the arguments above are then those of the call inside it.
        self.via_helper: str | None = None
        # ... and where that helper is, when another module of the project defines it (`mypkg/attn.py:30`):
        # the arguments are then constants read there, reported at this call.
        self.via_helper_defined_in: str | None = None
        self.call_node = call_node  # the stdlib `ast.Call`
        # Where the BlockMask this call builds goes and whether its batch/head layout is used there (ESP009),
        # which `flex_attention` queries it meets (ESP007); set by call_flow.py where those rules need it
        # (block_mask_reach.BlockMaskReaches.asked), None otherwise.
        self.reach: BlockMaskReach | None = None
        # The call runs the mask under plain `vmap`: an uncompiled `create_block_mask`/`create_mask` reached
        # by its own name, no `_compile`, not inside a compiled function (call_sites.runs_under_plain_vmap).
        # Then builtin `min`/`max` on tensors fail; dynamo would have rewritten them (ESP008).
        self.plain_vmap = False
        # id(MaskFunction) -> how this use's argument reaches it when not by name ("via the `for` loop at
        # line 12"); functions passed by name, through variables and combinators, are not listed.
        self.routes: dict[int, str] = {}
        # No call is known: a function recognised by its parameters alone (mask_shapes.py). Only the body
        # rules (`Rule.needs_call` False) see such uses; `ModuleFacts.signature_uses` holds them.
        self.by_signature = False
        # The callee may hold `torch.compile(...)` of the API (`cbm = torch.compile(create_block_mask)`), and
        # the line of that assignment when the callee is certainly it at the call (call_sites.compiled_alias).
        self.callee_compiled = False
        self.compiled_alias_line: int | None = None

    @property
    def direct_functions(self) -> list[MaskFunction]:
        """The functions passed as such, not returned by a factory call (ESP001-ESP006 judge only these)."""
        return [f for f in self.functions if f.factory is None]


class AttentionCall:
    """One call of `flex_attention` (ESP013, ESP016)."""

    __slots__ = (
        "block_mask",
        "block_mask_functions",
        "call_node",
        "call_span",
        "callee_span",
        "compiled",
        "score_mod",
        "score_mod_is_block_mask",
        "score_mod_to_keyword",
    )
    _shown = (
        "call_span",
        "callee_span",
        "score_mod",
        "score_mod_is_block_mask",
        "score_mod_to_keyword",
        "block_mask",
        "block_mask_functions",
        "compiled",
    )
    __repr__ = record_repr

    def __init__(
        self,
        call_span: Span,
        callee_span: Span,
        score_mod: CallArgument | None,
        score_mod_is_block_mask: bool,
        score_mod_to_keyword: bool,
        block_mask: CallArgument | None,
        block_mask_functions: list[MaskFunction],
        compiled: bool | None,
        call_node: Any = None,
    ) -> None:
        self.call_span = call_span
        self.callee_span = callee_span
        self.score_mod = score_mod  # the 4th argument / `score_mod=`
        self.score_mod_is_block_mask = score_mod_is_block_mask  # ... is a BlockMask built in this module (ESP013)
        # The BlockMask in the score_mod slot can become `block_mask=` by inserting the keyword: it is the last
        # positional argument and no `block_mask=` is given.
        self.score_mod_to_keyword = score_mod_to_keyword
        self.block_mask = block_mask
        self.block_mask_functions = block_mask_functions  # what `block_mask=` resolves to when a function (ESP013)
        # True: called through `torch.compile(...)` or inside a compiled function; False: nothing in the
        # module compiles anything; None: the module compiles something, so this call may be compiled (ESP016).
        self.compiled = compiled
        self.call_node = call_node


class ModuleFacts:
    __slots__ = ("attention_calls", "call_flow", "signature_uses", "uses")
    _shown = ("uses", "attention_calls", "signature_uses")
    __repr__ = record_repr

    def __init__(self) -> None:
        self.uses: list[MaskUse] = []
        self.attention_calls: list[AttentionCall] = []
        # Mask and score functions no call passes, known by their parameters (`MaskUse.by_signature`): only
        # for the rules about the function's body, never for those whose claim needs the call.
        self.signature_uses: list[MaskUse] = []
        # Where BlockMasks go, kernel options, return_lse, ... (flow_model.CallFlow); set by module_facts.
        self.call_flow: Any = None
