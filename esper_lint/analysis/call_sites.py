"""Call-site facts the call-site rules (ESP007-ESP016) decide on: a call's arguments by parameter name,
what reaches `flex_attention`'s slots, whether a call is compiled or runs on every forward, and which of
`b`/`h` a mask function reads."""

from __future__ import annotations

import ast
import enum
import re
from collections.abc import Callable, Iterator

from ..core.apis import (
    BLOCK_MASK_CONSTRUCTORS,
    FLEX_ATTENTION,
    FLEX_ATTENTION_PARAMETERS,
    FLEX_MODULE,
    TRANSPARENT_WRAPPERS,
    ApiTable,
    MaskApi,
)
from ..core.span import Span
from . import name_stability
from .callees import Callees
from .constants import bound_literal
from .model import AttentionCall, CallArgument, MaskFunction
from .positions import Positions
from .resolution import Resolver
from .syntax import CONDITIONAL, FUNCTIONS, Argument, FuncNode, call_arguments


def _only_separator(text: str) -> bool:
    return text.replace(",", "", 1).strip() == "" and text.count(",") == 1


def removal_span(positions: Positions, items: list[Argument], index: int) -> Span | None:
    """Where to cut to remove argument `index` and one separating comma; None if anything else is in between
    (a comment, a parenthesis)."""
    node = items[index].node
    start, end = positions.start(node), positions.end(node)
    if index > 0:
        previous_end = positions.end(items[index - 1].node)
        if not _only_separator(positions.text_between(previous_end, start)):
            return None
        return Span(previous_end[0], previous_end[1] + 1, end[0], end[1] + 1)
    if index + 1 < len(items):
        next_start = positions.start(items[index + 1].node)
        if not _only_separator(positions.text_between(end, next_start)):
            return None
        return Span(start[0], start[1] + 1, next_start[0], next_start[1] + 1)
    return Span(start[0], start[1] + 1, end[0], end[1] + 1)


_JIT = re.compile(r"\bjit\b")


def mentions_compilation(text: str) -> bool:
    """The module may compile something (`torch.compile`, `_dynamo`, `jit`, even `re.compile`): ESP016 then
    cannot tell whether a `flex_attention` call runs compiled, and stays silent."""
    # `compile|_dynamo|\bjit\b` as one pattern, with the plain words found by substring search (much faster)
    return "compile" in text or "_dynamo" in text or ("jit" in text and _JIT.search(text) is not None)


class ParameterRead(enum.Enum):
    NEVER = "never"  # the name is not read anywhere in the function
    PASSED = "passed"  # read only as a whole argument of calls (another mask function may read it)
    DIRECT = "direct"  # read in an expression: indexing, comparison, arithmetic, ...
    UNKNOWN = "unknown"  # no such positional parameter, `*args`, or dynamic access (`locals()`, `eval`)


_DYNAMIC = frozenset({"locals", "vars", "eval", "exec"})
_MAX_CALL_DEPTH = 8

# A call that receives the parameter whole: the call, and the position it is passed at (None: by keyword,
# or after `*args`).
_Pass = tuple[ast.Call, int | None]


def _parameter_uses(
    fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, index: int
) -> tuple[ParameterRead, list[_Pass]]:
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    if index >= len(positional):
        return ParameterRead.UNKNOWN, []
    name = positional[index].arg
    roots: list[ast.AST] = [fn.body] if isinstance(fn, ast.Lambda) else list(fn.body)
    # One pass, keeping the parents of Names and keywords only (the answer does not depend on the order).
    parents: dict[int, ast.AST | None] = {}
    loads: list[ast.Name] = []
    stack: list[tuple[ast.AST, ast.AST | None]] = [(root, None) for root in roots]
    while stack:
        node, parent = stack.pop()
        if isinstance(node, ast.Name):
            if node.id in _DYNAMIC:
                return ParameterRead.UNKNOWN, []
            if node.id == name:
                if not isinstance(node.ctx, ast.Load):
                    return ParameterRead.UNKNOWN, []  # rebound or deleted: what is read is no longer `b`
                loads.append(node)
                parents[id(node)] = parent
            continue
        if isinstance(node, ast.keyword):
            parents[id(node)] = parent
        stack.extend((child, node) for child in ast.iter_child_nodes(node))
    if not loads:
        return ParameterRead.NEVER, []
    passes: list[_Pass] = []
    for load in loads:
        parent = parents.get(id(load))
        call = parents.get(id(parent)) if isinstance(parent, ast.keyword) else None
        if isinstance(call, ast.Call):
            passes.append((call, None))
        elif isinstance(parent, ast.Call) and parent.func is not load:
            before = parent.args[: next(i for i, a in enumerate(parent.args) if a is load)]
            starred = any(isinstance(a, ast.Starred) for a in before)
            passes.append((parent, None if starred else len(before)))
        else:
            return ParameterRead.DIRECT, []
    return ParameterRead.PASSED, passes


def parameter_read(fn: MaskFunction, index: int, _depth: int = 0) -> ParameterRead:
    """How positional parameter `index` of a mask function (0: `b`, 1: `h`) is read, following it into the
    same-module functions it is passed to (`causal(b, h, q, kv)`). Nested functions count too (a
    shadowing parameter there only makes the answer more cautious).

    DIRECT: some function reads it in an expression. NEVER: provably no function reads it. PASSED: it
    reaches a function we cannot see (or too deep), so it may or may not be read.
    """
    if fn.replaced_by_decorator:
        return ParameterRead.UNKNOWN  # a decorator's wrapper may read it (or call with other arguments)
    if fn.ast_node is None:  # defined in another module: as that module's analysis found (imported_names.py)
        known = fn.known_reads
        return ParameterRead(known[index]) if index < len(known) else ParameterRead.UNKNOWN
    kind, passes = _parameter_uses(fn.called_as, index)  # a bound method or partial: from torch's first argument
    if kind is not ParameterRead.PASSED:
        return kind
    outcomes: set[ParameterRead] = set()
    for call, position in passes:
        callees = fn.callees.get(id(call))
        if position is None or not callees or _depth >= _MAX_CALL_DEPTH:
            outcomes.add(ParameterRead.PASSED)
            continue
        outcomes.update(parameter_read(callee, position, _depth + 1) for callee in callees)
    if ParameterRead.DIRECT in outcomes:
        return ParameterRead.DIRECT
    return ParameterRead.NEVER if outcomes == {ParameterRead.NEVER} else ParameterRead.PASSED


_FLEX_FALLBACK = MaskApi(FLEX_ATTENTION, 3, "score_mod", role="score_mod")
# The APIs that call the mask under `torch.vmap` (create_block_mask calls create_mask): uncompiled, Python
# runs the body on batched tensors; compiled, dynamo traces it (and rewrites builtins such as min/max).
VMAP_APIS = frozenset(f"{FLEX_MODULE}.{n}" for n in ("create_block_mask", "create_mask", "create_nested_block_mask"))
_COMPILERS = frozenset({"torch.compile", "torch._dynamo.optimize"})


class CallSiteFacts:
    """Facts of one call: its arguments by parameter name, the `flex_attention` call it feeds, ..."""

    def __init__(
        self,
        resolver: Resolver,
        callees: Callees,
        apis: ApiTable,
        resolve_mask_expr: Callable[[ast.expr, set[int]], tuple[list[MaskFunction], bool]],
    ) -> None:
        self.apis = apis
        self.resolver = resolver
        self.tree = resolver.tree
        self.text = resolver.text
        self.positions = resolver.positions
        self.top_index = resolver.top_index
        self.module_summary = resolver.module_summary
        self.scopes = resolver.scopes
        self.parent = resolver.parent
        self.ancestors = resolver.ancestors
        self.enclosing_function = resolver.enclosing_function
        self.bindings = resolver.bindings
        self.qualified_names = resolver.qualified_names
        self.resolve_callable = callees.resolve_callable
        self.imported_wrappers = callees.imported_wrappers
        self.attribute_values = callees.attribute_values
        self.resolve_mask_expr = resolve_mask_expr
        self._compiled_defs: set[int] | None = None  # defs passed by name to `torch.compile`, found once
        self._compiled: dict[int, bool] = {}  # id(def) -> compiled_function's answer
        self._beside_compile: frozenset[str] = frozenset()  # names skipped code spells with `compile`

    def attention_call(self, call: ast.Call) -> AttentionCall:
        args = self.bind_arguments(call, self.apis.get(FLEX_ATTENTION) or _FLEX_FALLBACK)
        score_mod = args.get("score_mod")
        block_mask = args.get("block_mask")
        is_block_mask = score_mod is not None and self.is_block_mask(score_mod.node, set())
        items = call_arguments(call)
        positional = [a.node for a in items if not a.star and not isinstance(a.node, ast.keyword)]
        to_keyword = (
            is_block_mask
            and self.stable_callee(call, FLEX_ATTENTION)
            and score_mod is not None
            and score_mod.keyword_span is None
            and block_mask is None
            and not any(a.star for a in items)
            and positional[-1] is score_mod.node
        )
        functions: list[MaskFunction] = []
        if block_mask is not None:
            found, known = self.resolve_mask_expr(block_mask.node, set())
            functions = found if known else []
        return AttentionCall(
            call_span=self.positions.span(call),
            callee_span=self.positions.span(call.func),
            score_mod=score_mod,
            score_mod_is_block_mask=is_block_mask,
            score_mod_to_keyword=to_keyword,
            block_mask=block_mask,
            block_mask_functions=functions,
            compiled=self.may_be_compiled(call),
            call_node=call,
        )

    def bind_arguments(self, call: ast.Call, api: MaskApi) -> dict[str, CallArgument]:
        """The call's arguments by parameter name; positions after `*args` and anything with `**` unknown."""
        if not api.parameters:
            return {}
        items = call_arguments(call)
        if any(item.star == "**" for item in items):
            return {}
        bound: dict[str, CallArgument] = {}
        positional = 0
        star_seen = False
        for i, item in enumerate(items):
            node = item.node
            if item.star == "*":
                star_seen = True
                continue
            if isinstance(node, ast.keyword):
                assert node.arg is not None
                removal = removal_span(self.positions, items, i)
                literal = self.literal_of(node.value)
                bound[node.arg] = CallArgument(
                    node.arg, self.positions.span(node.value), self.positions.span(node), removal, node.value, literal
                )
            elif not star_seen and positional < len(api.parameters):
                name = api.parameters[positional]
                bound[name] = CallArgument(name, self.positions.span(node), None, None, node, self.literal_of(node))
                positional += 1
        return bound

    def literal_of(self, value: ast.AST) -> ast.Constant | None:
        """The literal a name passed as an argument always holds (`heads = 1` ... `H=heads`)."""
        return bound_literal(value, self.resolver) if isinstance(value, ast.Name) else None

    def torch_in_scope(self, call: ast.Call) -> bool:
        """`torch` at this call is certainly the torch module: it reads module level, where `import torch`
        binds it once, before the call's top-level statement, and nothing rebinds it (name_stability.py)."""
        scope = self.scopes.scope_of.get(id(call))
        if scope is None:
            return False
        found = scope.resolve("torch")
        if len(found) != 1 or found[0].scope is not self.scopes.module:
            return False
        return name_stability.stable_import(self.tree, "torch", "torch", self.top_index(call), self.module_summary())

    def stable_callee(self, call: ast.Call, qualified: str) -> bool:
        """The callee is a name that is certainly `qualified` where it is called: it reads module level, where
        one import binds it, before the call's top-level statement, and nothing rebinds it (name_stability.py).
        A fix that relies on what the call does (ESP010, ESP013) needs this; findings do not."""
        chain: list[str] = []
        base: ast.expr = call.func
        while isinstance(base, ast.Attribute):  # `fa.create_block_mask`
            chain.insert(0, base.attr)
            base = base.value
        if not isinstance(base, ast.Name):
            return False
        found = self.bindings(base)
        if len(found) != 1 or found[0].scope is not self.scopes.module:
            return False
        top, summary = self.top_index(call), self.module_summary()
        # The fix keeps the callee where it is read: unbound, it raises the same NameError before and after.
        if chain:
            return name_stability.stable_attribute(self.tree, [base.id, *chain], qualified, top, summary, ran=False)
        return name_stability.stable_import(self.tree, base.id, qualified, top, summary, ran=False)

    def is_block_mask(self, expr: ast.expr, seen: set[int]) -> bool:
        """A value built by `create_block_mask` & co. in this module (a call, or a name bound only to one)."""
        if id(expr) in seen:
            return False
        seen.add(id(expr))
        if isinstance(expr, ast.Call):
            ambiguous = isinstance(expr.func, ast.Name) and len(self.bindings(expr.func)) > 1
            if not ambiguous and self.qualified_names(expr.func) & BLOCK_MASK_CONSTRUCTORS:
                return True
            resolved = self.resolve_callable(expr.func, set())  # several bindings: each must be one
            return any(r.api.qualified_name in BLOCK_MASK_CONSTRUCTORS for r in resolved)
        if isinstance(expr, ast.Name):
            bindings = self.bindings(expr)
            return bool(bindings) and all(
                b.kind == "store" and b.value is not None and self.is_block_mask(b.value, seen) for b in bindings
            )
        return False

    def is_block_mask_slot(self, value: ast.expr) -> bool:
        """`value` is passed as `block_mask` (keyword, or 5th positional) to a `flex_attention` call."""
        parent = self.parent(value)
        if isinstance(parent, ast.keyword):
            call = self.parent(parent)
            if parent.arg != "block_mask" or not isinstance(call, ast.Call):
                return False
        elif isinstance(parent, ast.Call):
            call = parent
            if any(isinstance(a, ast.Starred) for a in call.args) or value not in call.args:
                return False
            if call.args.index(value) != FLEX_ATTENTION_PARAMETERS.index("block_mask"):
                return False
        else:
            return False
        return any(r.api.qualified_name == FLEX_ATTENTION for r in self.resolve_callable(call.func, set()))

    def may_be_compiled(self, call: ast.Call) -> bool | None:
        """True: called through `torch.compile`; None: something in the module compiles; False: nothing does."""
        for wrapper in self.wrappers_of(call.func, set()):
            if wrapper == "torch.compile":
                return True
        return None if mentions_compilation(self.text) else False

    def runs_under_plain_vmap(self, call: ast.Call, api: str, arguments: dict[str, CallArgument]) -> bool:
        """The call runs its mask under plain `vmap`: a vmap API reached without `torch.compile` around it
        (nor a name that may hold a compiled one), no `_compile` other than a literal False, and not inside a
        function this module compiles (decorated, or passed to `torch.compile` by name)."""
        if api not in VMAP_APIS:
            return False
        flag = arguments.get("_compile")
        if flag is not None and flag.constant is not False:
            return False
        if any(w in _COMPILERS for w in self.wrappers_of(call.func, set())):
            return False
        return not any(self.compiled_function(f) for f in self.ancestors(call) if isinstance(f, FUNCTIONS))

    def callee_may_be_compiled(self, call: ast.Call) -> bool:
        """Some binding the callee may read holds `torch.compile(...)` of it (`cbm = torch.compile(cbm)`)."""
        return any(w in _COMPILERS for w in self.wrappers_of(call.func, set()))

    def compiled_alias(self, call: ast.Call, api: str) -> ast.Assign | None:
        """`create_block_mask = torch.compile(create_block_mask, dynamic=False)` when the callee is certainly
        that compiled function at the call: the name's last binding in its scope, a statement of that scope's
        own body (it always runs), made before the call can run (the call comes after it, or sits in a def
        that comes after it), only imports of the API before it, and no `global`/`nonlocal`/`del` of it."""
        func = call.func
        if not isinstance(func, ast.Name):
            return None
        visible = self.bindings(func)
        if not visible:
            return None
        scope = visible[0].scope
        every = scope.bindings.get(func.id, [])
        last = every[-1] if every else None
        if last is None or last.kind != "store" or any(b.scope is not scope for b in visible):
            return None
        if func.id in scope.deleted or any(func.id in s.overwrites for s in self.scopes.made):
            return None
        assign = self.parent(last.node) if last.node is not None else None
        value = last.value
        if not isinstance(assign, ast.Assign) or len(assign.targets) != 1 or not isinstance(value, ast.Call):
            return None
        if not (self.qualified_names(value.func) & _COMPILERS) or len(value.args) != 1:
            return None
        inner = value.args[0]
        if not isinstance(inner, (ast.Name, ast.Attribute)) or api not in self.qualified_names(inner):
            return None
        if not all(b.kind == "import" and api in b.qualified_names(b.name) for b in every[:-1]):
            return None
        body = getattr(scope.node, "body", None) if scope.node is not None else self.resolver.tree.body
        if not isinstance(body, list) or not any(stmt is assign for stmt in body):
            return None  # under an `if`, a `try`, a loop: it may not have run
        index = {id(stmt): i for i, stmt in enumerate(body)}
        statement = next((a for a in (call, *self.ancestors(call)) if id(a) in index), None)
        return assign if statement is not None and index[id(statement)] > index[id(assign)] else None

    def compiled_function(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """A def this module compiles: decorated with `torch.compile`, or passed to it by name (also in code the
        walk skipped, judged on its text: a skipped def that spells the name and `compile`)."""
        known = self._compiled.get(id(func))
        if known is not None:
            return known
        compiled = False
        for decorator in func.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if self.qualified_names(target) & _COMPILERS:
                compiled = True
        if self._compiled_defs is None:
            self._compiled_defs = set()
            for call in self.scopes.calls:
                if call.args and isinstance(call.args[0], ast.Name) and self.qualified_names(call.func) & _COMPILERS:
                    self._compiled_defs.update(id(b.node) for b in self.bindings(call.args[0]) if b.kind == "def")
            self._beside_compile = self.resolver.unseen_words_beside("compile")
        compiled = compiled or id(func) in self._compiled_defs or func.name in self._beside_compile
        self._compiled[id(func)] = compiled
        return compiled

    def wrappers_of(self, expr: ast.expr, seen: set[int]) -> Iterator[str]:
        if id(expr) in seen:
            return
        seen.add(id(expr))
        if isinstance(expr, ast.Call):
            yield from self.qualified_names(expr.func) & TRANSPARENT_WRAPPERS
            if expr.args:
                yield from self.wrappers_of(expr.args[0], seen)
        elif isinstance(expr, ast.Name):
            for binding in self.bindings(expr):
                if binding.kind == "store" and binding.value is not None:
                    yield from self.wrappers_of(binding.value, seen)
            yield from self.imported_wrappers(expr)  # `compiled_create_block_mask` from a project module
        elif isinstance(expr, ast.Attribute):
            yield from self.imported_wrappers(expr)
            if self.resolve_callable(expr, set()):  # a class attribute every write of which is the API
                for value in self.attribute_values(expr) or ():
                    yield from self.wrappers_of(value, seen)

    def runs_every_forward(self, call: ast.Call, caller: FuncNode | None) -> bool:
        if not isinstance(caller, (ast.FunctionDef, ast.AsyncFunctionDef)) or caller.name != "forward":
            return False
        cls = self.parent(caller)
        if not isinstance(cls, ast.ClassDef) or not any(s is caller for s in cls.body):
            return False
        for anc in self.ancestors(call):
            if anc is caller:
                return True
            if isinstance(anc, CONDITIONAL):  # also covers else/except/finally: they sit under these
                return False
        return False
