"""The hoisting codemod: move capture-free nested mask functions (ESP001) and lambdas (ESP002) to module level.

Every decision comes from the analysis (`MaskFunction.site`, see analysis/model.py): whether the move
is safe, which uses of the old name to rename, which names would shadow the new one. This module only
rewrites text, with LibCST as the editing engine and no scope metadata:
- only the function enclosing each target is parsed with LibCST (a "segment": its own lines, behind a
  small prefix that makes them a module); the rest of the file is never parsed by LibCST and is kept
  byte for byte;
- each target's LibCST node is found by source order (the Nth `def` or `lambda` of the segment is the
  Nth one `ast` saw there), then checked against the analysis' facts;
- a nested `def` is removed from its block (a block left empty gets `pass`) and re-inserted, with its
  decorators, docstring, annotations and comments, immediately before the top-level statement enclosing it;
- `name = lambda ...` alone on its line inside a function becomes `def name(...)` the same way;
  `mask = mask` lines of that variable (HoistSite.self_assignments) are deleted, keeping their comments;
- `fn := lambda ...` that always runs with its statement becomes `def fn(...)`, the walrus its name;
- any other lambda becomes a module-level `def` and the lambda is replaced in place by its name; its
  comments move with it and its continuation lines are re-indented for the new place;
- when the name must change, every use the analysis listed is renamed (in the text, at its span).
"""

from __future__ import annotations

import ast
import io
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import libcst as cst

from ..analysis.model import FunctionKind, HoistForm, HoistSite, MaskFunction
from ..analysis.module_names import ModuleLevelNames
from ..analysis.syntax import has_future_annotations
from ..core.findings import Finding
from ..core.span import Span, first_line
from .hoist_targets import RewriteError, hoist_target, hoistable
from .naming import ModuleNames, def_base_name, lambda_base_name


@dataclass
class Hoist:
    """One function to move, with everything the rewrite needs."""

    fn: MaskFunction
    site: HoistSite
    findings: list[Finding]
    unit: int = 0  # index of the top-level statement (LibCST's: `a; b` is one) the def goes before
    root: ast.stmt | None = None  # the statement parsed with LibCST around it (its segment)
    removed: cst.CSTNode | None = None  # statement that disappears (the def, or the `v = lambda` line)
    lambda_node: cst.Lambda | None = None  # lambda replaced in place by the new name
    walrus: cst.NamedExpr | None = None  # `fn := lambda ...` replaced in place by the new name
    dropped: list[cst.SimpleStatementLine] = field(default_factory=list)  # its `mask = mask` lines
    share_key: str | None = None  # identical source text: may share one definition
    name: str = ""
    leader: Hoist | None = None  # the hoist whose definition this one shares
    built: cst.FunctionDef | None = None  # the module-level def, built during the rewrite


def plan_hoists(findings: Sequence[Finding]) -> list[Hoist]:
    """The hoists the fixable findings ask for, one per function, in source order."""
    hoists: dict[int, Hoist] = {}
    for finding in findings:
        fn = hoist_target(finding)
        if not hoistable(finding) or fn is None or fn.site is None:  # (the last two for the type checker)
            continue
        key = id(fn.ast_node)
        if key in hoists:
            hoists[key].findings.append(finding)
        else:
            hoists[key] = Hoist(fn, fn.site, [finding])
    return sorted(hoists.values(), key=lambda h: (h.fn.span.line, h.fn.span.column))


def apply_hoists(text: str, tree: ast.Module, hoists: list[Hoist], taken: ModuleLevelNames) -> str:
    """The module's text with every hoist applied."""
    layout = _Layout(text, tree)
    segments = layout.segments(hoists)
    for segment in segments:
        segment.locate()
    _name(hoists, ModuleNames(taken))
    edits: list[tuple[int, int, str]] = []  # (first line, last line, new text), 1-based and inclusive
    for segment in segments:
        if segment.rename():
            segment.locate()
        edits.append((segment.first, segment.last, segment.rewrite()))
    edits.extend(layout.insertions(hoists))
    lines = layout.lines[:]
    # Bottom up, so that line numbers above stay valid; at equal start, the segment before the insertion.
    for first, last, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        lines[first - 1 : last] = [new] if new else []
    return "".join(lines)


# ---------------------------------------------------------------------- where things are
class _Layout:
    """The module's lines and top-level statements, and the LibCST conventions of the whole file."""

    def __init__(self, text: str, tree: ast.Module) -> None:
        self.tree = tree
        self.future_annotations = has_future_annotations(tree)
        self.lines = io.StringIO(text, newline="").readlines()  # \n, \r\n and \r, as Python splits
        # A top-level "unit" is what LibCST calls a statement: `a = 1; b = 2` is one.
        self.unit_of: list[int] = []
        self.unit_first: list[int] = []
        self.unit_last: list[int] = []
        for stmt in tree.body:
            first = first_line(stmt)
            if self.unit_last and first <= self.unit_last[-1]:
                self.unit_last[-1] = max(self.unit_last[-1], stmt.end_lineno or stmt.lineno)
            else:
                self.unit_first.append(first)
                self.unit_last.append(stmt.end_lineno or stmt.lineno)
            self.unit_of.append(len(self.unit_first) - 1)
        self.newline = next((_ending(line) for line in self.lines if _ending(line)), "\n")
        self.indent = self._default_indent()

    def _default_indent(self) -> str:
        """LibCST's `default_indent`: the whitespace of the file's first indented block."""
        for node in ast.walk(self.tree):
            for name in ("body", "orelse", "finalbody", "handlers", "cases"):
                block = getattr(node, name, None)
                if isinstance(block, list) and block and isinstance(node, (ast.stmt, ast.excepthandler)):
                    inner = block[0]
                    if inner.lineno > node.lineno:
                        line = self.lines[first_line(inner) - 1]
                        outer = self.lines[first_line(node) - 1]
                        whole = line[: len(line) - len(line.lstrip(" \t"))]
                        parent = outer[: len(outer) - len(outer.lstrip(" \t"))]
                        return whole[len(parent) :] or "    "
        return "    "

    def segments(self, hoists: list[Hoist]) -> list[_Segment]:
        """Group hoists by the outermost function that holds them and their renamed uses."""
        roots: list[tuple[int, int, ast.stmt, list[Hoist]]] = []
        for hoist in hoists:
            hoist.unit = self.unit_of[hoist.site.top_index]
            # Every use of a def's variable is inside the def around it: that def is all LibCST must see.
            hoist.root = hoist.site.enclosing_def or self.tree.body[hoist.site.top_index]
            first, last = first_line(hoist.root), hoist.root.end_lineno or hoist.root.lineno
            roots.append((first, last, hoist.root, [hoist]))
        roots.sort(key=lambda r: (r[0], -r[1]))
        merged: list[tuple[int, int, ast.stmt, list[Hoist]]] = []
        for first, last, root, members in roots:
            if merged and first <= merged[-1][1]:  # inside the previous root (roots never overlap otherwise)
                merged[-1][3].extend(members)
                continue
            merged.append((first, last, root, members))
        return [_Segment(self, first, last, root, members) for first, last, root, members in merged]

    def insertions(self, hoists: list[Hoist]) -> Iterator[tuple[int, int, str]]:
        """Each top-level statement that receives hoisted defs: its leading lines, rewritten."""
        by_unit: dict[int, list[Hoist]] = {}
        for hoist in hoists:
            if hoist.leader is None:
                first = min([hoist.unit] + [h.unit for h in hoists if h.leader is hoist])
                by_unit.setdefault(first, []).append(hoist)
        for unit, placed in sorted(by_unit.items()):
            start = self.unit_last[unit - 1] + 1 if unit else self.unit_first[unit]
            region = self.lines[start - 1 : self.unit_first[unit] - 1] if unit else []
            previous = self.tree.body[self.unit_of.index(unit) - 1] if unit else None
            footer, leading = _footer_split(region, previous is not None and hasattr(previous, "body"))
            separator, attached = _blank_prefix(leading)
            out = list(footer)
            for n, hoist in enumerate(placed):
                assert hoist.built is not None
                # PEP 8: two blank lines around top-level definitions (more if the file had more).
                blank = [self.newline] * 2 if n or (unit and len(separator) < 2) else separator
                out.extend(blank)
                out.append(_module_code([hoist.built], self.indent, self.newline))
            out.extend([self.newline] * 2)
            out.extend(attached)
            yield start, self.unit_first[unit] - 1, "".join(out)


class _Segment:
    """One function (or top-level statement) parsed with LibCST: the targets inside it are rewritten."""

    def __init__(self, layout: _Layout, first: int, last: int, root: ast.stmt, hoists: list[Hoist]) -> None:
        self.layout = layout
        self.first = first
        self.last = last
        self.root = root
        self.hoists = hoists
        self.lines = layout.lines[first - 1 : last]
        line = self.lines[0]
        self.margin = line[: len(line) - len(line.lstrip(" \t"))]  # the root's own indentation
        nl, indent = layout.newline, layout.indent
        # The prefix makes the lines a module whose default indent and newline are the file's (LibCST
        # takes both from the first block and line), so moved code is written as a full parse would.
        self.prefix = f"if 1:{nl}{indent}pass{nl}" + (f"if 1:{nl}" if self.margin else "")
        self.module: cst.Module | None = None
        defs = [n for n in ast.walk(root) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        lambdas = [n for n in ast.walk(root) if isinstance(n, ast.Lambda)]
        self.def_order = {id(n): i for i, n in enumerate(sorted(defs, key=_position))}
        self.lambda_order = {id(n): i for i, n in enumerate(sorted(lambdas, key=_position))}
        assigns = [n for n in ast.walk(root) if isinstance(n, ast.Assign)]
        self.assign_order = {id(n): i for i, n in enumerate(sorted(assigns, key=_position))}

    def locate(self) -> None:
        """Parse the segment and find each hoist's LibCST nodes by source order."""
        source = self.prefix + "".join(self.lines)
        try:
            self.module = cst.parse_module(source)
        except cst.ParserSyntaxError as exc:
            raise RewriteError(f"LibCST cannot parse lines {self.first}-{self.last}: {exc.message}") from None
        finder = _Finder()
        self.module.visit(finder)
        for hoist in self.hoists:
            node = hoist.fn.ast_node
            hoist.removed = hoist.lambda_node = hoist.walrus = None
            hoist.dropped = [self._self_assignment(finder, a) for a in hoist.site.self_assignments]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found = finder.defs[self.def_order[id(node)]]
                if unicodedata.normalize("NFKC", found.name.value) != node.name:
                    raise RewriteError(f"found `def {found.name.value}` where the analysis saw `{node.name}`")
                hoist.removed = found
                eager = _has_definition_time_code(found, self.layout.future_annotations)
                hoist.share_key = None if eager else _share_text(found)
                continue
            assert isinstance(node, ast.Lambda)
            lam = finder.lambdas[self.lambda_order[id(node)]]
            if _param_count(lam) != _ast_param_count(node.args):
                raise RewriteError("the lambda found has other parameters than the analysis saw")
            if hoist.site.form is HoistForm.ASSIGNED_LAMBDA:
                line = finder.statement_of(lam)
                if line is None:
                    raise RewriteError("the `name = lambda` statement was not found")
                hoist.removed = line
            elif hoist.site.form is HoistForm.WALRUS_LAMBDA:
                named = finder.parent.get(id(lam))
                if not isinstance(named, cst.NamedExpr) or named.value is not lam:
                    raise RewriteError("the `name := lambda` expression was not found")
                hoist.walrus = named
            else:
                hoist.lambda_node = lam
            comments = hoist.removed is not None and _has_comments(hoist.removed)
            hoist.share_key = None if _has_defaults(lam) or comments else _share_text(lam)

    def _self_assignment(self, finder: _Finder, assign: ast.Assign) -> cst.SimpleStatementLine:
        found = finder.assigns[self.assign_order[id(assign)]]
        line = finder.parent.get(id(found))
        target, value = found.targets[0].target if len(found.targets) == 1 else None, found.value
        if not (
            isinstance(line, cst.SimpleStatementLine)
            and len(line.body) == 1
            and isinstance(target, cst.Name)
            and isinstance(value, cst.Name)
            and unicodedata.normalize("NFKC", target.value) == unicodedata.normalize("NFKC", value.value)
        ):
            raise RewriteError(f"line {assign.lineno} is not the `name = name` statement the analysis saw")
        return line

    def rename(self) -> bool:
        """Rename, in the text, the uses the analysis listed; True when anything changed."""
        edits: list[tuple[Span, str, str]] = []
        for hoist in self.hoists:
            variable = hoist.site.variable
            if variable is None or hoist.name == variable:
                continue
            edits.extend((span, variable, hoist.name) for span in hoist.site.references)
        for span, old, new in sorted(edits, key=lambda e: (e[0].line, e[0].column), reverse=True):
            index = span.line - self.first
            if not 0 <= index < len(self.lines) or span.end_line != span.line:
                raise RewriteError(f"a use of `{old}` at line {span.line} is outside the rewritten lines")
            line = self.lines[index]
            spelled = line[span.column - 1 : span.end_column - 1]
            if unicodedata.normalize("NFKC", spelled) != old:
                raise RewriteError(f"expected `{old}` at {span.line}:{span.column}, found `{spelled}`")
            self.lines[index] = line[: span.column - 1] + new + line[span.end_column - 1 :]
        return bool(edits)

    def rewrite(self) -> str:
        assert self.module is not None
        result = self.module.visit(_Hoister(self.hoists, len(self.layout.indent)))
        assert isinstance(result, cst.Module)
        code = result.code
        if not code.startswith(self.prefix):
            raise RewriteError("the rewritten segment lost its prefix")
        # LibCST drops the newline that ends a module when it is a bare `\r`: the segment keeps its own.
        ending = _ending(self.lines[-1])
        if ending and not code.endswith(ending):
            code += ending
        return code[len(self.prefix) :]


class _Finder(cst.CSTVisitor):
    """Defs and lambdas in source order (LibCST visits in source order), and each node's parent."""

    def __init__(self) -> None:
        self.defs: list[cst.FunctionDef] = []
        self.lambdas: list[cst.Lambda] = []
        self.assigns: list[cst.Assign] = []
        self.parent: dict[int, cst.CSTNode] = {}
        self._stack: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.FunctionDef):
            self.defs.append(node)
        elif isinstance(node, cst.Lambda):
            self.lambdas.append(node)
        elif isinstance(node, cst.Assign):
            self.assigns.append(node)
        if self._stack:
            self.parent[id(node)] = self._stack[-1]
        self._stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self._stack.pop()

    def statement_of(self, lam: cst.Lambda) -> cst.SimpleStatementLine | None:
        assign = self.parent.get(id(lam))
        line = self.parent.get(id(assign)) if assign is not None else None
        if isinstance(assign, cst.Assign) and isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
            return line
        return None


# ---------------------------------------------------------------------- names and sharing
def _name(hoists: list[Hoist], names: ModuleNames) -> None:
    groups: dict[str, list[Hoist]] = {}
    for hoist in hoists:
        if hoist.share_key is not None:
            groups.setdefault(hoist.share_key, []).append(hoist)
    done: set[int] = set()
    for hoist in hoists:
        if id(hoist) in done:
            continue
        members = groups.get(hoist.share_key, [hoist]) if hoist.share_key is not None else [hoist]
        # Bindings that go away with the hoists (their def or `v = lambda` is removed) shadow nothing.
        replaced = {(m.site.owner, m.site.variable) for m in members if m.site.owner is not None}
        shadowing = frozenset(
            name
            for m in members
            for name, scopes in m.site.shadowing.items()
            if any((scope, name) not in replaced for scope in scopes)
        )
        owners = {id(m.site.enclosing_def) for m in members}
        inside = hoist.site.enclosing_def if len(owners) == 1 else None  # the def whose local it is
        name = names.choose(_base_name(hoist), shadowing, inside)
        for member in members:
            member.name = name
            member.leader = None if member is hoist else hoist
            done.add(id(member))


def _base_name(hoist: Hoist) -> str:
    fn = hoist.fn
    if fn.kind is FunctionKind.DEF and hoist.site.variable is not None:
        return def_base_name(hoist.site.variable)
    lam = fn.ast_node if isinstance(fn.ast_node, ast.Lambda) else None
    return lambda_base_name(fn.enclosing, hoist.site.variable or hoist.site.walrus, hoist.site.role, lam)


# ---------------------------------------------------------------------- the rewrite
class _Hoister(cst.CSTTransformer):
    def __init__(self, hoists: list[Hoist], indent_width: int) -> None:
        super().__init__()
        self.hoists = hoists
        self.indent_width = indent_width
        self.removed = {id(h.removed): h for h in hoists if h.removed is not None}
        self.lambdas = {id(h.lambda_node): h for h in hoists if h.lambda_node is not None}
        self.walruses = {id(h.walrus): h for h in hoists if h.walrus is not None}
        self.dropped = {id(line) for h in hoists for line in h.dropped}

    def on_leave(
        self, original_node: cst.CSTNodeT, updated_node: cst.CSTNodeT
    ) -> cst.CSTNodeT | cst.RemovalSentinel | cst.FlattenSentinel[cst.CSTNodeT]:
        # A lambda becomes a Name: LibCST checks the replacement fits where the lambda was.
        return cast("cst.CSTNodeT", self._leave(original_node, updated_node))

    def _leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode | cst.RemovalSentinel:
        key = id(original_node)
        if key in self.lambdas and isinstance(updated_node, cst.Lambda):
            hoist = self.lambdas[key]
            hoist.built = _def_from_lambda(hoist.name, updated_node, [], None, self.indent_width)
            return cst.Name(hoist.name, lpar=updated_node.lpar, rpar=updated_node.rpar)
        if key in self.walruses and isinstance(updated_node, cst.NamedExpr):
            hoist = self.walruses[key]
            assert isinstance(updated_node.value, cst.Lambda)
            hoist.built = _def_from_lambda(hoist.name, updated_node.value, [], None, self.indent_width)
            # A bare name needs no parentheses; they go unless they hold a comment.
            parens = cst.Module([]).code_for_node(updated_node.with_changes(target=cst.Name("x"), value=cst.Name("x")))
            keep = "#" in parens
            return cst.Name(hoist.name, lpar=updated_node.lpar if keep else [], rpar=updated_node.rpar if keep else [])
        if isinstance(updated_node, cst.IndentedBlock) and isinstance(original_node, cst.IndentedBlock):
            return self._remove_from_block(original_node, updated_node)
        return updated_node

    def _remove_from_block(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        """Take hoisted statements out of a block; comments not attached to them stay in the block."""
        if not any(id(stmt) in self.removed or id(stmt) in self.dropped for stmt in original.body):
            return updated
        body: list[cst.BaseStatement] = []
        carried: list[cst.EmptyLine] = []  # lines left behind by removed statements, for the next one
        removed_first = False
        for old, new in zip(original.body, updated.body, strict=True):
            hoist = self.removed.get(id(old))
            if id(old) in self.dropped and isinstance(new, cst.SimpleStatementLine):
                # `mask = mask` goes with the variable; its comments stay, for the next statement.
                removed_first = removed_first or not body
                comment = new.trailing_whitespace.comment
                own = [cst.EmptyLine(comment=comment)] if comment is not None else []
                kept = [*new.leading_lines, *own]
                if any(line.comment is not None for line in kept):
                    carried = _join_lines(carried, kept)
                continue
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
        return _def_from_lambda(hoist.name, assign.value, attached, stmt.trailing_whitespace, self.indent_width)


# ---------------------------------------------------------------------- helpers
def _position(node: ast.AST) -> tuple[int, int]:
    return cast("int", getattr(node, "lineno", 0)), cast("int", getattr(node, "col_offset", 0))


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]


def _footer_split(region: list[str], after_block: bool) -> tuple[list[str], list[str]]:
    """LibCST's split of the lines between two top-level statements: comments indented deeper than the
    next statement belong to the previous block (its footer); the rest lead the next statement."""
    if not after_block:
        return [], region
    end = 0
    for i, line in enumerate(region):
        stripped = line.lstrip(" \t")
        if stripped.startswith("#") and len(stripped) < len(line):
            end = i + 1
    return region[:end], region[end:]


def _blank_prefix(lines: list[str]) -> tuple[list[str], list[str]]:
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    return lines[:index], lines[index:]


def _module_code(body: list[cst.FunctionDef], indent: str, newline: str) -> str:
    return cst.Module(body=body, default_indent=indent, default_newline=newline).code


def _param_count(lam: cst.Lambda) -> int:
    return len(_params(lam.params))


def _ast_param_count(a: ast.arguments) -> int:
    return len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)


def _def_from_lambda(
    name: str,
    lam: cst.Lambda,
    leading: list[cst.EmptyLine],
    header: cst.TrailingWhitespace | None,
    indent_width: int,
) -> cst.FunctionDef:
    body = _reindented(lam.body, indent_width)
    if "\n" in cst.Module([]).code_for_node(body) and not body.lpar:
        # A lambda may span lines inside the call's brackets; a `return` needs its own.
        body = body.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    returned = cst.SimpleStatementLine([cst.Return(body)])
    block = cst.IndentedBlock(body=[returned])
    if header is not None:
        block = block.with_changes(header=header)
    built = cst.FunctionDef(name=cst.Name(name), params=lam.params, body=block, leading_lines=leading)
    lost = _comments(lam) - _comments(built)  # e.g. `lambda b, h, q, kv:  # why` loses its colon's comment
    if lost:
        lines = [cst.EmptyLine(comment=cst.Comment(c)) for c in lost.elements()]
        block = block.with_changes(body=[returned.with_changes(leading_lines=lines)])
        built = built.with_changes(body=block)
    return built


def _comments(node: cst.CSTNode) -> Counter[str]:
    found: Counter[str] = Counter()

    class _Comments(cst.CSTVisitor):
        def visit_Comment(self, comment: cst.Comment) -> None:
            found[comment.value] += 1

    node.visit(_Comments())
    return found


def _reindented(body: cst.BaseExpression, indent_width: int) -> cst.BaseExpression:
    """Continuation lines of a moved lambda start one indent in from the new `return`, and a line that
    starts with a closing bracket level with it (`return (` ... `)`), keeping their shape."""
    margins: list[int] = []
    closers: list[int] = []  # margins of the lines that start with `)`, `]` or `}`
    closing: set[int] = set()

    class _Margins(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, (cst.RightParen, cst.RightSquareBracket, cst.RightCurlyBrace)):
                closing.add(id(node.whitespace_before))
            return super().on_visit(node)

        def visit_ParenthesizedWhitespace(self, node: cst.ParenthesizedWhitespace) -> None:
            if node.indent and not node.last_line.value.strip(" "):
                (closers if id(node) in closing else margins).append(len(node.last_line.value))

    body.visit(_Margins())
    if not margins and not closers:
        return body
    shift = min([*(m - indent_width for m in margins), *closers])

    class _Shift(cst.CSTTransformer):
        def leave_ParenthesizedWhitespace(
            self, original_node: cst.ParenthesizedWhitespace, updated_node: cst.ParenthesizedWhitespace
        ) -> cst.ParenthesizedWhitespace:
            value = updated_node.last_line.value
            if not updated_node.indent or value.strip(" ") or shift <= 0:
                return updated_node
            lines = [_dedented(line, shift) for line in updated_node.empty_lines]  # comment lines inside
            return updated_node.with_changes(last_line=cst.SimpleWhitespace(value[shift:]), empty_lines=lines)

    result = body.visit(_Shift())
    assert isinstance(result, cst.BaseExpression)
    return result


def _dedented(line: cst.EmptyLine, shift: int) -> cst.EmptyLine:
    value = line.whitespace.value
    if not line.indent or value.strip(" "):
        return line
    return line.with_changes(whitespace=cst.SimpleWhitespace(value[min(shift, len(value)) :]))


def _leading(stmt: cst.BaseStatement) -> Sequence[cst.EmptyLine]:
    """Blank lines and comments above a statement (above its first decorator, if any)."""
    assert isinstance(stmt, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
    return stmt.leading_lines


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


def _has_definition_time_code(node: cst.FunctionDef, future_annotations: bool) -> bool:
    """Decorators, defaults or eager annotations run when the def runs: one definition per copy, never shared."""
    every = _params(node.params)
    annotated = node.returns is not None or any(p.annotation is not None for p in every)
    return bool(node.decorators) or _has_defaults(node) or (annotated and not future_annotations)


def _params(params: cst.Parameters) -> list[cst.Param]:
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    every.extend(s for s in (params.star_arg, params.star_kwarg) if isinstance(s, cst.Param))
    return every


def _has_defaults(node: cst.FunctionDef | cst.Lambda) -> bool:
    return any(p.default is not None for p in _params(node.params))


def _share_text(node: cst.CSTNode) -> str:
    """The function's code, comments included, without blank lines before it: equal texts, equal functions."""
    if isinstance(node, cst.FunctionDef):
        node = node.with_changes(leading_lines=_split_blank(node.leading_lines)[1])
    return type(node).__name__ + ":" + cst.Module([]).code_for_node(node)


def _has_comments(removed: cst.CSTNode | None) -> bool:
    """A `v = lambda` line with comments keeps them only as its own definition: never shared."""
    if not isinstance(removed, cst.SimpleStatementLine):
        return False
    return removed.trailing_whitespace.comment is not None or any(e.comment for e in removed.leading_lines)


__all__ = ["Hoist", "RewriteError", "apply_hoists", "plan_hoists"]
