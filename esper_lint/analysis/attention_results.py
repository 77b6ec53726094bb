"""`flex_attention(..., return_lse=...)` (ESP027), and what a rewrite to `return_aux=AuxRequest(lse=True)` needs.

The rewrite is offered only for `out, lse = flex_attention(..., return_lse=True)` alone on its lines: torch
2.13 then returns `(out, AuxOutput(lse=lse, max_scores=None))` instead of `(out, lse)`, so the statement keeps
its targets and one line after it, `lse = lse.lse`, restores what `lse` held (no new name is bound). It also
needs `AuxRequest` to name torch's class at the call, by one of:
- `AuxRequest` already does (every binding it may have there is an import of it, made before the call);
- the callee is `<module>.flex_attention` with `<module>` naming `torch.nn.attention.flex_attention`: then
  `<module>.AuxRequest`;
- a module-level `from torch.nn.attention.flex_attention import ...` statement comes before the call's
  top-level statement and the file spells `AuxRequest` nowhere (so no other binding or read of it exists):
  `AuxRequest` is added to that import, which binds it in the module before the call can run.
"""

from __future__ import annotations

import ast

from ..core.apis import FLEX_MODULE
from .flow_model import LseRequest
from .hoist_safety import identifier_texts
from .model import CallArgument
from .resolution import Resolver

_AUX_REQUEST = f"{FLEX_MODULE}.AuxRequest"


class LseRequests:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.positions = resolver.positions

    def of(self, call: ast.Call, arguments: dict[str, CallArgument], via: str | None = None) -> LseRequest | None:
        """`via`: the call is of a module function that forwards these keywords to flex_attention."""
        arg = arguments.get("return_lse")
        if arg is None:
            return None
        with_aux = "return_aux" in arguments
        request = LseRequest(
            span=arg.span,
            keyword_span=arg.keyword_span,
            removal_span=arg.removal_span,
            value=arg.constant,
            with_return_aux=with_aux,
            unpacked_lse=None,
            line_end=None,
            line_ending="\n",
            indent="",
            aux_request=None,
            import_at=None,
            no_fix_reason=None,
        )
        if via is not None:
            return request._replace(via=via, no_fix_reason=f"it reaches flex_attention through `{via}(**kwargs)`")
        if arg.keyword_span is None:
            return request._replace(no_fix_reason="`return_lse` is passed by position")
        if arg.constant is not True or with_aux:
            return request._replace(no_fix_reason="`return_lse` is not the literal `True`")
        statement = self._unpacking(call)
        if statement is None:
            reason = "the result is not unpacked into two names on a line of its own (`out, lse = ...`)"
            return request._replace(no_fix_reason=reason)
        assign, lse = statement
        request = self._line_after(request._replace(unpacked_lse=lse), assign)
        spelling, import_at = self._aux_request(call)
        if spelling is None:
            reason = "`AuxRequest` is not imported here and cannot be added without risking a name clash"
            return request._replace(no_fix_reason=reason)
        return request._replace(aux_request=spelling, import_at=import_at)

    def _unpacking(self, call: ast.Call) -> tuple[ast.Assign, str] | None:
        """`out, lse = <call>` alone on its lines: the statement and `lse`."""
        assign = self.resolver.parent(call)
        if not isinstance(assign, ast.Assign) or assign.value is not call or len(assign.targets) != 1:
            return None
        target = assign.targets[0]
        if not isinstance(target, (ast.Tuple, ast.List)) or len(target.elts) != 2:
            return None
        first, second = target.elts
        if not (isinstance(first, ast.Name) and isinstance(second, ast.Name)) or first.id == second.id:
            return None
        if self.resolver.shares_a_line(assign):
            return None
        lines = self.positions.lines
        start_line, start_column = self.positions.start(assign)
        end_line, end_column = self.positions.end(assign)
        before = lines[start_line - 1][:start_column]
        after = lines[end_line - 1][end_column:].strip()
        if before.strip() or (after and not after.startswith("#")):
            return None  # `if c: out, lse = ...`, or something after it on its last line
        return assign, second.id

    def _line_after(self, request: LseRequest, assign: ast.Assign) -> LseRequest:
        """Where a line can follow the statement: the end of its last line's text, that line's own ending
        (or the file's first, for a last line without one), and the statement's indentation."""
        lines = self.positions.lines
        start_line, start_column = self.positions.start(assign)
        end_line = assign.end_lineno or assign.lineno
        last = lines[end_line - 1]
        text = last.rstrip("\r\n")
        endings = (line[len(line.rstrip("\r\n")) :] for line in lines)
        ending = last[len(text) :] or next((e for e in endings if e), "\n")
        return request._replace(
            line_end=(end_line, len(text)), line_ending=ending, indent=lines[start_line - 1][:start_column]
        )

    def _aux_request(self, call: ast.Call) -> tuple[str | None, tuple[int, int] | None]:
        if self._aux_request_imported(call):
            return "AuxRequest", None
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and _is_dotted(func.value)
            and self.resolver.qualified_names(func.value) == {FLEX_MODULE}
        ):
            return f"{self.positions.segment(func.value)}.AuxRequest", None
        if any("AuxRequest" in text for text in identifier_texts(self.resolver.text)):
            return None, None
        top = self.resolver.top_index(call)
        for index, stmt in enumerate(self.resolver.tree.body[: max(top, 0)]):
            if isinstance(stmt, ast.ImportFrom) and stmt.module == FLEX_MODULE and stmt.level == 0:
                first = stmt.names[0]
                if first.name != "*" and index < top:
                    return "AuxRequest", self.positions.start(first)
        return None, None

    def _aux_request_imported(self, call: ast.Call) -> bool:
        """`AuxRequest` at the call is torch's: every binding it may have is an import of it (in the call's
        own scope, made before the call)."""
        scope = self.resolver.scopes.scope_of.get(id(call))
        found = scope.resolve("AuxRequest") if scope is not None else []
        if not found or not all(
            b.kind == "import" and b.qualified_names("AuxRequest") == {_AUX_REQUEST} for b in found
        ):
            return False
        return found[0].scope is not scope or all(b.position < (call.lineno, call.col_offset) for b in found)


def _is_dotted(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)
