"""The sizes code visibly gives a tensor's (or a sequence's) dimensions: `torch.randn(2, 4, S, D)`,
`torch.tensor([[...], [...]])`, `[a, b, c]`, `x.view(B, H, -1)`, through names bound once to them, with
ints bound once to literals (`B = 2`, `B, H, S, D = 2, 4, 256, 16`).

ESP007 asks it whether more than one batch (head) is visible where a mask reading `b` (`h`) gets `B=1`
(`H=1`): a captured tensor the mask indexes by `b`, or the query the BlockMask meets in `flex_attention`.
Anything else (a parameter, a value computed at run time, a name bound twice) has no visible size.
"""

from __future__ import annotations

import ast

from .model import MaskFunction, VisibleCount
from .resolution import Resolver

_MAX_DEPTH = 6
# torch factories whose positional arguments (or one tuple/list argument, or `size=`) are the sizes.
_SIZED_FACTORIES = frozenset(f"torch.{n}" for n in ("randn", "rand", "zeros", "ones", "empty"))
_SIZE_FIRST = frozenset({"torch.full"})  # `torch.full(size, fill_value)`
_DATA_FACTORIES = frozenset(f"torch.{n}" for n in ("tensor", "as_tensor"))
_LIKE = frozenset(f"torch.{n}_like" for n in ("randn", "rand", "zeros", "ones", "empty", "full", "randint"))
_RESHAPES = frozenset({"view", "reshape", "expand"})
# Tensor methods that keep the shape of their receiver.
_SAME_SHAPE = frozenset(
    {"to", "cuda", "cpu", "float", "half", "bfloat16", "int", "long", "bool", "contiguous", "clone", "detach"}
    | {"requires_grad_"}
)


class VisibleSizes:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    def dimension(self, expr: ast.expr, dim: int, depth: int = 0) -> int | None:
        """The size `expr`'s dimension `dim` visibly has, or None."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(expr, ast.Name):
            value = self.only_value(expr)
            return self.dimension(value, dim, depth + 1) if value is not None else None
        if isinstance(expr, (ast.List, ast.Tuple)):
            if any(isinstance(e, ast.Starred) for e in expr.elts):
                return None
            if dim == 0:
                return len(expr.elts)
            return self.dimension(expr.elts[0], dim - 1, depth + 1) if expr.elts else None
        if isinstance(expr, ast.Call):
            return self._call_dimension(expr, dim, depth)
        return None

    def _call_dimension(self, call: ast.Call, dim: int, depth: int) -> int | None:
        func = call.func
        names = self.resolver.qualified_names(func) if isinstance(func, (ast.Name, ast.Attribute)) else set()
        if names & _SIZED_FACTORIES:
            return self._size_at(_sizes_of(call.args, call.keywords), dim, depth)
        if names & _SIZE_FIRST:
            size = call.args[0] if call.args else _keyword(call, "size")
            return self._size_at([size] if size is not None else None, dim, depth)
        if names & _DATA_FACTORIES:
            data = call.args[0] if call.args else _keyword(call, "data")
            return self.dimension(data, dim, depth + 1) if data is not None else None
        if names & _LIKE:
            return self.dimension(call.args[0], dim, depth + 1) if call.args else None
        if "torch.arange" in names and dim == 0 and len(call.args) == 1 and not call.keywords:
            return self.int_value(call.args[0], depth + 1)
        if isinstance(func, ast.Attribute):
            if func.attr in _RESHAPES:
                return self._size_at(_sizes_of(call.args, call.keywords), dim, depth)
            if func.attr in _SAME_SHAPE:
                return self.dimension(func.value, dim, depth + 1)
        return None

    def _size_at(self, sizes: list[ast.expr] | None, dim: int, depth: int) -> int | None:
        if sizes is None:
            return None
        if len(sizes) == 1 and isinstance(sizes[0], (ast.Tuple, ast.List)):
            sizes = list(sizes[0].elts)
        if any(isinstance(s, ast.Starred) for s in sizes) or dim >= len(sizes):
            return None
        value = self.int_value(sizes[dim], depth + 1)
        return value if value is not None and value >= 0 else None

    def int_value(self, expr: ast.expr, depth: int = 0) -> int | None:
        """An int literal, or a name bound once to one (also by unpacking a tuple of literals)."""
        if isinstance(expr, ast.Constant):
            return expr.value if type(expr.value) is int else None
        if isinstance(expr, ast.Name) and depth <= _MAX_DEPTH:
            value = self.only_value(expr)
            return self.int_value(value, depth + 1) if value is not None else None
        return None

    def only_value(self, name: ast.Name) -> ast.expr | None:
        """The value of the one binding `name` reads: `name = value`, or an element of `a, name = x, value`."""
        bindings = self.resolver.bindings(name)
        if len(bindings) != 1 or bindings[0].kind != "store":
            return None
        binding = bindings[0]
        if binding.value is not None:
            return binding.value
        target = binding.node
        tuple_target = self.resolver.parent(target) if target is not None else None
        assign = self.resolver.parent(tuple_target) if tuple_target is not None else None
        if (
            isinstance(tuple_target, ast.Tuple)
            and isinstance(assign, ast.Assign)
            and len(assign.targets) == 1
            and assign.targets[0] is tuple_target
            and isinstance(assign.value, ast.Tuple)
            and len(assign.value.elts) == len(tuple_target.elts)
            and not any(isinstance(e, ast.Starred) for e in (*assign.value.elts, *tuple_target.elts))
        ):
            return assign.value.elts[tuple_target.elts.index(target)]  # type: ignore[arg-type]
        return None

    # ----------------------------------------------------------------- what ESP007 asks
    def indexed_capture(self, fn: MaskFunction, index: int) -> VisibleCount | None:
        """A tensor the mask function captures and indexes by its parameter `index` (`lengths[b]`,
        `docs[b, q_idx]`), whose size in that position is visibly above 1."""
        node, called = fn.ast_node, fn.called_as  # parameters as torch passes them (after a bound `self`)
        if node is None or called is None:
            return None
        positional = [*called.args.posonlyargs, *called.args.args]
        if index >= len(positional):
            return None
        parameter = positional[index].arg
        roots = [node.body] if isinstance(node, ast.Lambda) else list(node.body)
        for root in roots:
            for sub in ast.walk(root):
                if not isinstance(sub, ast.Subscript) or not isinstance(sub.value, ast.Name):
                    continue
                items = sub.slice.elts if isinstance(sub.slice, ast.Tuple) else [sub.slice]
                if any(isinstance(i, ast.Starred) or (isinstance(i, ast.Constant) and i.value is ...) for i in items):
                    continue
                for position, item in enumerate(items):
                    if not (isinstance(item, ast.Name) and item.id == parameter):
                        continue
                    if not self._captured(sub.value, node):
                        continue
                    size = self.dimension(sub.value, position)
                    if size is not None and size > 1:
                        return VisibleCount(sub.value.id, size, self._bound_line(sub.value), False)
        return None

    def _captured(self, name: ast.Name, function: ast.AST) -> bool:
        """`name` reads a binding outside the function (a closure variable or a module global)."""
        bindings = self.resolver.bindings(name)
        return bool(bindings) and all(b.scope.node is not function for b in bindings)

    def _bound_line(self, name: ast.Name) -> int:
        bindings = self.resolver.bindings(name)
        node = bindings[0].node if bindings else None
        return getattr(node, "lineno", name.lineno)

    def query_count(self, query: ast.expr, dim: int) -> VisibleCount | None:
        """The query of a `flex_attention` call, with more than one batch (`dim` 0) or head (`dim` 1)."""
        size = self.dimension(query, dim)
        if size is None or size <= 1:
            return None
        text = self.resolver.positions.segment(query)
        return VisibleCount(text, size, query.lineno, True)


def _sizes_of(args: list[ast.expr], keywords: list[ast.keyword]) -> list[ast.expr] | None:
    size = next((k.value for k in keywords if k.arg == "size"), None)
    if size is not None:
        return [size]
    return list(args) if args else None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)
