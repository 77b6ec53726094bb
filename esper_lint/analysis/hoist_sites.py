"""Hoist sites: what moving a nested mask function to module level would touch, as the fixer needs it.

Python's own scoping decides here, not LibCST's: a name bound anywhere in a function is local to all of
it, class bodies are skipped by the functions nested in them, and a class body that binds a name reads
it from the class or from module level, never from the enclosing function. Why a move could change what
the program does in other ways (definition-time code, dynamic scope) is hoist_safety.py.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator

from ..core.span import first_line
from . import name_stability
from .model import HoistForm, HoistSite, MaskFunction, class_attribute_reason
from .resolution import Resolver
from .scopes import Scope
from .syntax import FUNCTIONS, FuncNode, definition_time_roots, names_in


class HoistSites:
    """The `HoistSite` of each nested function the rules may offer to move."""

    def __init__(self, resolver: Resolver) -> None:
        self.tree = resolver.tree
        self.text = resolver.text
        self.positions = resolver.positions
        self.scopes = resolver.scopes
        self.future_annotations = resolver.future_annotations
        self.parent = resolver.parent
        self.ancestors = resolver.ancestors
        self.top_index = resolver.top_index
        self.self_assignment = resolver.self_assignment
        self.owning_function = resolver.owning_function
        self.shares_a_line = resolver.shares_a_line

    def hoist_site(self, node: FuncNode, fn: MaskFunction) -> HoistSite:
        top = self.top_index(node)
        variable = node.name if not isinstance(node, ast.Lambda) else self.assigned_lambda_variable(node)
        form = HoistForm.DEF if not isinstance(node, ast.Lambda) else HoistForm.INLINE_LAMBDA
        binder: ast.AST | None = node if not isinstance(node, ast.Lambda) else fn.binding_node
        if variable is not None and isinstance(node, ast.Lambda):
            form = HoistForm.ASSIGNED_LAMBDA
        elif isinstance(node, ast.Lambda) and (walrus := self.walrus_target(node)) is not None:
            form, variable, binder = HoistForm.WALRUS_LAMBDA, walrus.id, walrus
        site = HoistSite(top, form, variable)
        named = self.parent(node)
        if form is HoistForm.INLINE_LAMBDA and isinstance(named, ast.NamedExpr) and isinstance(named.target, ast.Name):
            site.walrus = named.target.id
        site.enclosing_def = next(
            (a for a in self.ancestors(node) if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef))), None
        )
        reasons = fn.unfixable_reasons
        readers: list[Scope] = []
        if variable is None:
            readers.append(self.scopes.scope_of[id(node)])
        else:
            owner = self.binding_scope(node)
            if owner is None:  # a def under an `if` in a class body: still a class attribute
                _add_reason(reasons, class_attribute_reason(variable))
                return site
            readers.append(owner)
            # `mask = mask` rebinds the variable to the value it already has: the fix deletes it.
            bindings = []
            for b in owner.bindings.get(variable, []):
                assign = self.self_assignment(b)
                if assign is None:
                    bindings.append(b)
                else:
                    site.self_assignments.append(assign)
            skipped = {id(n) for a in site.self_assignments for n in (a.targets[0], a.value)}
            if not any(b.node is binder for b in bindings):
                reasons.append(f"`{variable}` is declared `global` or `nonlocal` in the enclosing function")
            elif len(bindings) > 1:
                _add_reason(reasons, f"`{variable}` is bound more than once in its scope")
            if variable in owner.deleted:
                reasons.append(f"`{variable}` is deleted with `del` in the enclosing function")
            if owner.node is not None and self.in_string_annotation(owner.node, variable):
                reasons.append(f"`{variable}` is referenced from a string annotation")
            for name in self.scopes.names.get(variable, ()):
                reader = self.scopes.scope_of.get(id(name))
                # Lexical scoping: whatever resolves to the owner's variable is inside the owner.
                if name is not binder and reader is not None and self.owner(reader, variable) is owner:
                    if id(name) not in skipped:  # deleted with its statement: nothing to rename
                        site.references.append(self.positions.span(name))
                    site.reference_nodes.append(name)  # the read in `mask = mask` is checked all the same
                    readers.append(reader)
        site.shadowing = self.shadowing(readers)
        if variable is not None:
            site.owner = id(readers[0])
        if self.form_feed_indented(top):
            reasons.append(
                "a line of its top-level statement is indented with a form feed, which LibCST (the engine "
                "that rewrites the code) cannot parse"
            )
        late = self.late_module_names(node, top)
        if late:
            listed = ", ".join(f"`{n}`" for n in late)
            reasons.append(
                f"its decorators, defaults or annotations read {listed}, which module level does not bind "
                "(once and for all) before the enclosing top-level statement"
            )
        from_class = self.class_scope_names(node)
        if from_class:
            listed = ", ".join(f"`{n}`" for n in from_class)
            reasons.append(
                f"its decorators, defaults or annotations read {listed}, which the class body around it binds; "
                "at module level they would read another variable"
            )
        if name_stability.star_import_after(self.tree, top):
            reasons.append(
                "a `from ... import *` after the enclosing top-level statement could bind the new module-level "
                "name, and later calls would read what it imports"
            )
        mangled = self.mangled_name(node, variable)
        if mangled:
            reasons.append(mangled)
        return site

    def form_feed_indented(self, top: int) -> bool:
        """Python accepts a form feed in indentation (it resets the column); LibCST's tokenizer does not."""
        if top < 0 or "\f" not in self.text:
            return False
        stmt = self.tree.body[top]
        lines = self.positions.lines[first_line(stmt) - 1 : stmt.end_lineno]
        return any("\f" in line[: len(line) - len(line.lstrip(" \t\f"))] for line in lines)

    def in_string_annotation(self, root: ast.AST, name: str) -> bool:
        """Does a string annotation inside `root` mention `name`? (Renaming would not reach inside it.)"""
        word = re.compile(rf"\b{re.escape(name)}\b")
        first, last = getattr(root, "lineno", 0), getattr(root, "end_lineno", 0)
        return any(
            first <= c.lineno <= last and isinstance(c.value, str) and word.search(c.value)
            for c in self.scopes.string_annotations
        )

    def assigned_lambda_variable(self, node: ast.Lambda) -> str | None:
        """`v` for `v = lambda ...` alone on its line(s) in a function body: the statement becomes `def v`."""
        assign = self.parent(node)
        if not (
            isinstance(assign, ast.Assign)
            and assign.value is node
            and len(assign.targets) == 1
            and isinstance(assign.targets[0], ast.Name)
        ):
            return None
        if self.owning_function(assign) is None or self.shares_a_line(assign):
            return None  # at class level it stays an attribute: the lambda is replaced in place
        return assign.targets[0].id

    def walrus_target(self, node: ast.Lambda) -> ast.Name | None:
        """`fn` for `create_mask(fn := lambda ..., ...)` where the walrus runs whenever its statement does, in
        a function's own body: the fix replaces `fn := lambda ...` by the hoisted def's name (`fn`).
        Anything that may skip it (`a if c else (fn := ...)`, `x or (fn := ...)`, a comprehension, a
        lambda, an `assert`) keeps the inline form, which leaves the walrus in place."""
        named = self.parent(node)
        if not (isinstance(named, ast.NamedExpr) and named.value is node and isinstance(named.target, ast.Name)):
            return None
        child: ast.AST = named
        parent = self.parent(named)
        while isinstance(parent, (ast.expr, ast.keyword)):
            skippable = (
                isinstance(parent, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
                or (isinstance(parent, ast.IfExp) and child is not parent.test)
                or (isinstance(parent, ast.BoolOp) and child is not parent.values[0])
            )
            if skippable:
                return None
            child, parent = parent, self.parent(parent)
        if not isinstance(parent, ast.stmt) or isinstance(parent, (ast.Assert, ast.ClassDef, *FUNCTIONS)):
            return None  # in a decorator, default or annotation; or an `assert` (skipped under -O)
        owner = self.owning_function(parent)
        scope = self.scopes.function_scope.get(id(owner)) if isinstance(owner, FUNCTIONS) else None
        if scope is None or self.scopes.scope_of.get(id(named.target)) is not scope:
            return None
        return named.target

    def binding_scope(self, node: FuncNode) -> Scope | None:
        """The scope a def (or the `v = lambda` statement) binds its variable in: the enclosing function's."""
        owner = self.owning_function(node if not isinstance(node, ast.Lambda) else self.parent(node) or node)
        return self.scopes.function_scope[id(owner)] if owner is not None else None

    def owner(self, scope: Scope, name: str) -> Scope | None:
        """The scope whose variable `name` is when used in `scope`, as CPython's compiler decides;
        None for module level (a global or builtin)."""
        current: Scope | None = scope
        first = True
        while current is not None and current.kind not in ("module", "builtins"):
            if first or current.kind != "class":  # enclosing class bodies are not on the lookup path
                declared = current.overwrites.get(name)
                if declared is not None and declared.kind == "module":
                    return None  # `global name`
                if declared is None and (name in current.bindings or name in current.deleted):
                    return current
            first = False
            current = current.parent
        return None

    def shadowing(self, readers: list[Scope]) -> dict[str, frozenset[int]]:
        """Names the scopes on the readers' lookup paths bind, each with those scopes' identities."""
        found: dict[str, set[int]] = {}
        for reader in readers:
            current: Scope | None = reader
            first = True
            while current is not None and current.kind not in ("module", "builtins"):
                if first or current.kind != "class":
                    for name in (*current.bindings, *current.deleted):
                        found.setdefault(name, set()).add(id(current))
                first = False
                current = current.parent
        return {name: frozenset(scopes) for name, scopes in found.items()}

    def class_scope_names(self, node: FuncNode) -> list[str]:
        """Names its decorators, defaults or annotations read from the class body they run in (`w=W` in a
        lambda evaluated in `class Config: W = 100`): hoisted, they would read module level instead."""
        found: list[str] = []
        for name in names_in(definition_time_roots(node, self.future_annotations)):
            scope = self.scopes.scope_of.get(id(name))
            owner = self.owner(scope, name.id) if scope is not None else None
            if owner is not None and owner.kind == "class" and name.id not in found:
                found.append(name.id)
        return found

    def late_module_names(self, node: FuncNode, top: int) -> list[str]:
        """Module names read when the def/lambda runs that module level does not bind, finally, before `top`."""
        late: list[str] = []
        for name in names_in(definition_time_roots(node, self.future_annotations)):
            scope = self.scopes.scope_of.get(id(name))
            if scope is None or self.owner(scope, name.id) is not None or name.id in late:
                continue  # a local of an enclosing function or class: definition_time_refs / class_scope_names
            bindings = self.scopes.module.bindings.get(name.id)
            if bindings:
                if all(b.node is not None and self.top_index(b.node) < top for b in bindings):
                    continue
            elif hasattr(builtins, name.id):
                continue
            late.append(name.id)  # bound later, or not at all (a star import, an injected name)
        return late

    def mangled_name(self, node: FuncNode, variable: str | None) -> str | None:
        """Inside a class Python mangles `__x` to `_Class__x`: moved out of it, the name would change."""
        cls = next((a for a in self.ancestors(node) if isinstance(a, ast.ClassDef)), None)
        if cls is None or not cls.name.strip("_"):
            return None
        found = [variable] if variable is not None and _is_private(variable) else []
        found += [n for n in _identifiers(node) if _is_private(n)]
        if not found:
            return None
        mangled = f"_{cls.name.lstrip('_')}{found[0]}"
        return (
            f"it uses the private name `{found[0]}` inside class `{cls.name}`, where Python mangles it to "
            f"`{mangled}`; at module level it would name something else"
        )


def _add_reason(reasons: list[str], reason: str) -> None:
    if reason not in reasons:
        reasons.append(reason)


def _is_private(name: str) -> bool:
    return name.startswith("__") and not name.endswith("__")


def _identifiers(root: ast.AST) -> Iterator[str]:
    """Every identifier the compiler would mangle inside a class: names, attributes, parameters, keywords."""
    for n in ast.walk(root):
        if isinstance(n, ast.Name):
            yield n.id
        elif isinstance(n, ast.Attribute):
            yield n.attr
        elif isinstance(n, (ast.arg, ast.keyword)) and n.arg:
            yield n.arg
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield n.name
        elif isinstance(n, ast.alias):
            yield n.asname or n.name.partition(".")[0]
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            yield from n.names
