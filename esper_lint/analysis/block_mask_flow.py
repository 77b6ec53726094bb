"""Where a BlockMask goes: which `create_block_mask` call (or `BlockMask` parameter) an expression's value comes
from, through variables, `self.<attr>` and `._adjust(...)`; then the three places the rules care about:
`._adjust(...)` on a mask that reads its own length (ESP018), a slice reaching `flex_attention` without a
usable `mask_mod` (ESP020), and a BlockMask built once (`__init__`, import) and read in `forward` (ESP028,
ESP029).

Names are resolved through the analysis' scopes; `self.<attr>` is the attribute of the method's first
parameter, written in the class's own methods (every such write must be a BlockMask for it to count).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ..core.apis import BLOCK_MASK_CONSTRUCTORS, FLEX_MODULE
from ..core.span import first_line
from .call_sites import CallSiteFacts
from .callees import Callees
from .flow_model import AdjustedBlockMask, SlicedBlockMask, StoredBlockMask
from .model import MaskFunction, MaskUse
from .resolution import Resolver
from .scopes import Binding
from .syntax import COMPREHENSIONS, FUNCTIONS

_BLOCK_MASK = f"{FLEX_MODULE}.BlockMask"
_SCOPE_NODES = (*FUNCTIONS, ast.Lambda, *COMPREHENSIONS)
_SAME_MASK_METHODS = frozenset({"_adjust", "to"})  # return a BlockMask with the receiver's mask_mod
_MAX_DEPTH = 6
# A value a mask function (or a length argument) reads: a binding, and the attribute path read from it.
_Key = tuple[int, str]


class BlockMaskFlow:
    def __init__(self, resolver: Resolver, callees: Callees, call_sites: CallSiteFacts, builders: list[MaskUse]):
        self.resolver = resolver
        self.positions = resolver.positions
        self.scopes = resolver.scopes
        self.bindings = resolver.bindings
        self.callees = callees
        self.call_sites = call_sites
        self.builders = {id(u.call_node): u for u in builders}
        self._attributes: dict[tuple[int, str], list[ast.Call] | None] = {}
        self._visited_classes: set[int] = set()

    # ----------------------------------------------------------------- where a BlockMask comes from
    def builds_block_mask(self, call: ast.Call) -> bool:
        if self.resolver.qualified_names(call.func) & BLOCK_MASK_CONSTRUCTORS:
            return True
        return any(
            r.api.qualified_name in BLOCK_MASK_CONSTRUCTORS for r in self.callees.resolve_callable(call.func, set())
        )

    def origins(self, expr: ast.expr, path: frozenset[int] = frozenset()) -> list[ast.Call] | None:
        """The constructor calls `expr`'s BlockMask may come from; [] for a parameter annotated `BlockMask`
        (a BlockMask built elsewhere); None when `expr` is not provably a BlockMask."""
        if id(expr) in path or len(path) > _MAX_DEPTH:
            return None
        path = path | {id(expr)}
        if isinstance(expr, ast.Call):
            if self.builds_block_mask(expr):
                return [expr]
            func = expr.func
            if isinstance(func, ast.Attribute) and func.attr in _SAME_MASK_METHODS:
                return self.origins(func.value, path)
            return None
        if isinstance(expr, ast.Name):
            bindings = self.bindings(expr)
            if not bindings:
                return None
            found: list[ast.Call] = []
            for binding in bindings:
                if binding.kind == "store" and binding.value is not None:
                    more = self.origins(binding.value, path)
                elif binding.kind == "param" and self._annotated_block_mask(binding.node):
                    more = []
                else:
                    return None
                if more is None:
                    return None
                found.extend(more)
            return found
        owner = self.self_attribute(expr)
        if owner is not None:
            return self._attribute_origins(*owner)
        return None

    def _annotated_block_mask(self, param: ast.AST | None) -> bool:
        annotation = param.annotation if isinstance(param, ast.arg) else None
        candidates: list[ast.expr] = []
        if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):  # `BlockMask | None`
            candidates = [annotation.left, annotation.right]
        elif isinstance(annotation, ast.Subscript):  # `Optional[BlockMask]`
            if "typing.Optional" in self.resolver.qualified_names(annotation.value):
                candidates = [annotation.slice]
        elif annotation is not None:
            candidates = [annotation]
        return any(
            isinstance(c, (ast.Name, ast.Attribute)) and _BLOCK_MASK in self.resolver.qualified_names(c)
            for c in candidates
        )

    def self_attribute(self, expr: ast.AST) -> tuple[ast.ClassDef, str] | None:
        """`self.attr` in a method: the class whose method it is, and `attr`. `self` must be the method's
        first parameter (also when read from a function nested in the method)."""
        if not (isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name)):
            return None
        bindings = self.bindings(expr.value)
        if len(bindings) != 1 or bindings[0].kind != "param":
            return None
        method = bindings[0].scope.node
        cls = self.resolver.parent(method) if method is not None else None
        if not isinstance(method, FUNCTIONS) or not isinstance(cls, ast.ClassDef) or method not in cls.body:
            return None
        if _self_name(method) != expr.value.id or not self._is_plain_method(method):
            return None
        return cls, expr.attr

    def _is_plain_method(self, method: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        for decorator in method.decorator_list:
            if self.resolver.qualified_names(decorator) & {"builtins.staticmethod", "builtins.classmethod"}:
                return False
        return True

    def _attribute_origins(self, cls: ast.ClassDef, attr: str) -> list[ast.Call] | None:
        key = (id(cls), attr)
        if key in self._attributes:
            return self._attributes[key]
        self._attributes[key] = None  # while computing: a write that reads the attribute itself proves nothing
        values = self.attribute_values(cls, attr)
        found: list[ast.Call] | None = [] if values else None
        for value in values or ():
            more = self.origins(value)
            if more is None or found is None:
                found = None
                break
            found.extend(more)
        self._attributes[key] = found
        return found

    def attribute_values(self, cls: ast.ClassDef, attr: str) -> list[ast.expr] | None:
        """Every value the class's own code assigns to `self.attr` (or to `attr` in the class body); None
        when it is written any other way (`+=`, unpacking, `del`)."""
        values: list[ast.expr] = []
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attr for t in stmt.targets):
                values.append(stmt.value)
            elif isinstance(stmt, FUNCTIONS) and self._is_plain_method(stmt):
                name = _self_name(stmt)
                if name is None:
                    continue
                writes = list(_attribute_writes(stmt, name, attr))
                if writes:
                    self.visit(stmt)  # to resolve the names in the values written
                for write in writes:
                    if write is None:
                        return None
                    values.append(write)
        return values

    def visit(self, definition: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        """Make sure the scope walk saw this def's body (the relevance filter may have skipped it)."""
        if id(definition) in self.scopes.skipped_in and id(definition) not in self.scopes.function_scope:
            self.scopes.skipped_body(definition)

    def visit_defs_mentioning(self, word: str) -> None:
        """Visit the skipped top-level defs, classes and methods whose text spells `word` (a call we look for)."""
        for stmt in self.resolver.tree.body:
            if not isinstance(stmt, (*FUNCTIONS, ast.ClassDef)) or not self._spells(stmt, word):
                continue
            if isinstance(stmt, ast.ClassDef) and id(stmt) in self.scopes.skipped_in:
                self.visit_class(stmt)
            for node in stmt.body if isinstance(stmt, ast.ClassDef) else [stmt]:
                if isinstance(node, FUNCTIONS) and self._spells(node, word):
                    self.visit(node)

    def _spells(self, node: ast.stmt, word: str) -> bool:
        return any(word in line for line in self.positions.lines[first_line(node) - 1 : node.end_lineno])

    def visit_class(self, cls: ast.ClassDef) -> None:
        """The body of a class the relevance filter skipped whole (its name is bound already)."""
        if id(cls) not in self.scopes.skipped_in or id(cls) in self._visited_classes:
            return
        self._visited_classes.add(id(cls))
        inner = self.scopes.new_scope("class", cls.name, self.scopes.skipped_in[id(cls)], cls)
        for stmt in cls.body:
            self.scopes.visit(stmt, inner, cls, None)

    # ----------------------------------------------------------------- ESP018: _adjust
    def adjusted(self) -> list[AdjustedBlockMask]:
        if "_adjust" not in self.resolver.text:
            return []
        self.visit_defs_mentioning("_adjust")
        found: list[AdjustedBlockMask] = []
        for call in list(self.scopes.calls):
            func = call.func
            if not (isinstance(func, ast.Attribute) and func.attr == "_adjust"):
                continue
            lengths: list[str] = []
            functions: list[MaskFunction] = []
            for origin in self.origins(func.value) or ():
                use = self.builders.get(id(origin))
                read = self.lengths_read(use) if use is not None else []
                if use is not None and read:
                    lengths += read
                    functions += use.functions
            if lengths:
                span = self.positions.span(call)
                found.append(AdjustedBlockMask(span, tuple(dict.fromkeys(lengths)), tuple(functions)))
        return found

    def lengths_read(self, use: MaskUse) -> list[str]:
        """The Q_LEN / KV_LEN arguments (as written) whose value the mask function reads: it closes over
        them, over something computed from them, or a factory call in the mask argument receives them."""
        lengths: list[tuple[frozenset[int], str, str]] = []
        for parameter in ("Q_LEN", "KV_LEN"):
            arg = use.arguments.get(parameter)
            key = _chain(arg.node) if arg is not None else None
            if key is not None:
                base, attrs = key
                ids = frozenset(id(b) for b in self.bindings(base))
                if ids:
                    lengths.append((ids, attrs, self.positions.segment(arg.node) if arg else ""))
        if not lengths:
            return []
        reads = self._mask_reads(use)
        return [text for ids, attrs, text in lengths if any(k[0] in ids and k[1] == attrs for k in reads)]

    def _mask_reads(self, use: MaskUse) -> set[_Key]:
        keys: set[_Key] = set()
        roots: list[tuple[ast.AST, set[int]]] = []
        if use.arg_node is not None:
            roots.append((use.arg_node, _scope_nodes(use.arg_node)))
        for fn in _with_callees(use.functions):
            if fn.ast_node is not None:
                roots.append((fn.ast_node, _scope_nodes(fn.ast_node)))
        for root, local in roots:
            for name in _loads(root):
                self._add_reads(name, local, keys, 0)
        return keys

    def _add_reads(self, name: ast.Name, local: set[int], keys: set[_Key], depth: int) -> None:
        attrs = _attribute_path(self.resolver, name)
        for binding in self.bindings(name):
            if binding.scope.node is not None and id(binding.scope.node) in local:
                continue  # the function's own parameter or local
            key = (id(binding), attrs)
            if key in keys:
                continue
            keys.add(key)
            if binding.kind == "store" and binding.value is not None and depth < _MAX_DEPTH:
                for inner in _loads(binding.value):  # `off = kv_len - q_len`: reading `off` reads both
                    self._add_reads(inner, set(), keys, depth + 1)

    # ----------------------------------------------------------------- ESP020: slices
    def sliced(self, block_mask_arguments: list[tuple[ast.Call, ast.expr]]) -> list[SlicedBlockMask]:
        found: list[SlicedBlockMask] = []
        for call, value in block_mask_arguments:
            if isinstance(value, ast.Subscript) and self.origins(value.value) is not None:
                found.append(self._sliced(call, value, False))
            elif isinstance(value, ast.Name):
                bindings = self.bindings(value)
                slices = [b.value for b in bindings if b.kind == "store" and isinstance(b.value, ast.Subscript)]
                if not bindings or len(slices) != len(bindings):
                    continue
                if any(isinstance(s, ast.Subscript) and self.origins(s.value) is None for s in slices):
                    continue
                assigned = self._mask_mod_assignments(value, bindings)
                if assigned is None or (assigned and not all(assigned)):
                    continue  # a usable mask_mod is assigned, or the slice goes where we cannot follow
                first = slices[0]
                assert isinstance(first, ast.Subscript)
                found.append(self._sliced(call, first, bool(assigned)))
        return found

    def _sliced(self, call: ast.Call, subscript: ast.Subscript, own: bool) -> SlicedBlockMask:
        return SlicedBlockMask(self.positions.span(call.func), self.positions.span(subscript), own)

    def _mask_mod_assignments(self, name: ast.Name, bindings: list[Binding]) -> list[bool] | None:
        """For each `slice.mask_mod = value` on these bindings: whether `value` reads the slice's own
        `mask_mod`. None when the slice is used in a way that could set one (passed whole elsewhere)."""
        ids = {id(b) for b in bindings}
        assignments: list[bool] = []
        for other in self.scopes.names.get(name.id, ()):
            if other is name or not isinstance(other.ctx, ast.Load):
                continue
            if not any(id(b) in ids for b in self.bindings(other)):
                continue
            parent = self.resolver.parent(other)
            if isinstance(parent, ast.Attribute):
                if parent.attr == "mask_mod" and isinstance(parent.ctx, ast.Store):
                    assign = self.resolver.parent(parent)
                    value = assign.value if isinstance(assign, (ast.Assign, ast.AnnAssign)) else None
                    if value is None:
                        return None
                    assignments.append(self._reads_own_mask_mod(value, ids))
                continue  # another attribute (`.shape`, `.mask_mod` read): no effect on its mask_mod
            if not self.call_sites.is_block_mask_slot(other):
                return None
        return assignments

    def _reads_own_mask_mod(self, value: ast.expr, ids: set[int], depth: int = 0) -> bool:
        """`value` reads `slice.mask_mod`, itself or through a variable bound to something that does
        (`inner = sliced.mask_mod; sliced.mask_mod = lambda ...: inner(...)`)."""
        for node in ast.walk(value):
            if isinstance(node, ast.Attribute) and node.attr == "mask_mod" and isinstance(node.value, ast.Name):
                if any(id(b) in ids for b in self.bindings(node.value)):
                    return True
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and depth < _MAX_DEPTH:
                values = [b.value for b in self.bindings(node) if b.kind == "store" and id(b) not in ids]
                if any(v is not None and self._reads_own_mask_mod(v, ids, depth + 1) for v in values):
                    return True
        return False

    # ----------------------------------------------------------------- ESP028/ESP029: built once, read in forward
    def stored(self) -> list[StoredBlockMask]:
        found: list[StoredBlockMask] = []
        done: set[int] = set()
        for use in self.builders.values():
            call = use.call_node
            function = self.resolver.enclosing_function(call)
            if function is None:
                found.extend(self._module_level(use))
                continue
            cls = self.resolver.parent(function)
            if (
                isinstance(function, FUNCTIONS)
                and function.name == "__init__"
                and isinstance(cls, ast.ClassDef)
                and id(cls) not in done
            ):
                done.add(id(cls))
                found.extend(self._built_in_init(cls, function))
        return found

    def _module_level(self, use: MaskUse) -> Iterator[StoredBlockMask]:
        assign = self.resolver.parent(use.call_node)
        if not (
            isinstance(assign, ast.Assign)
            and self.resolver.parent(assign) is self.resolver.tree
            and len(assign.targets) == 1
            and isinstance(assign.targets[0], ast.Name)
        ):
            return
        target = assign.targets[0]
        for read in self.scopes.names.get(target.id, ()):
            if not isinstance(read.ctx, ast.Load) or not any(b.node is target for b in self.bindings(read)):
                continue
            forward = self._forward_of(read)
            if forward is not None and _plain_read(read, self.resolver.parent(read)) and not self._rebuilds(forward):
                yield StoredBlockMask(use, f"`{target.id}`", "module level", self._place(forward, read))
                return

    def _built_in_init(self, cls: ast.ClassDef, init: ast.FunctionDef | ast.AsyncFunctionDef) -> list[StoredBlockMask]:
        self_name = _self_name(init)
        forward = next((s for s in cls.body if isinstance(s, FUNCTIONS) and s.name == "forward"), None)
        forward_self = _self_name(forward) if forward is not None else None
        if self_name is None or forward is None or forward_self is None or self._rebuilds(forward):
            return []
        found: list[StoredBlockMask] = []
        for node in ast.walk(init):
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target = node.targets[0]
            if not (_is_attribute_of(target, self_name) and isinstance(target, ast.Attribute)):
                continue
            attr = target.attr
            if self._written_outside(cls, init, attr):
                continue  # refreshed elsewhere (a cache keyed by length): not built once
            read = next(
                (r for r, parent in _attribute_reads(forward, forward_self, attr) if _plain_read(r, parent)), None
            )
            if read is None:
                continue
            for origin in self.origins(node.value) or ():
                use = self.builders.get(id(origin))
                if use is not None:
                    built_in = f"`{self.resolver.qualname(init)}`"
                    found.append(StoredBlockMask(use, f"`{self_name}.{attr}`", built_in, self._place(forward, read)))
        return found

    def _written_outside(self, cls: ast.ClassDef, init: ast.AST, attr: str) -> bool:
        for stmt in cls.body:
            if stmt is init or not isinstance(stmt, FUNCTIONS):
                continue
            name = _self_name(stmt)
            if name is not None and any(True for _ in _attribute_writes(stmt, name, attr)):
                return True
        return False

    def _forward_of(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        function = self.resolver.enclosing_function(node)
        cls = self.resolver.parent(function) if function is not None else None
        if isinstance(function, FUNCTIONS) and function.name == "forward" and isinstance(cls, ast.ClassDef):
            return function
        return None

    def _rebuilds(self, forward: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """`forward` builds (or adjusts) BlockMasks itself: it handles other shapes its own way."""
        for node in ast.walk(forward):
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Attribute) and node.func.attr == "_adjust":
                    return True
                if id(node) in self.builders:
                    return True
        return False

    def _place(self, function: ast.FunctionDef | ast.AsyncFunctionDef, read: ast.AST) -> str:
        return f"`{self.resolver.qualname(function)}` (line {getattr(read, 'lineno', function.lineno)})"


def _self_name(method: ast.AST | None) -> str | None:
    if not isinstance(method, FUNCTIONS):
        return None
    positional = [*method.args.posonlyargs, *method.args.args]
    return positional[0].arg if positional else None


def _is_attribute_of(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name


def _attribute_writes(method: ast.AST, self_name: str, attr: str) -> Iterator[ast.expr | None]:
    """The values assigned to `self.attr` in a method; None for a write of another kind."""
    for node in ast.walk(method):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if _is_attribute_of(target, self_name) and isinstance(target, ast.Attribute) and target.attr == attr:
                    yield node.value
                elif isinstance(target, (ast.Tuple, ast.List)) and any(
                    isinstance(e, ast.Attribute) and _is_attribute_of(e, self_name) and e.attr == attr
                    for e in target.elts
                ):
                    yield None
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            target = node.target
            if isinstance(target, ast.Attribute) and _is_attribute_of(target, self_name) and target.attr == attr:
                yield node.value if isinstance(node, ast.AnnAssign) else None


def _attribute_reads(method: ast.AST, self_name: str, attr: str) -> Iterator[tuple[ast.Attribute, ast.AST]]:
    """Each load of `self.attr` in the method, with its parent node (the method may not have been visited)."""
    for parent in ast.walk(method):
        for node in ast.iter_child_nodes(parent):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Load)
                and node.attr == attr
                and _is_attribute_of(node, self_name)
            ):
                yield node, parent


def _plain_read(node: ast.AST, parent: ast.AST | None) -> bool:
    """Read as the BlockMask itself, to meet inputs: not sliced or adjusted (ESP018 and ESP020 judge those),
    nor only an attribute of it read (`.shape`, `.mask_mod`)."""
    if isinstance(parent, ast.Subscript) and parent.value is node:
        return False
    return not (isinstance(parent, ast.Attribute) and parent.value is node)


def _chain(node: ast.expr) -> tuple[ast.Name, str] | None:
    """`a.b.c` -> (`a`, "b.c"); `a` -> (`a`, ""); None for anything else."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node, ".".join(reversed(attrs))) if isinstance(node, ast.Name) else None


def _attribute_path(resolver: Resolver, name: ast.Name) -> str:
    """The attribute chain read from `name`: "b.c" for `name.b.c` (the longest), "" for `name` alone."""
    attrs: list[str] = []
    node: ast.AST = name
    parent = resolver.parent(node)
    while isinstance(parent, ast.Attribute) and parent.value is node:
        attrs.append(parent.attr)
        node, parent = parent, resolver.parent(parent)
    return ".".join(attrs)


def _loads(root: ast.AST) -> Iterator[ast.Name]:
    for node in ast.walk(root):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            yield node


def _scope_nodes(root: ast.AST) -> set[int]:
    return {id(n) for n in ast.walk(root) if isinstance(n, _SCOPE_NODES)}


def _with_callees(functions: list[MaskFunction], depth: int = 2) -> list[MaskFunction]:
    """The mask functions and the same-module functions they call (`causal(b, h, q, kv)`), two levels deep."""
    found: dict[int, MaskFunction] = {id(f): f for f in functions}
    frontier = list(functions)
    for _ in range(depth):
        frontier = [c for f in frontier for cs in f.callees.values() for c in cs if id(c) not in found]
        found.update((id(c), c) for c in frontier)
    return list(found.values())
