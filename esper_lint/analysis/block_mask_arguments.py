"""What a `create_block_mask` call is given: an `H` that counts key/value heads (ESP019), and whether the call
is compiled, with which lengths (ESP030).

Key/value heads are recognised two ways: `X.shape[1]` / `X.size(1)` (or `-3`) of a variable that is passed
as `key` or `value` (never as `query`) to a `flex_attention` call of this module (the same binding); and a
name or attribute spelled as the number of key/value heads is conventionally spelled (`n_kv_heads`,
`num_key_value_heads`, ...), directly or through a local bound once to one of these.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
from collections.abc import Iterator

from ..core.apis import FLEX_ATTENTION, PARTIAL, TRANSPARENT_WRAPPERS
from ..core.noqa import SourceLines
from ..core.span import Span
from .callees import Callees
from .flow_model import BlockMaskBuild, HeadsFromKv
from .model import NOT_CONSTANT, CallArgument, MaskUse
from .resolution import Resolver

KV_HEAD_NAMES = frozenset(
    {
        "n_kv_heads",
        "num_kv_heads",
        "num_key_value_heads",
        "n_kv_head",
        "num_kv_head",
        "kv_heads",
        "n_heads_kv",
        "num_heads_kv",
        "n_head_kv",
        "kv_n_heads",
        "kv_num_heads",
        "n_local_kv_heads",
        "num_local_kv_heads",
    }
)
_HEAD_DIMENSIONS = (1, -3)  # flex_attention's tensors are (B, H, S, D)
_TORCH_COMPILE = "torch.compile"
_COMPILATION = re.compile(r"compile|_dynamo|\bjit\b")
# Below this many positions a literal length costs the eager path little (measured at 4096: +160 MB, 0.28 s).
LARGE_LENGTH = 4096
_MAX_DEPTH = 3


class BlockMaskArguments:
    def __init__(self, resolver: Resolver, callees: Callees) -> None:
        self.resolver = resolver
        self.positions = resolver.positions
        self.bindings = resolver.bindings
        self.callees = callees
        self._compiles_only_flex: bool | None = None

    # ----------------------------------------------------------------- ESP019
    def heads_from_kv(
        self, use: MaskUse, attention: list[tuple[ast.Call, dict[str, CallArgument]]]
    ) -> HeadsFromKv | None:
        arg = use.arguments.get("H")
        if arg is None or arg.node is None:
            return None
        evidence = self._kv_heads(arg.node, attention, 0)
        return HeadsFromKv(use, arg.span, evidence) if evidence else None

    def _kv_heads(
        self, expr: ast.expr, attention: list[tuple[ast.Call, dict[str, CallArgument]]], depth: int
    ) -> str | None:
        text = f"`{self.positions.segment(expr)}`"
        last = expr.attr if isinstance(expr, ast.Attribute) else expr.id if isinstance(expr, ast.Name) else None
        if last in KV_HEAD_NAMES:
            return text
        tensor = _head_count_of(expr)
        if tensor is not None:
            line = self._passed_as_key_or_value(tensor, attention)
            if line is not None:
                return f"{text}, where `{tensor.id}` is the key/value of flex_attention on line {line}"
            return None
        if isinstance(expr, ast.Name) and depth < _MAX_DEPTH:
            bindings = self.bindings(expr)
            if len(bindings) == 1 and bindings[0].kind == "store" and bindings[0].value is not None:
                inner = self._kv_heads(bindings[0].value, attention, depth + 1)
                return f"{text}, bound to {inner}" if inner else None
        return None

    def _passed_as_key_or_value(
        self, tensor: ast.Name, attention: list[tuple[ast.Call, dict[str, CallArgument]]]
    ) -> int | None:
        ids = {id(b) for b in self.bindings(tensor)}
        if not ids:
            return None
        for call, arguments in attention:
            slots = {name: self._same(arguments.get(name), ids) for name in ("query", "key", "value")}
            if (slots["key"] or slots["value"]) and not slots["query"]:
                return call.lineno
        return None

    def _same(self, arg: CallArgument | None, ids: set[int]) -> bool:
        node = arg.node if arg is not None else None
        return isinstance(node, ast.Name) and any(id(b) in ids for b in self.bindings(node))

    # ----------------------------------------------------------------- ESP030
    def build(self, use: MaskUse) -> BlockMaskBuild:
        call = use.call_node
        from_shape = configured = None
        constants: list[int] = []
        for parameter in ("Q_LEN", "KV_LEN"):
            arg = use.arguments.get(parameter)
            if arg is None or arg.node is None:
                continue
            kind = self._length_kind(arg.node, 0)
            if isinstance(kind, int):
                constants.append(kind)
            elif kind == "shape":
                from_shape = from_shape or self.positions.segment(arg.node)
            elif kind == "attribute":
                configured = configured or self.positions.segment(arg.node)
        largest = max(constants, default=None)
        compile_calls = list(self._compile_calls(call.func, set()))
        dynamic_false: Span | None = None
        for compile_call in compile_calls:
            for keyword in compile_call.keywords:
                value = keyword.value
                if keyword.arg == "dynamic" and isinstance(value, ast.Constant) and value.value is False:
                    dynamic_false = self.positions.span(keyword)
        flag = use.arguments.get("_compile")
        compiled: bool | None = None
        if (
            compile_calls
            or (flag is not None and flag.constant not in (False, None))
            or self._in_compiled_function(call)
        ):
            compiled = True
        elif flag is not None and flag.constant is NOT_CONSTANT:
            compiled = None
        elif from_shape or configured or (largest is not None and largest >= LARGE_LENGTH):
            compiled = False if self._compiles_nothing_else() else None  # the module-wide check, only if it matters
        return BlockMaskBuild(use, compiled, dynamic_false, from_shape, configured, largest)

    def _length_kind(self, expr: ast.expr, depth: int) -> int | str | None:
        """An int constant; "shape" for a tensor's size (`q.shape[-2]`, `x.size(1)`), which varies with the
        input; "attribute" for a configured value (`config.max_seq_len`, `self.max_len`); None: unknown."""
        if isinstance(expr, ast.Constant):
            return expr.value if type(expr.value) is int else None
        if _size_of(expr) is not None:
            return "shape"
        if isinstance(expr, ast.Attribute) and _is_dotted(expr):
            return "attribute"
        if isinstance(expr, ast.Name) and depth < _MAX_DEPTH:
            bindings = self.bindings(expr)
            if not bindings or any(b.kind != "store" or b.value is None for b in bindings):
                return None
            kinds = {self._length_kind(b.value, depth + 1) for b in bindings if b.value is not None}
            return kinds.pop() if len(kinds) == 1 else None
        return None

    def _compile_calls(self, expr: ast.expr, seen: set[int]) -> Iterator[ast.Call]:
        """The `torch.compile(...)` calls the callee goes through (`torch.compile(create_block_mask)`, a
        variable bound to one, `partial(...)` of one)."""
        if id(expr) in seen:
            return
        seen.add(id(expr))
        if isinstance(expr, ast.Call):
            names = self.resolver.qualified_names(expr.func)
            if _TORCH_COMPILE in names:
                yield expr
            if names & (TRANSPARENT_WRAPPERS | {PARTIAL}) and expr.args:
                yield from self._compile_calls(expr.args[0], seen)
        elif isinstance(expr, ast.Name):
            for binding in self.bindings(expr):
                if binding.kind == "store" and binding.value is not None:
                    yield from self._compile_calls(binding.value, seen)

    def _in_compiled_function(self, node: ast.AST) -> bool:
        """Inside a function decorated with `@torch.compile` (or `@torch.compile(...)`)."""
        for ancestor in self.resolver.ancestors(node):
            for decorator in getattr(ancestor, "decorator_list", ()):
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if _TORCH_COMPILE in self.resolver.qualified_names(target):
                    return True
        return False

    def _compiles_nothing_else(self) -> bool:
        """No code of the module names compilation (`torch.compile`, `_dynamo`, `jit`, any `*compile*`) but
        to compile `flex_attention` (`torch.compile(flex_attention)`) or to say `_compile=False`: nothing in
        it can compile `create_block_mask` (or a caller of it). Comments and strings do not count."""
        if self._compiles_only_flex is None:
            self._compiles_only_flex = not self._names_compilation()
        return self._compiles_only_flex

    def _names_compilation(self) -> bool:
        text = self.resolver.text
        matches = list(_COMPILATION.finditer(text))
        if not matches:
            return False
        excluded: list[tuple[tuple[int, int], tuple[int, int]]] = []
        for call in self.resolver.scopes.calls:
            if self._compiles_flex_attention(call):
                excluded.append((self.positions.start(call), self.positions.end(call)))
            for keyword in call.keywords:
                value = keyword.value
                if keyword.arg == "_compile" and isinstance(value, ast.Constant) and value.value is False:
                    excluded.append((self.positions.start(keyword), self.positions.end(keyword)))
        lines = self.positions.lines
        starts = list(itertools.accumulate((len(line) for line in lines), initial=0))
        source = SourceLines(text, self.resolver.tree)
        for match in matches:
            number = bisect.bisect_right(starts, match.start())
            column = match.start() - starts[number - 1]
            if any(start <= (number, column) < end for start, end in excluded):
                continue
            byte_column = len(lines[number - 1][:column].encode("utf-8", "surrogatepass"))
            if source.in_code(number, byte_column) is not False:
                return True  # in code (or the tree cannot tell)
        return False

    def _compiles_flex_attention(self, call: ast.Call) -> bool:
        if not call.args or _TORCH_COMPILE not in self.resolver.qualified_names(call.func):
            return False
        return any(r.api.qualified_name == FLEX_ATTENTION for r in self.callees.resolve_callable(call.args[0], set()))


def _head_count_of(expr: ast.expr) -> ast.Name | None:
    """`X.shape[1]`, `X.size(1)`, `X.size()[1]` (or -3): the tensor X."""
    if isinstance(expr, ast.Subscript):
        index = _int_literal(expr.slice)
        base = expr.value
        if index not in _HEAD_DIMENSIONS:
            return None
        if isinstance(base, ast.Attribute) and base.attr == "shape" and isinstance(base.value, ast.Name):
            return base.value
        if (
            isinstance(base, ast.Call)
            and isinstance(base.func, ast.Attribute)
            and base.func.attr == "size"
            and not base.args
            and isinstance(base.func.value, ast.Name)
        ):
            return base.func.value
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "size"
        and len(expr.args) == 1
        and _int_literal(expr.args[0]) in _HEAD_DIMENSIONS
        and isinstance(expr.func.value, ast.Name)
    ):
        return expr.func.value
    return None


def _size_of(expr: ast.expr) -> ast.expr | None:
    """`X.shape[i]`, `X.size(i)`, `X.size()[i]`: the tensor expression X (any dimension)."""
    if isinstance(expr, ast.Subscript):
        base = expr.value
        if isinstance(base, ast.Attribute) and base.attr == "shape":
            return base.value
        if isinstance(base, ast.Call) and isinstance(base.func, ast.Attribute) and base.func.attr == "size":
            return base.func.value
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "size" and expr.args:
        return expr.func.value
    return None


def _is_dotted(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _int_literal(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_literal(node.operand)
        return -inner if inner is not None else None
    return None
