"""Facts for ESP021: Python data structures and Python math on the tensors a mask/score function receives.

Torch calls a mask_mod under `vmap` (and traces a score_mod with dynamo): the index tensors are batched
tensors, never Python numbers. So, measured on torch 2.13 CPU:

- indexing a Python list, tuple or dict with such a value fails everywhere (a list index calls
  `.item()`; a dict looks the tensor up by identity: `KeyError`);
- `x in <list/tuple>` fails under plain `vmap` (data-dependent control flow) but works where dynamo traces
  the function (a compiled `create_block_mask`, a score_mod); `x not in ...`, `in range(...)`, and `in` a
  set or dict (a Python bool, by identity) fail everywhere;
- `math.*` on such a value fails everywhere; `numpy.*` fails in a mask_mod (vmap, compiled or not) and
  works in a score_mod (dynamo traces numpy).

A container counts as a Python one only when it is a literal (`[...]`, `(...)`, `{...}`, a comprehension,
`list(...)`/`range(...)`...) or a name every binding of which is one: a local, a capture or a module
constant, resolved as Python does (`name_bindings`). Values are "derived" as in `mask_bodies`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Container, Sequence
from typing import NamedTuple

from .mask_bodies import (
    Derivation,
    FuncNode,
    derived_names,
    free_builtins,
    local_names,
    walk_body,
)
from .model import SCORE_MOD
from .name_bindings import function_binding, imported_name, resolve_free_name

# Container kinds, as messages name them.
LIST, TUPLE, DICT, SET, RANGE = "list", "tuple", "dict", "set", "range"
# What the body does with the data.
INDEX, MEMBERSHIP, MATH, NUMPY = "index", "membership", "math", "numpy"
_DISPLAYS: dict[type[ast.AST], str] = {
    ast.List: LIST,
    ast.ListComp: LIST,
    ast.Tuple: TUPLE,
    ast.Dict: DICT,
    ast.DictComp: DICT,
    ast.Set: SET,
    ast.SetComp: SET,
}
_CONSTRUCTORS = {"list": LIST, "tuple": TUPLE, "dict": DICT, "set": SET, "frozenset": SET, "range": RANGE}


class PythonData(NamedTuple):
    """One use of Python data or math on a derived value: `node` is where to report."""

    node: ast.AST
    kind: str  # INDEX, MEMBERSHIP, MATH or NUMPY
    what: str  # "indexes the Python list `LENGTHS` with a tensor", "`in` a Python set", "`math.log()` on a tensor"
    # True: fails wherever torch calls the function; False: only under plain vmap (dynamo traces it fine).
    fails_when_traced: bool


def python_data_uses(
    node: FuncNode,
    role: str,
    module: ast.Module | None = None,
    traced_by_dynamo: bool | Callable[[], bool] = True,
    outer: Sequence[FuncNode] | None = None,
) -> list[PythonData]:
    """Where the body indexes a Python container with, tests membership of, or calls `math`/`numpy` on a
    value computed from the parameters. `traced_by_dynamo` (or a function that tells, asked only when
    needed) says whether dynamo may trace the function: then what works there is not reported."""
    derived = derived_names(node, role)
    if derived is None:
        return []
    builtins_here = free_builtins(node, module, outer)
    is_derived = Derivation(derived, builtins_here)
    kinds = _ContainerKinds(node, module, outer, builtins_here)
    found: list[PythonData] = []
    for n in walk_body(node):
        item: PythonData | None = None
        if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load) and is_derived(n.slice):
            kind = kinds.of(n.value)
            if kind in (LIST, TUPLE, DICT):
                item = PythonData(n, INDEX, f"indexes {_named(kind, n.value)} with a tensor", True)
        elif isinstance(n, ast.Compare):
            item = _membership(n, kinds, is_derived)
        elif isinstance(n, ast.Call) and any(is_derived(a) for a in (*n.args, *(k.value for k in n.keywords))):
            qualified = imported_name(module, node, n.func, outer)
            if qualified is not None and qualified.split(".")[0] == "math":
                item = PythonData(n, MATH, f"calls `{qualified}()` on a tensor", True)
            elif qualified is not None and qualified.split(".")[0] == "numpy" and role != SCORE_MOD:
                item = PythonData(n, NUMPY, f"calls `{qualified}()` on a tensor", True)
        if item is not None and (item.fails_when_traced or not _told(traced_by_dynamo)):
            found.append(item)
    return found


def _told(answer: bool | Callable[[], bool]) -> bool:
    return answer() if callable(answer) else answer


def _membership(compare: ast.Compare, kinds: _ContainerKinds, is_derived: Derivation) -> PythonData | None:
    operands = [compare.left, *compare.comparators]
    for i, op in enumerate(compare.ops):
        if not isinstance(op, (ast.In, ast.NotIn)) or not is_derived(operands[i]):
            continue
        container = operands[i + 1]
        kind = kinds.of(container)
        if kind is None:
            continue
        word = "not in" if isinstance(op, ast.NotIn) else "in"
        # dynamo turns `x in [a, b]` into `x == a or x == b` on tensors; nothing else of these works.
        traced_ok = kind in (LIST, TUPLE) and word == "in"
        return PythonData(compare, MEMBERSHIP, f"tests a tensor with `{word}` {_named(kind, container)}", not traced_ok)
    return None


def _named(kind: str, container: ast.expr) -> str:
    """`the Python list `LENGTHS``, `a Python set`, `a `range``."""
    if kind == RANGE:
        return "a `range`"
    return f"the Python {kind} `{container.id}`" if isinstance(container, ast.Name) else f"a Python {kind}"


class _ContainerKinds:
    """What kind of Python container an expression certainly is (None: unknown, or not one)."""

    def __init__(
        self, node: FuncNode, module: ast.Module | None, outer: Sequence[FuncNode] | None, builtins: Container[str]
    ) -> None:
        self.node, self.module, self.outer, self.builtins = node, module, outer, builtins

    def of(self, expr: ast.expr) -> str | None:
        literal = self._literal(expr)
        if literal is not None or not isinstance(expr, ast.Name):
            return literal
        values = self._values(expr.id)
        kinds = {self._literal(v) if v is not None else None for v in values}
        if not values or None in kinds or len(kinds) != 1:
            return None
        return kinds.pop()

    def _literal(self, expr: ast.expr) -> str | None:
        kind = _DISPLAYS.get(type(expr))
        if kind is not None:
            return kind
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in self.builtins:
            return _CONSTRUCTORS.get(expr.func.id)
        return None

    def _values(self, name: str) -> list[ast.expr | None]:
        """What each binding of `name` assigns (None: a binding other than `name = value`), as Python
        resolves the name in the function."""
        if name in local_names(self.node):
            binding = function_binding(self.node, name)
        else:
            binding = resolve_free_name(self.module, self.node, name, self.outer)
        return list(binding.values) if binding is not None else []
