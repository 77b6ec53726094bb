"""Class attributes read as callees: `Cls.attr(...)`, `cls.attr(...)` in a classmethod, `self.attr(...)` in a
method, where `Cls` is a class of this module whose body assigns `attr`. What the attribute may hold is every
value the module writes to it (the class body, `Cls.attr = ...`, `cls.attr = ...`, `self.attr = ...` in the
class's methods); a write this cannot classify (`setattr`, `del`, unpacking, `+=`, another object's `.attr =`,
code the walk skipped, a subclass's own `attr` when the receiver may be a subclass) makes it unknown.
callees.py asks here and resolves the values as it does a name's bindings."""

from __future__ import annotations

import ast

from .resolution import Resolver
from .scopes import Scope
from .syntax import FUNCTIONS, assigned_targets, class_body_attributes

_ATTRIBUTE_SETTERS = frozenset({"setattr", "delattr"})


class ClassAttributes:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.bindings = resolver.bindings
        self._names: frozenset[str] | None = None
        self._values: dict[tuple[int, str, bool], list[ast.expr] | None] = {}

    def names(self) -> frozenset[str]:
        """The attributes a module-level class assigns in its own body (`compiled = None`): the only ones asked."""
        if self._names is None:
            classes = (stmt for stmt in self.resolver.tree.body if isinstance(stmt, ast.ClassDef))
            self._names = frozenset(name for cls in classes for name in class_body_attributes(cls))
        return self._names

    def values(self, expr: ast.Attribute) -> list[ast.expr] | None:
        """Every value the module writes to the class attribute `expr` reads (`None` literals included);
        None when `expr` is not such an attribute or some write cannot be classified."""
        if expr.attr not in self.names():
            return None
        owner = self.owner(expr.value)
        if owner is None:
            return None
        cls, via_receiver = owner
        key = (id(cls), expr.attr, via_receiver)
        if key not in self._values:
            self._values[key] = self._writes(cls, expr.attr, via_receiver)
        return self._values[key]

    def owner(self, base: ast.expr) -> tuple[ast.ClassDef, bool] | None:
        """The module-level class `base` is (its name), or whose receiver it is (the first parameter of a
        classmethod or plain method of it: True, a subclass may be passed)."""
        if not isinstance(base, ast.Name):
            return None
        bindings = self.bindings(base)
        if len(bindings) != 1:
            return None
        binding = bindings[0]
        node = binding.node
        if binding.kind == "class" and isinstance(node, ast.ClassDef):
            return (node, False) if any(s is node for s in self.resolver.tree.body) else None
        if binding.kind != "param" or not isinstance(node, ast.arg):
            return None
        method = binding.scope.node
        cls = self.resolver.parent(method) if method is not None else None
        if (
            not isinstance(method, FUNCTIONS)
            or not isinstance(cls, ast.ClassDef)
            or not any(s is cls for s in self.resolver.tree.body)
        ):
            return None
        positional = [*method.args.posonlyargs, *method.args.args]
        if not positional or positional[0] is not node or not any(s is method for s in cls.body):
            return None
        names: set[str] = set()
        for decorator in method.decorator_list:
            names |= self.resolver.qualified_names(decorator)
        if "builtins.staticmethod" in names:
            return None
        return cls, True

    def _class_scope(self, cls: ast.ClassDef) -> Scope | None:
        return next((s for s in self.resolver.scopes.made if s.node is cls and s.kind == "class"), None)

    def _writes(self, cls: ast.ClassDef, attr: str, via_receiver: bool) -> list[ast.expr] | None:
        scope = self._class_scope(cls)
        if scope is None or attr in scope.deleted or self.resolver.unseen_mentions(attr):
            return None  # the class's body was not walked, or code the walk skipped spells the attribute
        values: list[ast.expr] = []
        for binding in scope.bindings.get(attr, []):
            statement = self.resolver.parent(binding.node) if binding.node is not None else None
            if (
                binding.kind != "store"
                or binding.value is None
                or not isinstance(statement, (ast.Assign, ast.AnnAssign))
            ):
                return None  # a def, an import, unpacking, a loop target...
            values.append(binding.value)
        if not values:
            return None
        for node in ast.walk(self.resolver.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _ATTRIBUTE_SETTERS:
                name = node.args[1] if len(node.args) > 1 else None
                if not (isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value != attr):
                    return None  # `setattr(Cls, "attr", fn)`, or a name computed
            elif isinstance(node, ast.ClassDef) and node is not cls and via_receiver:
                if any(isinstance(t, ast.Name) and t.id == attr for s in node.body for t in assigned_targets(s)):
                    return None  # maybe a subclass: `cls`/`self` may be one of it
            elif isinstance(node, ast.Attribute) and node.attr == attr and not isinstance(node.ctx, ast.Load):
                statement = self.resolver.parent(node)
                if isinstance(node.ctx, ast.Del) or not isinstance(statement, (ast.Assign, ast.AnnAssign)):
                    return None
                if statement.value is None or not any(t is node for t in assigned_targets(statement)):
                    return None
                owner = self.owner(node.value)
                if owner is None or owner[0] is not cls:
                    return None  # another object's attribute of that name, or code the walk did not resolve
                values.append(statement.value)
        return values
