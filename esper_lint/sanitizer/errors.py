"""ESP008/ESP021 from the errors torch raises: a Python branch or Python data on a tensor inside a mask or
score function fails when torch runs it under vmap or dynamo. The error is named and tied to the
function's line; the caller re-raises it unchanged."""

from __future__ import annotations

import ast
import linecache
import os
from types import TracebackType
from typing import Any

from . import frames
from .records import Location, RuntimeFinding

# What torch 2.13 says (measured: tests/test_sanitize_*.py run each form).
_PATTERNS = (
    "data-dependent control flow",  # vmap: `if`, `and`/`or`, `x in [..]`
    "calling .item() on a Tensor",  # vmap: .item(), int(), a Python list indexed by a tensor, math.*
    "Data-dependent branching",  # dynamo (flex_attention's score_mod)
    "Cannot access data pointer",
    "RuntimeError when making fake tensor call",  # dynamo: math.* on a tensor
    "generic_jump",
)


def classify(exc: BaseException, functions: list[Any], site: Location | None) -> RuntimeFinding | None:
    text = str(exc)
    if not any(p in text for p in _PATTERNS):
        return None
    where = _user_line(exc, functions)
    if where is None:
        return None
    path, line, fn_name, code_first_line = where
    source = linecache.getline(path, line).strip()
    code, what = _kind(source, path, functions)
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first_line = first_line.split(". ")[0].rstrip(".")  # torch's first sentence says what happened
    if len(first_line) > 140:
        first_line = first_line[:137] + "..."
    if code == "ESP021":
        advice = (
            "index a tensor instead of a Python list/dict (`torch.tensor(values)[idx]`), use `torch.isin` for "
            "`in`, and torch functions for `math.*`"
        )
    else:
        advice = "use tensor operations: `&`/`|` for `and`/`or`, `torch.where` for `if`, no `.item()`"
    message = (
        f"{what} on a tensor in `{fn_name}` (line {line}: `{source}`): torch runs mask and score functions under "
        f"vmap/dynamo, so it raises `{type(exc).__name__}: {first_line}`; {advice}."
    )
    definition = Location(frames.shown_path(path), code_first_line, 1, fn_name)
    evidence = {"error": type(exc).__name__, "line": line, "source": source}
    return RuntimeFinding(code, message, definition, site, evidence, at_definition=True)


def _user_line(exc: BaseException, functions: list[Any]) -> tuple[str, int, str, int] | None:
    """The deepest traceback frame in one of `functions` (or else in user code below the call), or the
    user frame dynamo recorded (`real_stack`) for the errors it raises while tracing."""
    codes = {frames.underlying_code(fn) for fn in functions} - {None}
    files = {os.path.abspath(c.co_filename) for c in codes if c is not None}
    found = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code in codes or os.path.abspath(code.co_filename) in files:
            found = (code.co_filename, tb.tb_lineno, code.co_name, code.co_firstlineno)
        tb = tb.tb_next
    if found is not None:
        return found
    for summary in getattr(exc, "real_stack", None) or []:
        if os.path.abspath(summary.filename) in files and summary.lineno is not None:
            first = min(
                (
                    c.co_firstlineno
                    for c in codes
                    if c is not None and os.path.abspath(c.co_filename) == os.path.abspath(summary.filename)
                ),
                default=summary.lineno,
            )
            found = (summary.filename, summary.lineno, summary.name, first)
    return found


def _kind(source: str, path: str, functions: list[Any]) -> tuple[str, str]:
    """ESP021 for Python data (a list/dict/tuple indexed by a tensor, `in`, math/numpy), ESP008 otherwise."""
    try:
        tree = ast.parse(source.rstrip(":") + (" pass" if source.endswith(":") else ""))
    except SyntaxError:
        try:
            tree = ast.parse(source.removeprefix("return ").removeprefix("if ").rstrip(":"))
        except SyntaxError:
            return "ESP008", "Python control flow"
    containers = _container_names(functions)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            return "ESP021", "`in` on a Python container"
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in containers:
            return "ESP021", f"Python {containers[node.value.id]} `{node.value.id}` indexed"
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("math", "np", "numpy")
        ):
            return "ESP021", f"`{node.value.id}.{node.attr}`"
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.While, ast.Assert, ast.IfExp)):
            return "ESP008", "a Python branch"
        if isinstance(node, ast.BoolOp):
            return "ESP008", f"Python `{'and' if isinstance(node.op, ast.And) else 'or'}`"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return "ESP008", "Python `not`"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "item":
            return "ESP008", "`.item()`"
    return "ESP008", "Python control flow"


def _container_names(functions: list[Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for fn in functions:
        code = frames.underlying_code(fn)
        scopes: list[dict[str, Any]] = []
        closure = getattr(fn, "__closure__", None)
        if code is not None and closure:
            cells = {}
            for name, cell in zip(code.co_freevars, closure, strict=False):
                try:
                    cells[name] = cell.cell_contents
                except ValueError:
                    continue
            scopes.append(cells)
        scopes.append(getattr(fn, "__globals__", {}) or {})
        for scope in scopes:
            for name, value in scope.items():
                if isinstance(value, (list, tuple, dict, str, range, set)) and name not in names:
                    names[name] = type(value).__name__
    return names
