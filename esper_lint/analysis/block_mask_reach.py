"""Where the BlockMask one `create_block_mask` call builds goes, followed forward, and what the code does with
it there: whether it visibly uses the BlockMask's batch or head layout (ESP009), and which `flex_attention`
calls it meets (ESP007 reads their query's visible size).

`block_mask_flow.py` answers the other way round (which constructor an expression's BlockMask comes from);
this walk starts at the constructor call and follows the value through local names, `self.<attr>` (and any
`<obj>.<attr>` of the same name in the module), `return` (to the callers in this module), arguments of
this module's functions and methods (to their parameters), `_adjust`/`to`/slices (new BlockMasks with the
same layout), and tuples, lists and dicts (their elements, by position or key where the code says which).

A use of the layout of dimension 0 (batch) or 1 (head):
- a subscript of the BlockMask whose index there is not `:`, `0`, or absent (`bm[i]`, `bm[:, h]`, `bm[1:]`);
- a subscript of one of its block tensors (`kv_num_blocks`, `kv_indices`, `full_*`, `q_*`) whose index there
  is not `0`, or any other use of those tensors (they hold the layout);
- `.shape`, `.to_dense()`, `.as_tuple()`, `.to_string()`, `.numel()`, an attribute this walk does not know.
Where the value goes somewhere the walk cannot see into (a function of another module, a call through an
unknown object, callers in other modules), it says so in `out_of_sight`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ..core.apis import BLOCK_MASK_TENSORS, FLEX_ATTENTION, FLEX_ATTENTION_PARAMETERS, TRANSPARENT_WRAPPERS
from ..core.span import first_line
from .block_mask_flow import BlockMaskFlow
from .call_sites import ParameterRead, parameter_read
from .callees import Callees
from .model import BlockMaskReach, MaskUse, VisibleCount
from .resolution import Resolver
from .syntax import FUNCTIONS
from .visible_sizes import VisibleSizes

BLOCK_TENSORS = frozenset(BLOCK_MASK_TENSORS)
_SAME_LAYOUT_METHODS = frozenset({"to", "_adjust"})  # a new BlockMask with the receiver's B and H
_LAYOUT_METHODS = frozenset({"to_dense", "as_tuple", "to_string", "numel"})
_NEUTRAL_ATTRIBUTES = frozenset({"mask_mod", "BLOCK_SIZE", "seq_lengths", "sparsity"})
_NEUTRAL_BUILTINS = frozenset(
    f"builtins.{n}" for n in ("print", "isinstance", "id", "repr", "str", "type", "hash", "bool", "callable", "format")
)
_ITERATING = frozenset(f"builtins.{n}" for n in ("list", "tuple", "sorted", "reversed", "iter", "set"))
_PROGRESS_BARS = frozenset({"tqdm.tqdm", "tqdm.auto.tqdm", "tqdm.notebook.tqdm"})  # iterate what they wrap
_CONTAINER_MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "setdefault"})
_NEUTRAL_CONTAINER_METHODS = frozenset({"append", "extend", "insert", "add", "clear", "remove", "index", "count"})
_DYNAMIC_ACCESS = frozenset({"builtins.getattr", "builtins.setattr", "builtins.vars"})
# Keywords that say the callee uses the value as an attention mask (transformers' models take a BlockMask as
# `attention_mask`): a call we cannot see into that gets it so still shows what the BlockMask is for.
_MASK_KEYWORDS = frozenset({"block_mask", "attention_mask", "attn_mask"})
_TENSOR_TYPES = frozenset({"torch.Tensor"})
_BLOCK_MASK_TYPES = frozenset({"torch.nn.attention.flex_attention.BlockMask"})
_BOTH = frozenset({0, 1})
_BUDGET = 400  # values visited for one BlockMask; beyond it the layout counts as used (nothing is reported)
_QUERY = FLEX_ATTENTION_PARAMETERS.index("query")

# Where a value sits inside a container: tuple/list positions (int), dict keys (str), any element (None).
Path = tuple[int | str | None, ...]
_Value = tuple[ast.AST, Path, bool]
_Def = ast.FunctionDef | ast.AsyncFunctionDef  # an expression, its path to the BlockMask, and whether dims shifted


class _Walk:
    """One BlockMask's walk."""

    def __init__(self) -> None:
        self.used: set[int] = set()
        self.out_of_sight: str | None = None
        self._lost_line = 1 << 30
        self.indexed = False
        self.complete = True
        self.attended: list[ast.Call] = []  # the flex_attention calls it reaches as a whole
        self.given_as_mask = False  # passed as `block_mask=`/`attention_mask=` to a call we cannot see into
        self.seen: set[tuple[int, Path, bool]] = set()
        self.queue: list[_Value] = []

    def push(self, node: ast.AST, path: Path, shifted: bool) -> None:
        key = (id(node), path, shifted)
        if key not in self.seen:
            self.seen.add(key)
            self.queue.append((node, path, shifted))

    def lost(self, where: str, node: ast.AST | None = None) -> None:
        """The value goes somewhere the walk cannot see into: keep the first such place in the source."""
        line = getattr(node, "lineno", None)
        key = line if line is not None else 1 << 30
        if self.out_of_sight is None or key < self._lost_line:
            self.out_of_sight = where if line is None else f"{where} at line {line}"
            self._lost_line = key


class BlockMaskReaches:
    def __init__(self, resolver: Resolver, callees: Callees, flow: BlockMaskFlow) -> None:
        self.resolver = resolver
        self.parent = resolver.parent
        self.bindings = resolver.bindings
        self.scopes = resolver.scopes
        self.callees = callees
        self.flow = flow
        self.sizes = VisibleSizes(resolver)
        self._attribute_loads: dict[str, list[ast.Attribute]] = {}
        self._attribute_cache: dict[tuple[int, str], list[ast.expr] | None] = {}
        self._classes: dict[str, ast.ClassDef] | None = None
        self._visited_words: set[str] = set()
        self._generators: dict[int, bool] = {}

    @staticmethod
    def asked(use: MaskUse) -> bool:
        """Whether the reach decides anything for this call: a size given (`B`/`H` not None nor 1) for a
        dimension no mask function reads (ESP009), or a literal 1 for one a mask function reads (ESP007)."""
        for parameter, index in (("B", 0), ("H", 1)):
            arg = use.arguments.get(parameter)
            value = arg.constant if arg is not None else None
            if value is None:
                continue
            reads = [parameter_read(fn, index) for fn in use.functions]
            if type(value) is int and value == 1:
                if ParameterRead.DIRECT in reads:
                    return True
            elif use.functions_known and reads and all(r is ParameterRead.NEVER for r in reads):
                return True
        return False

    def reach(self, use: MaskUse, builders: list[MaskUse]) -> BlockMaskReach:
        walk = _Walk()
        call = use.call_node
        walk.push(call, (), False)
        if use.via_helper is not None:
            if use.via_helper_defined_in is not None:
                walk.lost(f"`{use.via_helper}` ({use.via_helper_defined_in}), which builds it")
            helper = self._module_def(use.via_helper)
            for other in builders:  # the helper's own create_block_mask: where it goes inside the helper
                if helper is not None and self.resolver.enclosing_function(other.call_node) is helper:
                    walk.push(other.call_node, (), False)
        steps = 0
        while walk.queue:
            steps += 1
            if steps > _BUDGET:
                walk.complete = False
                break
            node, path, shifted = walk.queue.pop()
            self._step(walk, node, path, shifted)
        used = frozenset(_BOTH if not walk.complete else walk.used)
        attended = bool(walk.attended) or walk.given_as_mask
        return BlockMaskReach(used, walk.out_of_sight, walk.indexed, attended, self._larger(use, walk))

    def _larger(self, use: MaskUse, walk: _Walk) -> tuple[VisibleCount | None, VisibleCount | None]:
        """Per dimension, what visibly shows more than one batch (head): a tensor a mask function indexes by
        `b` (`h`), or the query of a `flex_attention` call the BlockMask reaches."""
        found: list[VisibleCount | None] = []
        for dim in (0, 1):
            count = next((c for fn in use.functions if (c := self.sizes.indexed_capture(fn, dim)) is not None), None)
            if count is None:
                for call in walk.attended:
                    query = _argument(call, "query", _QUERY)
                    count = self.sizes.query_count(query, dim) if query is not None else None
                    if count is not None:
                        break
            found.append(count)
        return found[0], found[1]

    # ----------------------------------------------------------------- one value
    def _step(self, walk: _Walk, node: ast.AST, path: Path, shifted: bool) -> None:
        parent = self.parent(node)
        if parent is None:
            walk.complete = False  # code the scope walk never visited: its uses are unknown
            return
        if isinstance(node, ast.Name) and self._not_a_block_mask_here(node):
            return
        if isinstance(parent, (ast.Expr, ast.Compare, ast.UnaryOp, ast.FormattedValue, ast.Assert, ast.Delete)):
            return
        if isinstance(parent, (ast.If, ast.While)) and node is parent.test:
            return
        if isinstance(parent, ast.IfExp):
            if node is not parent.test:
                walk.push(parent, path, shifted)
            return
        if isinstance(parent, ast.BoolOp):
            walk.push(parent, path, shifted)
            return
        if isinstance(parent, ast.NamedExpr):
            self._bind(walk, parent.target, path, shifted)
            walk.push(parent, path, shifted)
            return
        if isinstance(parent, (ast.Assign, ast.AnnAssign)) and node is parent.value:
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            for target in targets:
                self._bind(walk, target, path, shifted)
            return
        if isinstance(parent, ast.Return):
            self._returned(walk, parent, path, shifted)
            return
        if isinstance(parent, (ast.Tuple, ast.List)) and isinstance(parent.ctx, ast.Load):
            if node in parent.elts:
                walk.push(parent, (parent.elts.index(node), *path), shifted)
            return
        if isinstance(parent, ast.Set):
            walk.push(parent, (None, *path), shifted)
            return
        if isinstance(parent, ast.Dict):
            if any(v is node for v in parent.values):
                key = parent.keys[[id(v) for v in parent.values].index(id(node))]
                step = key.value if isinstance(key, ast.Constant) and isinstance(key.value, (str, int)) else None
                walk.push(parent, (step, *path), shifted)
            else:
                walk.lost("a dict key", parent)
            return
        if isinstance(parent, (ast.ListComp, ast.SetComp, ast.GeneratorExp)) and node is parent.elt:
            walk.push(parent, (None, *path), shifted)
            return
        if isinstance(parent, ast.DictComp):
            if node is parent.value:
                walk.push(parent, (None, *path), shifted)
            return
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.comprehension)) and node is parent.iter:
            self._iterated(walk, parent.target, path, shifted)
            return
        if isinstance(parent, ast.Subscript) and node is parent.value:
            self._subscript(walk, parent, path, shifted)
            return
        if isinstance(parent, ast.Attribute) and node is parent.value:
            self._attribute(walk, parent, path, shifted)
            return
        if isinstance(parent, ast.keyword):
            call = self.parent(parent)
            if isinstance(call, ast.Call):
                self._argument(walk, call, node, None if parent.arg is None else parent.arg, path, shifted)
            return
        if isinstance(parent, ast.Call) and node is not parent.func:
            self._argument(walk, parent, node, None, path, shifted)
            return
        walk.lost(f"a `{type(parent).__name__.lower()}`", parent)

    # ----------------------------------------------------------------- bindings
    def _bind(self, walk: _Walk, target: ast.AST, path: Path, shifted: bool) -> None:
        if isinstance(target, ast.Name):
            self._name(walk, target, path, shifted)
        elif isinstance(target, (ast.Tuple, ast.List)):
            if not path or any(isinstance(e, ast.Starred) for e in target.elts):
                walk.lost("an unpacking", target)
                return
            first, rest = path[0], path[1:]
            for i, element in enumerate(target.elts):
                if first is None or first == i:
                    self._bind(walk, element, rest, shifted)
        elif isinstance(target, ast.Attribute):
            owner = self.flow.self_attribute(target)
            if owner is None:
                walk.lost(f"`{self.resolver.positions.segment(target)}`", target)
            self._attribute_reads(walk, target.attr, path, shifted, owner[0] if owner else None)
        elif isinstance(target, ast.Subscript):  # `masks[key] = bm`: the container holds it
            index = target.slice
            step = index.value if isinstance(index, ast.Constant) and isinstance(index.value, (str, int)) else None
            self._holder(walk, target.value, (step, *path), shifted)
        else:
            walk.lost("an assignment", target)

    def _name(self, walk: _Walk, target: ast.Name, path: Path, shifted: bool) -> None:
        scope = self.scopes.scope_of.get(id(target))
        if scope is not None and scope.kind == "class":  # a class attribute: read as `self.name`, `Cls.name`
            self._attribute_reads(walk, target.id, path, shifted)
            return
        if scope is not None and scope.kind == "module":
            if not target.id.startswith("_"):
                walk.lost(f"the modules that import `{target.id}`")
            self._visit_mentioning(target.id)
        for load in self.scopes.names.get(target.id, ()):
            if isinstance(load.ctx, ast.Load) and any(b.node is target for b in self.bindings(load)):
                walk.push(load, path, shifted)

    def _holder(self, walk: _Walk, holder: ast.expr, path: Path, shifted: bool) -> None:
        """The container `holder` now holds the value at `path`: follow every read of the same container."""
        if isinstance(holder, ast.Name):
            ids = {id(b) for b in self.bindings(holder)}
            if not ids:
                walk.lost(f"`{holder.id}`", holder)
                return
            for load in self.scopes.names.get(holder.id, ()):
                if isinstance(load.ctx, ast.Load) and any(id(b) in ids for b in self.bindings(load)):
                    walk.push(load, path, shifted)
        elif isinstance(holder, ast.Attribute):
            owner = self.flow.self_attribute(holder)
            if owner is None:
                walk.lost(f"`{self.resolver.positions.segment(holder)}`", holder)
            self._attribute_reads(walk, holder.attr, path, shifted, owner[0] if owner else None)
        else:
            walk.lost("a container", holder)

    def _attribute_reads(
        self, walk: _Walk, attr: str, path: Path, shifted: bool, owner: ast.ClassDef | None = None
    ) -> None:
        """Every `<obj>.attr` read in the module that may read the same object (a superset): all of them,
        but for an attribute of `self` in class `owner`, not `self.attr` in the methods of unrelated classes."""
        self._visit_mentioning(attr)
        for load in self._loads_of(attr):
            reader = self.flow.self_attribute(load) if owner is not None else None
            if reader is None or self._related(owner, reader[0]):
                walk.push(load, path, shifted)

    def _related(self, first: ast.ClassDef | None, second: ast.ClassDef) -> bool:
        """The same class, or one names the other among its bases (directly or through classes of this module)."""
        if first is None or first is second:
            return True
        return first.name in self._base_names(second) or second.name in self._base_names(first)

    def _base_names(self, cls: ast.ClassDef) -> set[str]:
        if self._classes is None:
            self._classes = {c.name: c for c in ast.walk(self.resolver.tree) if isinstance(c, ast.ClassDef)}
        classes = self._classes
        found: set[str] = set()
        frontier = [cls]
        while frontier:
            current = frontier.pop()
            for base in current.bases:
                name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else None
                if name is not None and name not in found:
                    found.add(name)
                    if name in classes:
                        frontier.append(classes[name])
        return found

    def _visit_mentioning(self, word: str) -> None:
        """The defs the relevance filter skipped that spell `word` (once per word: each asks the whole module)."""
        if word not in self._visited_words:
            self._visited_words.add(word)
            self.flow.visit_defs_mentioning(word)

    def _loads_of(self, attr: str) -> list[ast.Attribute]:
        """Every `<obj>.attr` read in the module (only the top-level statements that spell `attr` are walked)."""
        found = self._attribute_loads.get(attr)
        if found is None:
            found = self._attribute_loads[attr] = []
            lines = self.resolver.positions.lines
            statements = list(self.resolver.tree.body)
            while statements:
                stmt = statements.pop()
                if not any(attr in line for line in lines[first_line(stmt) - 1 : stmt.end_lineno]):
                    continue
                if isinstance(stmt, ast.ClassDef):  # its statements one by one: a class can be long
                    statements.extend(stmt.body)
                    roots: list[ast.AST] = [*stmt.decorator_list, *stmt.bases, *stmt.keywords]
                else:
                    roots = [stmt]
                for root in roots:
                    for node in ast.walk(root):
                        if isinstance(node, ast.Attribute) and node.attr == attr and isinstance(node.ctx, ast.Load):
                            found.append(node)
        return found

    def _iterated(self, walk: _Walk, target: ast.AST, path: Path, shifted: bool) -> None:
        if not path:
            walk.used.update(_BOTH)  # iterating a BlockMask indexes it by batch: bm[0], bm[1], ...
            return
        if isinstance(path[0], str):
            return  # iterating a dict gives its keys
        self._bind(walk, target, path[1:], shifted)

    # ----------------------------------------------------------------- returns and calls
    def _returned(self, walk: _Walk, node: ast.Return, path: Path, shifted: bool) -> None:
        function = self.resolver.enclosing_function(node)
        if not isinstance(function, FUNCTIONS):
            walk.lost("the caller of a lambda")
            return
        cls = self.parent(function)
        name = function.name
        if self._generator(function):
            walk.lost(f"what iterates `{name}`")
            return
        if isinstance(cls, ast.ClassDef):
            if name.startswith("__") or name == "forward":
                walk.lost(f"the callers of `{cls.name}.{name}`")
                return
            if not name.startswith("_"):
                walk.lost(f"the callers of `{cls.name}.{name}` in other modules")
            is_property = any(self._is_property(d) for d in function.decorator_list)
            self._visit_mentioning(name)
            for load in self._loads_of(name):
                call = self.parent(load)
                if is_property:
                    walk.push(load, path, shifted)
                elif isinstance(call, ast.Call) and call.func is load:
                    walk.push(call, path, shifted)
                else:
                    walk.lost(f"`{cls.name}.{name}` used as a value", load)
            return
        if self.parent(function) is self.resolver.tree:
            if not name.startswith("_"):
                walk.lost(f"the callers of `{name}` in other modules")
            self._visit_mentioning(name)
        if any(not self._transparent(d) for d in function.decorator_list):
            walk.lost(f"the decorator of `{name}`")
        for read in self.scopes.names.get(name, ()):
            if not isinstance(read.ctx, ast.Load) or not any(b.node is function for b in self.bindings(read)):
                continue
            call = self.parent(read)
            if isinstance(call, ast.Call) and call.func is read:
                walk.push(call, path, shifted)
            elif not self._decorating(read):
                walk.lost(f"`{name}` used as a value", read)

    def _generator(self, function: _Def) -> bool:
        if id(function) not in self._generators:
            self._generators[id(function)] = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(function))
        return self._generators[id(function)]

    def _decorating(self, load: ast.Name) -> bool:
        parent = self.parent(load)
        return isinstance(parent, FUNCTIONS) and load in parent.decorator_list

    def _is_property(self, decorator: ast.expr) -> bool:
        return bool(self.resolver.qualified_names(decorator) & {"builtins.property", "functools.cached_property"})

    def _transparent(self, decorator: ast.expr) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names = self.resolver.qualified_names(target)
        return bool(names & (TRANSPARENT_WRAPPERS | {"torch.no_grad", "torch.inference_mode"}))

    def _argument(
        self, walk: _Walk, call: ast.Call, node: ast.AST, keyword: str | None, path: Path, shifted: bool
    ) -> None:
        targets, every = self._local_callees(call.func)
        if self._is_flex_attention(call.func):
            if not path and not shifted and keyword in (None, "block_mask"):
                walk.attended.append(call)
            if targets:  # the name may also be a def of this module (a shim over flex_attention): follow it too
                self._into(walk, call, node, keyword, path, shifted, targets)
            return
        names = self.resolver.qualified_names(call.func) if isinstance(call.func, (ast.Name, ast.Attribute)) else set()
        if names & _NEUTRAL_BUILTINS:
            return
        if names & _DYNAMIC_ACCESS and not path:
            walk.used.update(_BOTH)  # `getattr(bm, attr)`: any attribute, the block tensors included
            return
        if path and node in call.args:
            if names & _ITERATING or (names & _PROGRESS_BARS and node is call.args[0]):
                walk.push(call, (None, *path[1:]), shifted)
                return
            if "builtins.enumerate" in names:
                walk.push(call, (None, 1, *path[1:]), shifted)
                return
            if "builtins.zip" in names:
                walk.push(call, (None, call.args.index(node), *path[1:]), shifted)
                return
            if "builtins.len" in names:
                return
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in _CONTAINER_MUTATORS and node in call.args:
            self._holder(walk, func.value, (None, *path), shifted)  # `masks.append(bm)`
            return
        if isinstance(node, ast.Starred) or (keyword is None and node not in call.args):
            walk.lost(f"`{self._callee_text(call)}`", call)
            return
        if not targets or not every:
            walk.lost(f"`{self._callee_text(call)}`", call)
            walk.given_as_mask |= not path and not shifted and keyword in _MASK_KEYWORDS
        self._into(walk, call, node, keyword, path, shifted, targets)

    def _into(
        self,
        walk: _Walk,
        call: ast.Call,
        node: ast.AST,
        keyword: str | None,
        path: Path,
        shifted: bool,
        targets: list[tuple[_Def, int]],
    ) -> None:
        """Follow the value into the parameter it binds in each def of this module the call may run."""
        for function, offset in targets:
            if any(not self._transparent(d) for d in function.decorator_list):
                walk.lost(f"the decorator of `{function.name}`")
            self.flow.visit(function)
            parameter = self._parameter(function, call, node, keyword, offset)
            if parameter is None:
                walk.lost(f"`{function.name}`'s `*args`/`**kwargs`", call)
                continue
            for load in self._parameter_loads(function, parameter):
                walk.push(load, path, shifted)

    def _is_flex_attention(self, func: ast.expr) -> bool:
        """`flex_attention` itself, an alias, a compiled one, or `self.attr` every write of which is one of these
        (`self.flex_attention = torch.compile(flex_attention)` in `__init__`)."""
        if any(r.api.qualified_name == FLEX_ATTENTION for r in self.callees.resolve_callable(func, set())):
            return True
        owner = self.flow.self_attribute(func)
        if owner is None or _method(*owner) is not None:
            return False  # not an attribute of `self`, or a method of the class
        values = self._attribute_values(*owner)
        return bool(values) and all(
            any(r.api.qualified_name == FLEX_ATTENTION for r in self.callees.resolve_callable(v, set()))
            for v in values or ()
        )

    def _attribute_values(self, cls: ast.ClassDef, attr: str) -> list[ast.expr] | None:
        key = (id(cls), attr)
        if key not in self._attribute_cache:
            self._attribute_cache[key] = self.flow.attribute_values(cls, attr)
        return self._attribute_cache[key]

    def _callee_text(self, call: ast.Call) -> str:
        text = self.resolver.positions.segment(call.func)
        return text if len(text) <= 40 else text[:37] + "..."

    def _local_callees(self, func: ast.expr, depth: int = 0) -> tuple[list[tuple[_Def, int]], bool]:
        """The defs of this module a call of `func` may run, with how many leading parameters the call binds
        itself (`self`), and whether that is all it may run (no import, no other value among its bindings)."""
        found: list[tuple[_Def, int]] = []
        if depth > 3:
            return found, False
        if isinstance(func, ast.Name):
            every = True
            for binding in self.bindings(func):
                node = binding.node
                if binding.kind == "def" and isinstance(node, FUNCTIONS):
                    found.append((node, 0))
                elif binding.kind == "class" and isinstance(node, ast.ClassDef):
                    self.flow.visit_class(node)  # the relevance filter may have skipped it whole
                    init = _method(node, "__init__")
                    every &= init is not None
                    if init is not None:
                        found.append((init, 1))
                elif binding.kind == "store" and isinstance(binding.value, ast.Call) and binding.value.args:
                    wrapper = binding.value  # `compiled = torch.compile(fn, ...)`
                    if not self.resolver.qualified_names(wrapper.func) & TRANSPARENT_WRAPPERS:
                        every = False
                        continue
                    inner, complete = self._local_callees(wrapper.args[0], depth + 1)
                    found.extend(inner)
                    every &= complete
                else:
                    every = False
            return found, every and bool(found)
        if isinstance(func, ast.Call) and func.args:  # `torch.compile(forward)(q, k, v, bm)`
            if self.resolver.qualified_names(func.func) & TRANSPARENT_WRAPPERS:
                return self._local_callees(func.args[0], depth + 1)
            return found, False
        if isinstance(func, ast.Attribute):
            owner = self.flow.self_attribute(func)
            method = _method(owner[0], owner[1]) if owner is not None else None
            if method is not None:
                static = any("builtins.staticmethod" in self.resolver.qualified_names(d) for d in method.decorator_list)
                return [(method, 0 if static else 1)], True
        return found, False

    # ----------------------------------------------------------------- isinstance
    def _not_a_block_mask_here(self, name: ast.Name) -> bool:
        """`name` is read where an `isinstance` check has just said it is a tensor, or not a BlockMask
        (`if isinstance(mask, torch.Tensor) and mask.dim() == 4: mask[i:i + 1]`)."""
        child: ast.AST = name
        for ancestor in self.resolver.ancestors(name):
            if isinstance(ancestor, (ast.If, ast.IfExp)):
                in_body = child in ancestor.body if isinstance(ancestor, ast.If) else child is ancestor.body
                in_else = child in ancestor.orelse if isinstance(ancestor, ast.If) else child is ancestor.orelse
                if (in_body and self._says(ancestor.test, name, True)) or (
                    in_else and self._says(ancestor.test, name, False)
                ):
                    return True
            elif isinstance(ancestor, ast.BoolOp) and isinstance(ancestor.op, ast.And) and child in ancestor.values:
                earlier = ancestor.values[: ancestor.values.index(child)]
                if any(self._says(test, name, True) for test in earlier):
                    return True
            elif isinstance(ancestor, (*FUNCTIONS, ast.Lambda, ast.ClassDef)):
                return False
            child = ancestor
        return False

    def _says(self, test: ast.expr, name: ast.Name, holds: bool) -> bool:
        """`test` being `holds` means `name` is not a BlockMask."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return self._says(test.operand, name, not holds)
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) and holds:
            return any(self._says(value, name, True) for value in test.values)
        if not (isinstance(test, ast.Call) and len(test.args) == 2 and isinstance(test.args[0], ast.Name)):
            return False
        if "builtins.isinstance" not in self.resolver.qualified_names(test.func) or test.args[0].id != name.id:
            return False
        if {id(b) for b in self.bindings(test.args[0])} != {id(b) for b in self.bindings(name)}:
            return False
        kinds = test.args[1].elts if isinstance(test.args[1], ast.Tuple) else [test.args[1]]
        names = [self.resolver.qualified_names(k) if isinstance(k, (ast.Name, ast.Attribute)) else set() for k in kinds]
        if holds:
            return all(n & _TENSOR_TYPES for n in names)
        return any(n & _BLOCK_MASK_TYPES for n in names)

    def _parameter(
        self, function: _Def, call: ast.Call, node: ast.AST, keyword: str | None, offset: int
    ) -> ast.arg | None:
        args = function.args
        positional = [*args.posonlyargs, *args.args]
        if keyword is not None:
            named = [a for a in (*args.args, *args.kwonlyargs) if a.arg == keyword]
            return named[0] if named else None
        before = call.args[: call.args.index(node)]  # type: ignore[arg-type]
        if any(isinstance(a, ast.Starred) for a in before):
            return None
        index = len(before) + offset
        return positional[index] if index < len(positional) else None

    def _parameter_loads(self, function: ast.AST, parameter: ast.arg) -> Iterator[ast.Name]:
        for load in self.scopes.names.get(parameter.arg, ()):
            if isinstance(load.ctx, ast.Load) and any(b.node is parameter for b in self.bindings(load)):
                yield load

    # ----------------------------------------------------------------- uses of the BlockMask itself
    def _subscript(self, walk: _Walk, node: ast.Subscript, path: Path, shifted: bool) -> None:
        if not isinstance(node.ctx, ast.Load):
            if not path:
                walk.used.update(_BOTH)
            return
        index = node.slice
        if path:  # an element of a container
            step = path[0]
            if isinstance(index, ast.Slice):
                walk.push(node, path, shifted)
                return
            if (
                isinstance(index, ast.Constant)
                and step is not None
                and isinstance(index.value, (str, int))
                and index.value != step
                and not (isinstance(index.value, int) and index.value < 0)
            ):
                return  # another element
            walk.push(node, path[1:], shifted)
            return
        walk.indexed = True
        items = _index_items(index)
        if items is None or shifted:
            walk.used.update(_BOTH)
            walk.push(node, (), True)
            return
        for dim in (0, 1):
            if dim < len(items) and not _full_or_zero(items[dim]):
                walk.used.add(dim)
        walk.push(node, (), any(dim < len(items) and not isinstance(items[dim], ast.Slice) for dim in (0, 1)))

    def _attribute(self, walk: _Walk, node: ast.Attribute, path: Path, shifted: bool) -> None:
        parent = self.parent(node)
        called = isinstance(parent, ast.Call) and parent.func is node
        if path:
            self._container_method(walk, node, parent if called else None, path, shifted)
            return
        attr = node.attr
        if attr in _NEUTRAL_ATTRIBUTES:
            return
        if attr in _SAME_LAYOUT_METHODS and called:
            walk.push(parent, (), shifted)  # type: ignore[arg-type]
            return
        if attr in BLOCK_TENSORS and isinstance(parent, ast.Subscript) and parent.value is node and not shifted:
            walk.indexed = True
            items = _index_items(parent.slice)
            if items is None:
                walk.used.update(_BOTH)
                return
            for dim in (0, 1):
                if not (dim < len(items) and _is_zero(items[dim])):
                    walk.used.add(dim)  # a block tensor keeps the dimension it does not index with 0
            return
        walk.used.update(_BOTH)  # `.shape`, `.to_dense()`, a block tensor, an attribute we do not know

    def _container_method(
        self, walk: _Walk, node: ast.Attribute, call: ast.AST | None, path: Path, shifted: bool
    ) -> None:
        attr = node.attr
        if call is None or attr in _NEUTRAL_CONTAINER_METHODS:
            if call is None:
                walk.lost(f"`.{attr}` of a container", node)
            return
        assert isinstance(call, ast.Call)
        if attr in ("get", "pop"):
            key = call.args[0] if call.args else None
            step = path[0]
            if isinstance(key, ast.Constant) and step is not None and key.value != step:
                return
            walk.push(call, path[1:], shifted)
        elif attr == "values":
            walk.push(call, (None, *path[1:]), shifted)
        elif attr == "items":
            walk.push(call, (None, 1, *path[1:]), shifted)
        elif attr == "copy":
            walk.push(call, path, shifted)
        else:
            walk.lost(f"`.{attr}()` of a container", node)

    def _module_def(self, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        for stmt in self.resolver.tree.body:
            if isinstance(stmt, FUNCTIONS) and stmt.name == name:
                return stmt
        return None


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    found = [s for s in cls.body if isinstance(s, FUNCTIONS) and s.name == name]
    return found[-1] if found else None


def _index_items(index: ast.expr) -> list[ast.expr] | None:
    """The index's items by position; None when positions are unknown (`...`, `None`, `*idx`, a variable
    that may hold a tuple)."""
    items = list(index.elts) if isinstance(index, ast.Tuple) else [index]
    if not isinstance(index, ast.Tuple) and not isinstance(index, (ast.Slice, ast.Constant)):
        return None
    for item in items:
        if isinstance(item, ast.Starred) or (isinstance(item, ast.Constant) and item.value in (..., None)):
            return None
    return items


def _is_zero(item: ast.expr) -> bool:
    return isinstance(item, ast.Constant) and type(item.value) is int and item.value == 0


def _full_or_zero(item: ast.expr) -> bool:
    """`:` (every batch, as a broadcast BlockMask has) or `0` (the first, which a broadcast one also has)."""
    if isinstance(item, ast.Slice):
        return item.lower is None and item.upper is None and item.step is None
    return _is_zero(item)


def _argument(call: ast.Call, name: str, position: int) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    if any(isinstance(a, ast.Starred) for a in call.args[: position + 1]):
        return None
    return call.args[position] if position < len(call.args) else None
