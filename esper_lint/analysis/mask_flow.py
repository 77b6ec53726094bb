"""Where a function value goes between its definition and the call that receives it as a mask.

Real code rarely passes a mask by name: it loops over a tuple of masks, appends them to a list that
`and_masks(*masks)` combines, binds parameters with `functools.partial`, stores the mask on `self` in
`__init__` or makes it a method. Each answer here is an expression (or a def) the value may come from,
resolved afterwards like any mask argument (mask_functions.py), with the route worded for messages
("via `and_masks(*masks)` at line 97"). Names are resolved through the scope walk, never by spelling:
a list is the variable its bindings say, `self` the first parameter of a method of the class.

Every answer also says whether it is complete (`known`): a list passed to code we cannot see, or an
attribute a subclass may replace, may hold more than we found. Rules that need every function (ESP009)
read `MaskUse.functions_known`; the rules about a function's body check what was found.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from .resolution import Resolver
from .scopes import Binding
from .syntax import COMPREHENSIONS, FUNCTIONS


class BoundDefinition:
    """A def reached as a bound method: `self.mmu_mask` is `mmu_mask` with `self` already bound."""

    __slots__ = ("bound", "node", "route")

    def __init__(self, node: ast.FunctionDef | ast.AsyncFunctionDef, bound: int, route: str) -> None:
        self.node = node
        self.bound = bound
        self.route = route


# What an expression may be, each with the route to it (None: the expression itself), and whether that
# list is complete.
Value = ast.expr | BoundDefinition
Found = tuple[list[tuple[Value, str | None]], bool]

_LIST_MUTATORS = frozenset({"append", "extend", "insert"})
_PASS_THROUGH_BUILTINS = frozenset({"builtins.list", "builtins.tuple", "builtins.reversed", "builtins.iter"})
_READ_ONLY_BUILTINS = frozenset({"builtins.len", "builtins.bool", "builtins.enumerate", "builtins.zip"})
_METHOD_DECORATORS = frozenset({"builtins.staticmethod", "builtins.classmethod"})


class MaskFlow:
    """Answers "what may this loop variable / list / attribute hold" over one module's scope walk."""

    def __init__(self, resolver: Resolver) -> None:
        self.scopes = resolver.scopes
        self.parent = resolver.parent
        self.bindings = resolver.bindings
        self.qualified_names = resolver.qualified_names
        self.positions = resolver.positions
        self.unseen_mentions = resolver.unseen_mentions

    def _line(self, node: ast.AST) -> int:
        return getattr(node, "lineno", 0)

    def _text(self, node: ast.AST, limit: int = 40) -> str | None:
        """The expression as written, when short enough for a message."""
        text = " ".join(self.positions.segment(node).split())
        return text if len(text) <= limit else None

    # ----------------------------------------------------------------- loops and comprehensions
    def loop_values(self, binding: Binding) -> Found | None:
        """What a `for` (or comprehension) target takes: `for mask in (causal, window)`, `for name, mask in
        MASKS.items()`, `for i, mask in enumerate(masks)`; None when the binding is no loop target or the
        iterable is not one we can list."""
        target = binding.node
        if binding.kind != "store" or binding.value is not None or not isinstance(target, ast.Name):
            return None
        path: list[int] = []
        current: ast.AST = target
        parent = self.parent(current)
        while isinstance(parent, (ast.Tuple, ast.List)):
            if any(isinstance(e, ast.Starred) for e in parent.elts):
                return None
            path.insert(0, next(i for i, e in enumerate(parent.elts) if e is current))
            current, parent = parent, self.parent(parent)
        if isinstance(parent, (ast.For, ast.AsyncFor)) and parent.target is current:
            loop, iterable = parent, parent.iter
            route = f"via the `for` loop at line {self._line(loop)}"
        elif isinstance(parent, ast.comprehension) and parent.target is current:
            iterable = parent.iter
            route = f"via the comprehension at line {self._line(parent.iter)}"
        else:
            return None
        found = self.elements(iterable, path, set())
        if found is None:
            return None
        values, known = found
        return [(v, route) for v, _ in values], known  # the route nearest the call says most

    def elements(self, expr: ast.expr, path: list[int], seen: set[int]) -> Found | None:
        """The values iterating `expr` yields, each indexed by `path` (tuple unpacking); None if unknown."""
        if id(expr) in seen:
            return None
        seen.add(id(expr))
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            return self._literal_elements(expr.elts, path, seen)
        if isinstance(expr, ast.Dict):
            return self._literal_elements([k for k in expr.keys if k is not None], path, seen)
        if isinstance(expr, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            return self._literal_elements([expr.elt], path, seen)
        if isinstance(expr, ast.Name):
            return self.name_elements(expr, path, seen)
        if not isinstance(expr, ast.Call) or any(isinstance(a, ast.Starred) for a in expr.args) or expr.keywords:
            return None
        func = expr.func
        names = self.qualified_names(func)
        if names & _PASS_THROUGH_BUILTINS and len(expr.args) == 1:
            return self.elements(expr.args[0], path, seen)
        if "builtins.enumerate" in names and len(expr.args) == 1:
            if not path:
                return None  # the (index, value) pairs themselves are no mask
            return ([], True) if path[0] == 0 else self.elements(expr.args[0], path[1:], seen)
        if "builtins.zip" in names and path and path[0] < len(expr.args):
            return self.elements(expr.args[path[0]], path[1:], seen)
        if isinstance(func, ast.Attribute) and not expr.args and func.attr in ("items", "values", "keys"):
            mapping = self._dict_literal(func.value, seen)
            if mapping is None:
                return None
            keys = [k for k in mapping.keys if k is not None]
            if func.attr == "keys":
                return self._literal_elements(keys, path, seen)
            if func.attr == "values":
                return self._literal_elements(mapping.values, path, seen)
            if not path:
                return None
            chosen = keys if path[0] == 0 else mapping.values
            return self._literal_elements(chosen, path[1:], seen)
        return None

    def _dict_literal(self, expr: ast.expr, seen: set[int]) -> ast.Dict | None:
        if isinstance(expr, ast.Dict):
            return None if any(k is None for k in expr.keys) else expr
        if not isinstance(expr, ast.Name):
            return None
        bindings = self.bindings(expr)
        if len(bindings) != 1 or bindings[0].kind != "store" or not isinstance(bindings[0].value, ast.Dict):
            return None
        if not self._only_read(bindings, expr.id, lambda load: self._is_plain_read(load)):
            return None  # `MASKS[name] = fn` elsewhere: more entries than the literal
        return self._dict_literal(bindings[0].value, seen)

    def _literal_elements(self, elts: list[ast.expr], path: list[int], seen: set[int]) -> Found | None:
        values: list[tuple[Value, str | None]] = []
        known = True
        for elt in elts:
            if isinstance(elt, ast.Starred):
                inner = self.elements(elt.value, path, seen)
                if inner is None:
                    return None
                values.extend(inner[0])
                known = known and inner[1]
                continue
            for index in path:
                if not isinstance(elt, (ast.Tuple, ast.List)) or index >= len(elt.elts):
                    return None
                elt = elt.elts[index]
            values.append((elt, None))
        return values, known

    def subscript_values(self, expr: ast.Subscript | ast.Call) -> Found | None:
        """`MASKS[name]` / `MASKS.get(name)` on a dict (or `masks[i]` on a tuple/list) literal read-only: any
        of its values."""
        if isinstance(expr, ast.Call):
            func = expr.func
            if not isinstance(func, ast.Attribute) or func.attr != "get" or len(expr.args) != 1 or expr.keywords:
                return None
            container = func.value
        else:
            container = expr.value
        found: Found | None
        mapping = self._dict_literal(container, set())
        if mapping is not None:
            found = self._literal_elements(mapping.values, [], set())
        elif isinstance(expr, ast.Subscript) and not isinstance(expr.slice, ast.Slice):
            found = self.elements(container, [], set())
        else:
            return None
        if found is None:
            return None
        text = self._text(container)
        route = f"via `{text}[...]` at line {self._line(expr)}" if text else f"via a lookup at line {self._line(expr)}"
        return [(v, route) for v, _ in found[0]], found[1]

    # ----------------------------------------------------------------- lists built step by step
    def name_elements(self, name: ast.Name, path: list[int], seen: set[int]) -> Found | None:
        """The elements of the list a name holds: its literal (or comprehension) plus what every visible
        `append`/`extend`/`insert`/`+=` adds. Complete only when every other read of the variable cannot
        change it (iterated, starred, `len()`)."""
        bindings = self.bindings(name)
        if not bindings:
            return None
        values: list[tuple[Value, str | None]] = []
        known = True
        for binding in bindings:
            value = binding.value if binding.kind == "store" else self._augmented_list(binding)
            if value is None or not isinstance(value, (ast.List, ast.Tuple, ast.ListComp, ast.Name, ast.Call)):
                return None
            found = self.elements(value, path, seen)
            if found is None:
                return None
            values.extend(found[0])
            known = known and found[1]
        added: list[ast.expr] = []
        complete = self._only_read(bindings, name.id, lambda load: self._list_read(load, added))
        for item in added:
            route = f"via `{name.id}.{self._mutator(item)}` at line {self._line(item)}"
            if self._mutator(item) == "extend()":
                found = self.elements(item, path, seen)
                if found is None:
                    known = False
                    continue
                values.extend((v, r or route) for v, r in found[0])
                known = known and found[1]
            elif not path:
                values.append((item, route))
            else:
                found = self._literal_elements([item], path, seen)
                if found is None:
                    known = False
                    continue
                values.extend((v, route) for v, _ in found[0])
        return values, known and complete

    def _mutator(self, item: ast.expr) -> str:
        call = self.parent(item)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            return f"{call.func.attr}()"
        return "+="

    def _augmented_list(self, binding: Binding) -> ast.expr | None:
        """`masks += [causal]` (a binding of kind "other"): the list added; the earlier binding holds the rest."""
        target = binding.node
        statement = self.parent(target) if target is not None else None
        if (
            isinstance(statement, ast.AugAssign)
            and isinstance(statement.op, ast.Add)
            and isinstance(statement.value, (ast.List, ast.Tuple))
        ):
            return statement.value
        return None

    def _only_read(self, bindings: list[Binding], name: str, allowed: Callable[[ast.Name], bool]) -> bool:
        """Every load of the variable these bindings make passes `allowed` (and no code the walk skipped spells it)."""
        if self.unseen_mentions(name):
            return False
        ours = {id(b) for b in bindings}
        for load in self.scopes.names.get(name, ()):
            if not isinstance(load.ctx, ast.Load):
                continue
            if any(id(b) in ours for b in self.bindings(load)) and not allowed(load):
                return False
        return True

    def _is_plain_read(self, load: ast.Name) -> bool:
        parent = self.parent(load)
        if isinstance(parent, ast.Subscript) and parent.value is load:
            return isinstance(parent.ctx, ast.Load)
        if isinstance(parent, ast.Attribute) and parent.value is load:
            return parent.attr in ("items", "values", "keys", "get")
        return self._list_read(load, [])

    def _list_read(self, load: ast.Name, added: list[ast.expr]) -> bool:
        """A read that cannot add unseen elements; `append(x)`/`insert(i, x)`/`extend(xs)` put what they add
        into `added`."""
        parent = self.parent(load)
        if isinstance(parent, ast.Attribute) and parent.value is load:
            call = self.parent(parent)
            if not isinstance(call, ast.Call) or call.func is not parent or parent.attr not in _LIST_MUTATORS:
                return False
            if any(isinstance(a, ast.Starred) for a in call.args) or call.keywords:
                return False
            wanted = 2 if parent.attr == "insert" else 1
            if len(call.args) != wanted:
                return False
            added.append(call.args[-1])
            return True
        if isinstance(parent, ast.Starred):
            return isinstance(self.parent(parent), (ast.Call, ast.Tuple, ast.List))
        if isinstance(parent, (ast.For, ast.AsyncFor)) and parent.iter is load:
            return True
        if isinstance(parent, ast.comprehension) and parent.iter is load:
            return True
        if isinstance(parent, ast.Call) and load in parent.args:
            return bool(self.qualified_names(parent.func) & (_READ_ONLY_BUILTINS | _PASS_THROUGH_BUILTINS))
        if isinstance(parent, (ast.If, ast.While, ast.IfExp)) and parent.test is load:
            return True
        if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not):
            return True
        return isinstance(parent, ast.AugAssign) and parent.target is load

    def starred(self, starred: ast.Starred, combinator: ast.Call) -> Found | None:
        """`and_masks(*masks)`: the masks the list holds, routed through that call."""
        found = self.elements(starred.value, [], set())
        if found is None:
            return None
        callee = self._text(combinator.func) or "the combinator"
        value = self._text(starred.value)
        where = f"`{callee}(*{value})`" if value else f"the `*` argument of `{callee}`"
        route = f"via {where} at line {self._line(combinator)}"
        return [(v, route) for v, _ in found[0]], found[1]

    # ----------------------------------------------------------------- attributes of `self`
    def self_attribute(self, expr: ast.Attribute, is_self_param: Callable[[ast.arg], bool]) -> Found | None:
        """`self.mask_fn`: what methods of the same class assign to it (`self.mask_fn = causal`), or the
        method of that name (`self.mmu_mask`, a `BoundDefinition`). Never complete: a subclass or another
        module may replace it."""
        owner = expr.value
        if not isinstance(owner, ast.Name):
            return None
        bindings = self.bindings(owner)
        if len(bindings) != 1 or bindings[0].kind != "param" or not isinstance(bindings[0].node, ast.arg):
            return None
        param = bindings[0].node
        if not is_self_param(param):
            return None
        arguments = self.parent(param)
        method = self.parent(arguments) if arguments is not None else None
        cls = self.parent(method) if method is not None else None
        if not isinstance(cls, ast.ClassDef):
            return None
        just_assigned = self._assigned_just_before(expr, param)
        if just_assigned is not None:  # `self.mask_fn = causal` right above: that is what is read
            return [just_assigned], True
        values: list[tuple[Value, str | None]] = []
        for stmt in cls.body:
            if isinstance(stmt, FUNCTIONS) and stmt.name == expr.attr:
                names: set[str] = set()
                for d in stmt.decorator_list:
                    names |= self.qualified_names(d)
                if len(stmt.decorator_list) > len(names & _METHOD_DECORATORS):
                    return None  # `@property`, `@cache`...: not the function itself
                bound = 0 if "builtins.staticmethod" in names else 1
                values.append((BoundDefinition(stmt, bound, f"via the bound method `self.{expr.attr}`"), None))
            elif isinstance(stmt, FUNCTIONS):
                values.extend(self._assigned_in(stmt, expr.attr))
        return (values, False) if values else None

    def _assigned_just_before(self, expr: ast.Attribute, param: ast.arg) -> tuple[Value, str | None] | None:
        """`self.X = value` in the same block as the statement that reads `self.X`, with nothing that could
        change it in between (no call, no other statement binding attributes)."""
        statement: ast.AST = expr
        parent = self.parent(statement)
        while parent is not None and not any(
            isinstance(getattr(parent, f, None), list) and statement in getattr(parent, f)
            for f in ("body", "orelse", "finalbody")
        ):
            statement, parent = parent, self.parent(parent)
        if parent is None or not isinstance(statement, ast.stmt):
            return None
        block = next(
            getattr(parent, f) for f in ("body", "orelse", "finalbody") if statement in (getattr(parent, f, None) or [])
        )
        for previous in reversed(block[: block.index(statement)]):
            if isinstance(previous, ast.Assign) and len(previous.targets) == 1:
                target = previous.targets[0]
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == expr.attr
                    and isinstance(target.value, ast.Name)
                    and [b.node for b in self.bindings(target.value)] == [param]
                ):
                    return previous.value, f"via `self.{expr.attr}` (assigned at line {previous.lineno})"
            if any(isinstance(n, (ast.Call, ast.Attribute)) for n in ast.walk(previous)):
                return None
        return None

    def _assigned_in(self, method: ast.FunctionDef | ast.AsyncFunctionDef, attr: str) -> list[tuple[Value, str | None]]:
        """`self.<attr> = value` statements in one method (its first parameter being `self`)."""
        positional = [*method.args.posonlyargs, *method.args.args]
        if not positional or any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in method.decorator_list):
            return []
        if id(method) not in self.scopes.function_scope:
            self.scopes.skipped_body(method)  # skipped by the relevance filter: its names must resolve now
        found: list[tuple[Value, str | None]] = []
        stack: list[ast.AST] = list(method.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (*FUNCTIONS, ast.ClassDef, ast.Lambda, *COMPREHENSIONS)):
                continue
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if (
                        isinstance(t, ast.Attribute)
                        and t.attr == attr
                        and isinstance(t.value, ast.Name)
                        and [b.node for b in self.bindings(t.value)] == [positional[0]]
                    ):
                        found.append((node.value, f"via `self.{attr}` (assigned at line {node.lineno})"))
            stack.extend(ast.iter_child_nodes(node))
        return found
