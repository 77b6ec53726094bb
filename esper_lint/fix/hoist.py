"""The hoisting codemod: move capture-free nested mask functions (ESP001) and lambdas (ESP002) to module level.

Planning works on the parsed module with LibCST's scope metadata (the analysis reported the module's own
nodes), then one transformer pass rewrites it:
- a nested `def` is removed from its block (a block left empty gets `pass`) and re-inserted, with its
  decorators, docstring, annotations and comments, immediately before the top-level statement enclosing it;
- `name = lambda ...` alone on its line inside a function becomes `def name(...)` the same way;
- any other lambda (inline in the call, `x: T = lambda`, walrus, class attribute) becomes a module-level
  `def` and the lambda expression is replaced in place by its name;
- when the name must change, every use of the old binding is pointed at the new name.
Everything else is LibCST's lossless round trip: encoding, BOM, newlines, indentation and comments.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import cast

import libcst as cst
from libcst.metadata import (
    Assignment,
    BaseAssignment,
    ClassScope,
    FunctionScope,
    GlobalScope,
    MetadataWrapper,
    Scope,
    ScopeProvider,
)

# Same question as the analysis answers for definition_time_refs: one implementation.
from ..analysis.libcst_backend import has_future_annotations
from ..analysis.model import FunctionKind, MaskFunction, class_attribute_reason
from ..findings import Finding
from . import FIXABLE_CODES
from .naming import ModuleNames, def_base_name, lambda_base_name


@dataclass
class Hoist:
    """One function to move, with everything the rewrite needs."""

    fn: MaskFunction
    findings: list[Finding]
    top_index: int  # index in module.body of the top-level statement enclosing the function
    removed: cst.CSTNode | None = None  # statement that disappears (the def, or the `v = lambda` line)
    lambda_node: cst.Lambda | None = None  # lambda replaced in place by the new name
    references: list[cst.Name] = field(default_factory=list)  # uses of the old binding to rename
    readers: list[Scope] = field(default_factory=list)  # scopes that will look the new name up
    bindings: set[int] = field(default_factory=set)  # ids of the binding nodes that go away
    share_key: str | None = None  # identical source text: may share one definition
    name: str = ""
    leader: Hoist | None = None  # the hoist whose definition this one shares
    built: cst.FunctionDef | None = None  # the module-level def, built during the rewrite


@dataclass
class Blocked:
    fn: MaskFunction
    reason: str


@dataclass
class Plan:
    hoists: list[Hoist]
    blocked: list[Blocked]


class _Parents(cst.CSTVisitor):
    def __init__(self) -> None:
        self.parent: dict[int, cst.CSTNode] = {}
        self._stack: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._stack:
            self.parent[id(node)] = self._stack[-1]
        self._stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self._stack.pop()


class _Planner:
    def __init__(self, module: cst.Module) -> None:
        self.module = module
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self.scopes = wrapper.resolve(ScopeProvider)
        parents = _Parents()
        module.visit(parents)
        self.parent = parents.parent
        self.top_index = {id(stmt): i for i, stmt in enumerate(module.body)}
        self.future_annotations = has_future_annotations(module)
        self.names = ModuleNames({s for s in self.scopes.values() if s is not None})

    def top_level(self, node: cst.CSTNode) -> int:
        current = node
        while id(current) not in self.top_index:
            current = self.parent[id(current)]
        return self.top_index[id(current)]

    def plan(self, findings: Sequence[Finding]) -> Plan:
        hoists: dict[int, Hoist] = {}
        blocked: dict[int, Blocked] = {}
        for finding in findings:
            fn = finding.target
            if finding.code not in FIXABLE_CODES or not finding.fixable or fn is None or fn.node is None:
                continue
            key = id(fn.node)
            if key in hoists:
                hoists[key].findings.append(finding)
                continue
            if key in blocked:
                continue
            result = self._hoist(fn, finding)
            if isinstance(result, str):
                blocked[key] = Blocked(fn, result)
            else:
                hoists[key] = result
        ordered = sorted(hoists.values(), key=lambda h: (h.fn.span.line, h.fn.span.column))
        self._name(ordered)
        return Plan(ordered, list(blocked.values()))

    # ------------------------------------------------------------------ one function
    def _hoist(self, fn: MaskFunction, finding: Finding) -> Hoist | str:
        node = fn.node
        top = self.top_level(node)
        hoist = Hoist(fn, [finding], top)
        reason = self._late_module_names(node, top)
        if reason:
            return reason
        if isinstance(node, cst.FunctionDef):
            reason = self._plan_binding(hoist, node, node, node.name.value)
            if reason:
                return reason
            hoist.removed = node
        elif isinstance(node, cst.Lambda):
            line = self._lambda_statement(fn, node)
            if line is not None and isinstance(fn.binding_node, cst.Name):
                reason = self._plan_binding(hoist, fn.binding_node, node, fn.binding_node.value)
                if reason:
                    return reason
                hoist.removed = line
            else:
                hoist.lambda_node = node
                scope = self.scopes[node]
                hoist.readers = [scope] if scope is not None else []
        else:
            return "the function is neither a `def` nor a `lambda`"
        if not _has_definition_time_code(node, self.future_annotations) and not _has_comments(hoist.removed):
            # Running the definition once instead of per copy is unobservable only without decorators,
            # defaults or eagerly evaluated annotations.
            hoist.share_key = _share_text(node)
        return hoist

    def _plan_binding(self, hoist: Hoist, bound: cst.CSTNode, fn_node: cst.CSTNode, name: str) -> str | None:
        """Find the binding the hoist replaces and the uses to rename; a reason when that is not safe."""
        scope = self.scopes[fn_node]
        if isinstance(scope, ClassScope):
            return class_attribute_reason(name)
        if not isinstance(scope, FunctionScope):
            return "it is not defined in a function body"
        assignment = _assignment_for(scope, name, bound)
        if assignment is None:
            return f"`{name}` is declared `global` or `nonlocal` in the enclosing function"
        hoist.bindings = {id(bound)}
        hoist.readers = [scope]
        for access in assignment.references:
            use = access.node
            if not isinstance(use, cst.Name):
                return f"`{name}` is referenced from a string annotation"
            if isinstance(self.parent.get(id(use)), cst.Del):
                return f"`{name}` is deleted with `del` in the enclosing function"
            hoist.references.append(use)
            reader = self.scopes[use]
            if reader is not None and reader not in hoist.readers:
                hoist.readers.append(reader)
        return None

    def _lambda_statement(self, fn: MaskFunction, node: cst.Lambda) -> cst.SimpleStatementLine | None:
        """The `name = lambda ...` line, when it is a plain single assignment alone on its line in a function."""
        assign = self.parent.get(id(node))
        line = self.parent.get(id(assign)) if assign is not None else None
        if not (
            isinstance(assign, cst.Assign)
            and assign.value is node
            and len(assign.targets) == 1
            and assign.targets[0].target is fn.binding_node
            and isinstance(line, cst.SimpleStatementLine)
            and len(line.body) == 1
        ):
            return None
        return line if isinstance(self.scopes[node], FunctionScope) else None

    def _late_module_names(self, node: cst.CSTNode, top: int) -> str | None:
        """Definition-time code that reads a module name not (finally) bound before the new position."""
        late: list[str] = []
        for root in _definition_time_roots(node, self.future_annotations):
            for name in _names(root):
                scope = self.scopes.get(name)
                if scope is None:
                    continue
                for access in scope.accesses[name]:
                    if access.node is not name:
                        continue
                    if not self._bound_before(access.referents, top, name.value) and name.value not in late:
                        late.append(name.value)
        if not late:
            return None
        listed = ", ".join(f"`{n}`" for n in late)
        return (
            f"its decorators, defaults or annotations read {listed}, which module level does not bind "
            "(once and for all) before the enclosing top-level statement"
        )

    def _bound_before(self, referents: Collection[BaseAssignment], top: int, name: str) -> bool:
        if not referents:
            return False  # unresolved (star import, injected name): its value at import time is unknown
        for referent in referents:
            if not isinstance(referent.scope, GlobalScope):
                continue  # builtins qualify; function locals are the analysis' definition_time_refs
            for binding in referent.scope.assignments[name]:
                where = getattr(binding, "node", None)
                if not isinstance(where, cst.CSTNode) or self.top_level(where) >= top:
                    return False
        return True

    # ------------------------------------------------------------------ names and sharing
    def _name(self, hoists: list[Hoist]) -> None:
        groups: dict[str, list[Hoist]] = {}
        for hoist in hoists:
            if hoist.share_key is not None:
                groups.setdefault(hoist.share_key, []).append(hoist)
        done: set[int] = set()
        for hoist in hoists:
            if id(hoist) in done:
                continue
            members = groups.get(hoist.share_key, [hoist]) if hoist.share_key is not None else [hoist]
            replaced = set().union(*(m.bindings for m in members))
            readers = [r for m in members for r in m.readers]
            name = self.names.choose(self._base_name(hoist), readers, replaced)
            for member in members:
                member.name = name
                member.leader = None if member is hoist else hoist
                done.add(id(member))

    def _base_name(self, hoist: Hoist) -> str:
        fn = hoist.fn
        if fn.kind is FunctionKind.DEF and isinstance(fn.node, cst.FunctionDef):
            return def_base_name(fn.node.name.value)
        assigned = hoist.removed is not None and isinstance(fn.binding_node, cst.Name)
        return lambda_base_name(fn.enclosing, fn.binding_node.value if assigned else None)


def plan_hoists(module: cst.Module, findings: Sequence[Finding]) -> Plan:
    return _Planner(module).plan(findings)


# ---------------------------------------------------------------------- the rewrite
class _Hoister(cst.CSTTransformer):
    def __init__(self, module: cst.Module, hoists: list[Hoist]) -> None:
        super().__init__()
        self.hoists = hoists
        self.removed = {id(h.removed): h for h in hoists if h.removed is not None}
        self.lambdas = {id(h.lambda_node): h for h in hoists if h.lambda_node is not None}
        self.renames = {id(ref): h.name for h in hoists for ref in h.references if ref.value != h.name}
        self.newline = module.default_newline

    def on_leave(
        self, original_node: cst.CSTNodeT, updated_node: cst.CSTNodeT
    ) -> cst.CSTNodeT | cst.RemovalSentinel | cst.FlattenSentinel[cst.CSTNodeT]:
        # A lambda becomes a Name: LibCST checks the replacement fits where the lambda was.
        return cast("cst.CSTNodeT", self._leave(original_node, updated_node))

    def _leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode | cst.RemovalSentinel:
        key = id(original_node)
        if key in self.renames and isinstance(updated_node, cst.Name):
            return updated_node.with_changes(value=self.renames[key])
        if key in self.lambdas and isinstance(updated_node, cst.Lambda):
            hoist = self.lambdas[key]
            hoist.built = _def_from_lambda(hoist.name, updated_node, [], None)
            return cst.Name(hoist.name, lpar=updated_node.lpar, rpar=updated_node.rpar)
        if isinstance(updated_node, cst.IndentedBlock) and isinstance(original_node, cst.IndentedBlock):
            return self._remove_from_block(original_node, updated_node)
        if isinstance(updated_node, cst.Module) and isinstance(original_node, cst.Module):
            return self._insert(original_node, updated_node)
        return updated_node

    def _remove_from_block(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        """Take hoisted statements out of a block; comments not attached to them stay in the block."""
        if not any(id(stmt) in self.removed for stmt in original.body):
            return updated
        body: list[cst.BaseStatement] = []
        carried: list[cst.EmptyLine] = []  # lines left behind by removed statements, for the next one
        removed_first = False
        for old, new in zip(original.body, updated.body, strict=True):
            hoist = self.removed.get(id(old))
            if hoist is None:
                if carried or (removed_first and not body):
                    lines = _join_lines(carried, list(_leading(new)))
                    if not body:
                        lines = _split_blank(lines)[1]  # no blank line at the top of a block
                    new = new.with_changes(leading_lines=lines)
                    carried = []
                body.append(new)
                continue
            removed_first = removed_first or not body
            left, attached = _split_attached(_leading(new))
            hoist.built = self._build(hoist, new, attached)
            if any(line.comment is not None for line in left):
                carried = _join_lines(carried, left)
        if not body:
            # The hoisted function was the block's only statement.
            body = [cst.SimpleStatementLine([cst.Pass()], leading_lines=_split_blank(carried)[1])]
            carried = []
        footer = _join_lines(carried, list(updated.footer)) if carried else updated.footer
        return updated.with_changes(body=body, footer=footer)

    def _build(self, hoist: Hoist, stmt: cst.BaseStatement, attached: list[cst.EmptyLine]) -> cst.FunctionDef:
        if isinstance(stmt, cst.FunctionDef):
            return stmt.with_changes(name=stmt.name.with_changes(value=hoist.name), leading_lines=attached)
        assert isinstance(stmt, cst.SimpleStatementLine)
        assign = stmt.body[0]
        assert isinstance(assign, cst.Assign) and isinstance(assign.value, cst.Lambda)
        return _def_from_lambda(hoist.name, assign.value, attached, stmt.trailing_whitespace)

    def _insert(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        by_top: dict[int, list[Hoist]] = {}
        for hoist in self.hoists:
            if hoist.leader is None:
                first = min([hoist.top_index] + [h.top_index for h in self.hoists if h.leader is hoist])
                by_top.setdefault(first, []).append(hoist)
        body: list[cst.BaseStatement] = []
        assert len(original.body) == len(updated.body)  # top-level statements are never removed
        for index, updated_stmt in enumerate(updated.body):
            stmt: cst.BaseStatement = updated_stmt
            placed = by_top.get(index)
            if placed:
                separator, attached = _split_blank(_leading(stmt))
                for n, hoist in enumerate(placed):
                    assert hoist.built is not None
                    _, own = _split_blank(_leading(hoist.built))
                    # PEP 8: two blank lines around top-level definitions (more if the file had more).
                    blank = _blank_lines(2) if n or (index and len(separator) < 2) else separator
                    body.append(_with_leading(hoist.built, [*blank, *own]))
                stmt = _with_leading(stmt, [*_blank_lines(2), *attached])
            body.append(stmt)
        return updated.with_changes(body=body)


def apply_hoists(module: cst.Module, hoists: list[Hoist]) -> cst.Module:
    result = module.visit(_Hoister(module, hoists))
    assert isinstance(result, cst.Module)
    return result


# ---------------------------------------------------------------------- helpers
def _assignment_for(scope: Scope, name: str, bound: cst.CSTNode) -> Assignment | None:
    for assignment in scope.assignments[name]:
        if isinstance(assignment, Assignment) and assignment.node is bound:
            return assignment
    return None


def _def_from_lambda(
    name: str, lam: cst.Lambda, leading: list[cst.EmptyLine], header: cst.TrailingWhitespace | None
) -> cst.FunctionDef:
    body = lam.body
    if "\n" in cst.Module([]).code_for_node(body) and not body.lpar:
        # A lambda may span lines inside the call's brackets; a `return` needs its own.
        body = body.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    block = cst.IndentedBlock(body=[cst.SimpleStatementLine([cst.Return(body)])])
    if header is not None:
        block = block.with_changes(header=header)
    return cst.FunctionDef(name=cst.Name(name), params=lam.params, body=block, leading_lines=leading)


def _leading(stmt: cst.BaseStatement) -> Sequence[cst.EmptyLine]:
    """Blank lines and comments above a statement (above its first decorator, if any)."""
    assert isinstance(stmt, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
    return stmt.leading_lines


def _with_leading(stmt: cst.BaseStatement, lines: list[cst.EmptyLine]) -> cst.BaseStatement:
    return stmt.with_changes(leading_lines=lines)


def _split_attached(lines: Sequence[cst.EmptyLine]) -> tuple[list[cst.EmptyLine], list[cst.EmptyLine]]:
    """The comment lines directly above a statement (no blank line between) belong to it; the rest do not."""
    index = len(lines)
    while index > 0 and lines[index - 1].comment is not None:
        index -= 1
    return list(lines[:index]), list(lines[index:])


def _join_lines(first: list[cst.EmptyLine], second: list[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """Concatenate two runs of lines without doubling the blank line where they meet."""
    if first and second and first[-1].comment is None and second[0].comment is None:
        return [*first, *second[1:]]
    return [*first, *second]


def _split_blank(lines: Sequence[cst.EmptyLine]) -> tuple[list[cst.EmptyLine], list[cst.EmptyLine]]:
    """Leading blank lines (the separator from the previous statement), then the comments attached."""
    index = 0
    while index < len(lines) and lines[index].comment is None:
        index += 1
    return list(lines[:index]), list(lines[index:])


def _blank_lines(n: int) -> list[cst.EmptyLine]:
    return [cst.EmptyLine() for _ in range(n)]


def _definition_time_roots(node: cst.CSTNode, future_annotations: bool) -> list[cst.CSTNode]:
    """Expressions evaluated when the def/lambda itself runs: defaults, decorators, eager annotations."""
    if not isinstance(node, (cst.FunctionDef, cst.Lambda)):
        return []
    params = node.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            every.append(star)
    roots: list[cst.CSTNode] = [p.default for p in every if p.default is not None]
    if isinstance(node, cst.FunctionDef):
        roots.extend(d.decorator for d in node.decorators)
        if not future_annotations:
            roots.extend(p.annotation.annotation for p in every if p.annotation is not None)
            if node.returns is not None:
                roots.append(node.returns.annotation)
    return roots


def _has_definition_time_code(node: cst.CSTNode, future_annotations: bool) -> bool:
    return bool(_definition_time_roots(node, future_annotations))


def _share_text(node: cst.CSTNode) -> str:
    """The function's code, comments included, without blank lines before it: equal texts, equal functions."""
    if isinstance(node, cst.FunctionDef):
        node = _with_leading(node, _split_blank(_leading(node))[1])
    return type(node).__name__ + ":" + cst.Module([]).code_for_node(node)


def _has_comments(removed: cst.CSTNode | None) -> bool:
    """A `v = lambda` line with comments keeps them only as its own definition: never shared."""
    if not isinstance(removed, cst.SimpleStatementLine):
        return False
    return removed.trailing_whitespace.comment is not None or any(e.comment for e in removed.leading_lines)


class _NameCollector(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[cst.Name] = []

    def visit_Name(self, node: cst.Name) -> None:
        self.found.append(node)


def _names(root: cst.CSTNode) -> list[cst.Name]:
    collector = _NameCollector()
    root.visit(collector)
    return collector.found
