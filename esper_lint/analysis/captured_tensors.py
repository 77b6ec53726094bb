"""Facts for ESP024: a mask/score function reads a captured one-element tensor where a 0-d value is meant.

`offset = torch.tensor([16])` has shape (1,), not (): every element the function computes from it gets
that extra dimension, so `create_block_mask` fails (`ValueError: too many values to unpack (expected 4)`),
`create_mask` returns a 5-D mask, and eager `flex_attention` fails on the score's shape (torch 2.13 CPU).

A capture counts when the name the body reads is bound, once, in the scope Python resolves it to (a
function around it, or module level), to `torch.tensor([x])`/`torch.as_tensor([x])` (one element, not
starred, not a nested list), `torch.ones(1)`/`torch.zeros(1)`/`torch.full((1,), v)`, or a one-element
slice `t[i:i+1]`, `t[:1]`, `t[0:1]`, `t[-1:]`; and the read is elementwise arithmetic or a comparison
(`q_idx + offset`, `kv_idx < offset`, an argument of `torch.where`/`minimum`/`maximum`/`clamp`), not
`offset[0]`, `offset.item()` or `offset.shape`, which give a 0-d value or metadata.

The fix (`torch.tensor([x])` -> `torch.tensor(x)`) changes the tensor's shape, which anything else
reading it may see. It is exact only when nothing can observe the old shape except calls that fail with
it: see `fix_is_exact`.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import NamedTuple

from .mask_bodies import FuncNode, local_names, names_torch_module, torch_imported, walk_body
from .name_bindings import Binding, resolve_free_name

_LITERAL_CONSTRUCTORS = frozenset({"tensor", "as_tensor"})
_FILLED_CONSTRUCTORS = frozenset({"ones", "zeros", "empty"})
_ELEMENTWISE_TORCH = frozenset({"where", "minimum", "maximum", "clamp", "fmin", "fmax", "remainder", "fmod"})


class OneElementCapture(NamedTuple):
    read: ast.Name  # the elementwise read in the mask/score function
    binding: Binding  # where the name is bound (its only binding)
    value: ast.expr  # `torch.tensor([16])`, `lengths[i:i+1]`, ...
    # The one-element list display inside `torch.tensor([x])` when `x` is a number literal: the fix
    # replaces the display by `x`. None for the other forms (no fix).
    display: ast.List | ast.Tuple | None


def one_element_captures(
    module: ast.Module | None, node: FuncNode, outer: Sequence[FuncNode] | None = None
) -> list[OneElementCapture]:
    """The first elementwise read, in the body, of each captured one-element tensor."""
    if module is None:
        return []
    own = local_names(node)
    parents = _parents(node)
    found: dict[str, OneElementCapture] = {}
    for n in walk_body(node):
        if not isinstance(n, ast.Name) or not isinstance(n.ctx, ast.Load) or n.id in own or n.id in found:
            continue
        if not _elementwise(n, parents, module, node, outer):
            continue
        binding = resolve_free_name(module, node, n.id, outer)
        value = binding.only_value if binding is not None else None
        if binding is None or value is None or not _one_element(value, module, binding):
            continue
        found[n.id] = OneElementCapture(n, binding, value, _number_display(value))
    return list(found.values())


def _parents(node: FuncNode) -> dict[int, ast.AST]:
    parents: dict[int, ast.AST] = {}
    for n in (node, *walk_body(node)):
        for child in ast.iter_child_nodes(n):
            parents[id(child)] = n
    return parents


def _elementwise(
    name: ast.Name, parents: dict[int, ast.AST], module: ast.Module, node: FuncNode, outer: Sequence[FuncNode] | None
) -> bool:
    parent = parents.get(id(name))
    if isinstance(parent, (ast.BinOp, ast.Compare)):
        return True
    if isinstance(parent, ast.UnaryOp):
        return isinstance(parent.op, (ast.USub, ast.UAdd, ast.Invert))
    if isinstance(parent, ast.Call) and name in parent.args:
        return _torch_function(parent.func, module, node, outer) in _ELEMENTWISE_TORCH
    return False


def _torch_function(func: ast.expr, module: ast.Module, node: FuncNode, outer: Sequence[FuncNode] | None) -> str | None:
    """`where` for `torch.where(...)`, where the name `torch` is the torch module."""
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "torch":
        return func.attr if names_torch_module(module, node, outer) else None
    return None


def _one_element(value: ast.expr, module: ast.Module, binding: Binding) -> bool:
    if isinstance(value, ast.Subscript):
        return _one_element_slice(value.slice)
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Attribute):
        return False
    func = value.func
    if not (isinstance(func.value, ast.Name) and func.value.id == "torch" and _torch_there(module, binding)):
        return False
    args = value.args
    if func.attr in _LITERAL_CONSTRUCTORS:
        return len(args) >= 1 and _one_element_display(args[0]) is not None
    if func.attr in _FILLED_CONSTRUCTORS:
        return len(args) == 1 and _is_one(args[0])
    if func.attr == "full":
        return len(args) >= 1 and isinstance(args[0], (ast.Tuple, ast.List)) and _is_one_shape(args[0])
    return False


def _torch_there(module: ast.Module, binding: Binding) -> bool:
    """The name `torch` is the torch module where the capture is bound."""
    scope = binding.scope
    if isinstance(scope, ast.Module):
        return torch_imported(module)
    return names_torch_module(module, scope, binding.outer)


def _one_element_display(expr: ast.expr) -> ast.List | ast.Tuple | None:
    """`[x]` / `(x,)` with one element that is neither starred nor itself a sequence display."""
    if isinstance(expr, (ast.List, ast.Tuple)) and len(expr.elts) == 1:
        element = expr.elts[0]
        if not isinstance(element, (ast.Starred, ast.List, ast.Tuple, ast.Set, ast.ListComp, ast.GeneratorExp)):
            return expr
    return None


def _number_display(value: ast.expr) -> ast.List | ast.Tuple | None:
    """The display of `torch.tensor([x])` (not `as_tensor`) when `x` is a number literal (`16`, `-0.5`)."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "tensor"):
        return None
    display = _one_element_display(value.args[0]) if value.args else None
    if display is None:
        return None
    element = display.elts[0]
    if isinstance(element, ast.UnaryOp) and isinstance(element.op, (ast.USub, ast.UAdd)):
        element = element.operand
    is_number = isinstance(element, ast.Constant) and type(element.value) in (int, float)
    return display if is_number else None


def _integer(expr: ast.expr) -> int | None:
    """An integer literal, signed."""
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        inner = _integer(expr.operand)
        return None if inner is None else -inner
    return expr.value if isinstance(expr, ast.Constant) and type(expr.value) is int else None


def _is_one(expr: ast.expr) -> bool:
    return isinstance(expr, ast.Constant) and type(expr.value) is int and expr.value == 1


def _is_one_shape(expr: ast.Tuple | ast.List) -> bool:
    return len(expr.elts) == 1 and _is_one(expr.elts[0])


def _one_element_slice(index: ast.expr) -> bool:
    """`i:i+1`, `:1`, `0:1`, `-1:` (step omitted)."""
    if not isinstance(index, ast.Slice) or index.step is not None:
        return False
    lower, upper = index.lower, index.upper
    if upper is None:
        return isinstance(lower, ast.UnaryOp) and isinstance(lower.op, ast.USub) and _is_one(lower.operand)
    if lower is None or (isinstance(lower, ast.Constant) and lower.value == 0):
        return _is_one(upper)
    low, high = _integer(lower), _integer(upper)
    if low is not None and high is not None:
        return high == low + 1 and (low >= 0 or high < 0)  # `-1:0` is empty
    return (
        isinstance(upper, ast.BinOp)
        and isinstance(upper.op, ast.Add)
        and _is_one(upper.right)
        and ast.dump(upper.left) == ast.dump(lower)
    )


# --------------------------------------------------------------------------- when the fix is exact
def reads_reach_result(node: FuncNode, read: ast.Name) -> bool:
    """The read flows into the returned value through elementwise operations only (arithmetic, comparisons,
    `&`/`|`, unary operators, the arguments of the elementwise torch calls): nothing on the way can look at
    the shape (`[0]`, `.view()`, a local variable read elsewhere...)."""
    parents = _parents(node)
    current: ast.AST = read
    while True:
        parent = parents.get(id(current))
        if parent is None:
            return False
        if isinstance(parent, ast.Return) or (isinstance(node, ast.Lambda) and parent is node):
            return True
        if isinstance(parent, (ast.BinOp, ast.Compare, ast.UnaryOp)):
            current = parent
            continue
        if (
            isinstance(parent, ast.Call)
            and current in parent.args
            and isinstance(parent.func, ast.Attribute)
            and parent.func.attr in _ELEMENTWISE_TORCH
        ):
            current = parent
            continue
        return False


def references(scope: FuncNode, name: str) -> list[ast.Name]:
    """Every use (read, write, `del`) of `name` that a binding in the function `scope` may answer: in the
    function and in the functions, lambdas and classes nested in it that do not bind `name` themselves (a
    superset: a doubt declines the fix)."""
    found: list[ast.Name] = []
    stack: list[ast.AST] = list(scope.body) if not isinstance(scope, ast.Lambda) else [scope.body]
    while stack:
        current = stack.pop()
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and name in local_names(current):
            stack.extend(_definition_time_parts(current))
            continue
        if isinstance(current, ast.Name) and current.id == name:
            found.append(current)
        stack.extend(ast.iter_child_nodes(current))
    return found


def _definition_time_parts(fn: FuncNode) -> list[ast.AST]:
    """What runs in the enclosing scope when `fn` is defined: decorators and defaults."""
    args = fn.args
    parts: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
    if not isinstance(fn, ast.Lambda):
        parts.extend(fn.decorator_list)
    return parts
