"""Name resolution and tree navigation over one module's scope walk: what a name may be bound to, its
qualified names, a node's parents and enclosing functions. Every other part of the analysis asks here."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .hoist_safety import ModuleSummary, module_summary
from .positions import Positions
from .relevance import RelevanceFilter
from .scopes import Access, Binding, ScopeBuilder, dotted_names, full_name
from .syntax import FuncNode, has_future_annotations


class Resolver:
    """The scope walk of one module (`ScopeBuilder`), asked about names and places."""

    def __init__(self, tree: ast.Module, text: str, positions: Positions, scopes: ScopeBuilder) -> None:
        self.tree = tree
        self.text = text
        self.positions = positions
        self.scopes = scopes
        self.future_annotations = has_future_annotations(tree)
        self._body_walks: dict[int, list[ast.AST]] = {}  # id(def / lambda) -> body_nodes, the tree lives as long
        self._top_indices: dict[int, int] | None = None
        self._module_summary: ModuleSummary | None = None

    def module_summary(self) -> ModuleSummary:
        """hoist_safety's module-wide facts (what the module does with its namespace), computed once."""
        if self._module_summary is None:
            self._module_summary = module_summary(self.tree, self.positions.text)
        return self._module_summary

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.scopes.parents.get(id(node))

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        parents = self.scopes.parents
        current = parents.get(id(node))
        while current is not None:
            yield current
            current = parents.get(id(current))

    def is_descendant(self, node: ast.AST, ancestor: ast.AST) -> bool:
        return node is ancestor or any(a is ancestor for a in self.ancestors(node))

    def enclosing_function(self, node: ast.AST) -> FuncNode | None:
        for anc in self.ancestors(node):
            if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return anc
        return None

    def outer_functions(self, node: ast.AST) -> tuple[FuncNode, ...] | None:
        """The functions around `node`, outermost first; None when its parents do not reach the module (code
        in a def the relevance filter skipped)."""
        chain = list(self.ancestors(node))
        if not chain or chain[-1] is not self.tree:
            return None
        return tuple(a for a in reversed(chain) if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    def qualname(self, node: ast.AST | None) -> str | None:
        if node is None:
            return None
        parts: list[str] = []
        for n in (node, *self.ancestors(node)):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                parts.append(n.name)
            elif isinstance(n, ast.Lambda):
                parts.append("<lambda>")
        return ".".join(reversed(parts)) or None

    # ----------------------------------------------------------------- names
    def _access(self, name: ast.Name) -> tuple[Access, str] | None:
        """The access a Name load records, or None when LibCST attributes it to a dotted prefix."""
        access = self.scopes.accesses.get(id(name))
        if access is None:
            return None
        if access.top_attribute is not None:
            for dotted, node in dotted_names(access.top_attribute):
                if access.scope.contains(dotted):
                    return (access, dotted) if node is name else None
        return access, name.id

    def _attribute_access(self, node: ast.Attribute) -> tuple[Access, str] | None:
        base: ast.expr = node
        while isinstance(base, ast.Attribute):
            base = base.value.func if isinstance(base.value, ast.Call) else base.value
        if not isinstance(base, ast.Name):
            return None
        access = self.scopes.accesses.get(id(base))
        if access is None or access.top_attribute is None:
            return None
        for dotted, found in dotted_names(access.top_attribute):
            if access.scope.contains(dotted):
                return (access, dotted) if found is node else None
        return None

    def bindings(self, name: ast.Name) -> list[Binding]:
        found = self._access(name)
        if found is None:
            return []
        access, key = found
        return sorted(access.referents(key), key=lambda b: b.position)

    def qualified_names(self, node: ast.AST) -> set[str]:
        found: tuple[Access, str] | None = None
        if isinstance(node, ast.Name):
            found = self._access(node)
        elif isinstance(node, ast.Attribute):
            found = self._attribute_access(node)
        if found is not None:
            access, key = found
            return {q for b in access.referents(key) for q in b.qualified_names(b.name)}
        full = full_name(node)
        scope = self.scopes.scope_of.get(id(node))
        if full is None or scope is None:
            return set()
        prefix: str | None = full
        assignments: list[Binding] = []
        while prefix:
            if scope.contains(prefix):
                assignments = scope.resolve(prefix)
                break
            idx = prefix.rfind(".")
            prefix = None if idx == -1 else prefix[:idx]
        if isinstance(node, ast.Name):
            for b in assignments:
                if b.node is node:
                    return b.qualified_names(full)
        return {q for b in assignments for q in b.qualified_names(full)}

    def imported_names(self, expr: ast.Attribute) -> set[str]:
        base: ast.expr = expr
        while isinstance(base, ast.Attribute):
            base = base.value
        if not isinstance(base, ast.Name):
            return set()
        if not any(b.kind == "import" for b in self.bindings(base)):
            return set()
        return self.qualified_names(expr)

    def self_assignment(self, binding: Binding) -> ast.Assign | None:
        """`mask = mask` alone on its line, in the function whose variable it is: the statement, else None.
        Run after the variable is bound it changes nothing; run before, it fails (the dominance check)."""
        target, value = binding.node, binding.value
        if binding.kind != "store" or not isinstance(target, ast.Name) or not isinstance(value, ast.Name):
            return None
        assign = self.parent(target)
        if not (isinstance(assign, ast.Assign) and assign.targets == [target] and value.id == target.id):
            return None
        scope = self.scopes.scope_of.get(id(target))
        if scope is not binding.scope or scope.kind != "function" or self.scopes.scope_of.get(id(value)) is not scope:
            return None
        return None if self.shares_a_line(assign) else assign

    # ----------------------------------------------------------------- statements and bodies
    def top_index(self, node: ast.AST) -> int:
        if self._top_indices is None:
            self._top_indices = {id(stmt): i for i, stmt in enumerate(self.tree.body)}
        current: ast.AST | None = node
        while current is not None and id(current) not in self._top_indices:
            current = self.parent(current)
        return self._top_indices[id(current)] if current is not None else -1

    def owning_function(self, node: ast.AST) -> FuncNode | None:
        """The function whose body `node` is in; None at module level or directly in a class body."""
        for anc in self.ancestors(node):
            if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return anc
            if isinstance(anc, ast.ClassDef):
                return None
        return None

    def shares_a_line(self, stmt: ast.stmt) -> bool:
        """`a = 1; v = lambda ...`: another statement on the same physical lines (one LibCST line)."""
        parent = self.parent(stmt)
        for field_name in ("body", "orelse", "finalbody"):
            block = getattr(parent, field_name, None)
            if isinstance(block, list) and any(s is stmt for s in block):
                for other in block:
                    if (
                        other is not stmt
                        and other.lineno <= (stmt.end_lineno or stmt.lineno)
                        and ((other.end_lineno or other.lineno) >= stmt.lineno)
                    ):
                        return True
        return False

    def unseen_mentions(self, *words: str) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
        """Definitions the relevance filter skipped (and nothing visited since) that spell all `words`: code
        the analysis has not seen that may use a name. Empty when nothing was skipped."""
        relevant = self.scopes.relevant
        if not isinstance(relevant, RelevanceFilter) or not self.scopes.skipped:
            return []
        unseen = [n for n in self.scopes.skipped if id(n) not in self.scopes.function_scope]
        return relevant.mentioning(unseen, *words)

    def unseen_words_beside(self, word: str) -> frozenset[str]:
        """Identifiers spelled in the skipped definitions (nothing visited since) that spell `word`."""
        relevant = self.scopes.relevant
        if not isinstance(relevant, RelevanceFilter) or not self.scopes.skipped:
            return frozenset()
        unseen = [n for n in self.scopes.skipped if id(n) not in self.scopes.function_scope]
        return relevant.words_beside(unseen, word)

    def body_nodes(self, node: FuncNode) -> list[ast.AST]:
        """Every node of the function's body (nested functions' too), walked once per analysis."""
        found = self._body_walks.get(id(node))
        if found is None:
            roots: list[ast.AST] = [node.body] if isinstance(node, ast.Lambda) else list(node.body)
            found = self._body_walks[id(node)] = [n for root in roots for n in ast.walk(root)]
        return found
