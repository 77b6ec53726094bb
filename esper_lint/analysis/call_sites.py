"""Small syntactic facts about calls and functions that the call-site rules (ESP007-ESP016) rely on.

Kept apart from the scope analysis in fast_backend.py: nothing here resolves names.
"""

from __future__ import annotations

import ast
import enum
import re
from collections.abc import Iterator
from typing import Protocol

from .model import MaskFunction, Span

# A call argument in source order: the expression (positional, `*x` as the Starred node) or the keyword
# (`name=value`, `**kw`), with "*", "**" or "".
ArgumentItem = tuple[ast.expr | ast.keyword, str]


class _HasPositions(Protocol):
    lines: list[str]

    def start(self, node: ast.AST) -> tuple[int, int]: ...
    def end(self, node: ast.AST) -> tuple[int, int]: ...
    def text_between(self, start: tuple[int, int], end: tuple[int, int]) -> str: ...


def argument_items(call: ast.Call) -> list[ArgumentItem]:
    items: list[ArgumentItem] = [(a, "*" if isinstance(a, ast.Starred) else "") for a in call.args]
    items += [(k, "" if k.arg else "**") for k in call.keywords]
    items.sort(key=lambda item: (item[0].lineno, item[0].col_offset))
    return items


def _only_separator(text: str) -> bool:
    return text.replace(",", "", 1).strip() == "" and text.count(",") == 1


def removal_span(positions: _HasPositions, items: list[ArgumentItem], index: int) -> Span | None:
    """Where to cut to remove argument `index` and one separating comma; None if anything else is in between
    (a comment, a parenthesis)."""
    node = items[index][0]
    start, end = positions.start(node), positions.end(node)
    if index > 0:
        previous_end = positions.end(items[index - 1][0])
        if not _only_separator(positions.text_between(previous_end, start)):
            return None
        return Span(previous_end[0], previous_end[1] + 1, end[0], end[1] + 1)
    if index + 1 < len(items):
        next_start = positions.start(items[index + 1][0])
        if not _only_separator(positions.text_between(end, next_start)):
            return None
        return Span(start[0], start[1] + 1, next_start[0], next_start[1] + 1)
    return Span(start[0], start[1] + 1, end[0], end[1] + 1)


def own_returns(func: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.Return]:
    """The function's own `return` statements (not those of functions or classes nested in it)."""
    stack: list[ast.AST] = list(func.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


_JIT = re.compile(r"\bjit\b")


def mentions_compilation(text: str) -> bool:
    """The module may compile something (`torch.compile`, `_dynamo`, `jit`, even `re.compile`): ESP016 then
    cannot tell whether a `flex_attention` call runs compiled, and stays silent."""
    # `compile|_dynamo|\bjit\b` as one pattern, with the plain words found by substring search (much faster)
    return "compile" in text or "_dynamo" in text or ("jit" in text and _JIT.search(text) is not None)


def returns_its_argument(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """`def register(fn): REGISTRY.append(fn); return fn`: a decorator that leaves the function in place.
    Every `return` of its own returns its first parameter, which it never rebinds, and it is no generator."""
    positional = [*func.args.posonlyargs, *func.args.args]
    if isinstance(func, ast.AsyncFunctionDef) or not positional:
        return False
    name = positional[0].arg
    stack: list[ast.AST] = list(func.body)
    returns = 0
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal)):
            return False
        if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load):
            return False
        if isinstance(node, ast.Return):
            if not (isinstance(node.value, ast.Name) and node.value.id == name):
                return False
            returns += 1
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))
    last = func.body[-1]
    return returns > 0 and isinstance(last, ast.Return)


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
    if fn.ast_node is None or fn.replaced_by_decorator:
        return ParameterRead.UNKNOWN  # a decorator's wrapper may read it (or call with other arguments)
    kind, passes = _parameter_uses(fn.ast_node, index)
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
