"""What a module offers the other modules of its project: the module-level names that are mask functions,
mask factories, mask API aliases or pass-through helpers, with the facts an importer's analysis uses
(`imported_names.py` turns them back into facts). Computed from the module alone, as plain JSON values,
so that the project index (`esper_lint/project.py`) can keep them in the cache by the module's content.

A name is described only when module level binds it exactly once; anything else (`try`/`except`
imports, a def rebound later, `global` assignments) is left out, and an importer then knows nothing of
it, as before there was an index.
"""

from __future__ import annotations

import ast
from typing import Any

from ..core.apis import ApiTable
from .call_sites import parameter_read
from .callees import PassThrough, ResolvedApi
from .imported_names import RECORDED_PARAMETERS
from .model import NOT_CONSTANT, FunctionKind, MaskFunction
from .module_facts import ModuleAnalyzer
from .scopes import Binding
from .syntax import FUNCTIONS, FuncNode, own_returns

Entry = dict[str, Any]
# torch's `_get_mod_type`: a function with 4 positional parameters without defaults is a mask_mod, 5 a
# score_mod. Only such functions are described as masks (any function may be passed; these are).
MASK_SHAPES = frozenset({4, 5})
# The API arguments of a helper that its importers' rules read, when they are constants there.
_CONSTANT_ARGUMENTS = ("B", "H", "_compile")


def module_exports(tree: ast.Module, text: str, apis: ApiTable) -> dict[str, Entry]:
    """The entries of the module's names, by name (`imported_names.py` lists the kinds)."""
    analyzer = ModuleAnalyzer(tree, text, apis)
    helpers = analyzer.pass_through_helpers(analyzer.analyze())
    try:
        exports = _Exports(analyzer, helpers, apis)
        names: dict[str, Entry] = {}
        for name, bindings in list(analyzer.scopes.module.bindings.items()):
            if "." in name or len(bindings) != 1:  # `import a.b` binds `a.b`; several bindings: not described
                continue
            entry = exports.entry(name, bindings[0])
            if entry is not None:
                names[name] = entry
        return names
    finally:
        analyzer.scopes.release()


def shaped(node: FuncNode) -> bool:
    """Positional parameters without defaults: 4 (a mask_mod) or 5 (a score_mod), as torch counts them."""
    args = node.args
    return len(args.posonlyargs) + len(args.args) - len(args.defaults) in MASK_SHAPES


def function_item(fn: MaskFunction) -> Entry:
    """One function a name may be, as an importer's rules need it."""
    return {
        "name": fn.name,
        "line": fn.span.line,
        "lambda": fn.kind is FunctionKind.LAMBDA,
        "enclosing": fn.enclosing,
        "factory": fn.factory,
        "captures": [[c.name, c.kind.value, c.scope_name] for c in fn.captures],
        "reads": [parameter_read(fn, index).value for index in range(RECORDED_PARAMETERS)],
    }


class _Exports:
    def __init__(self, analyzer: ModuleAnalyzer, helpers: dict[str, PassThrough], apis: ApiTable) -> None:
        self.analyzer = analyzer
        self.helpers = helpers
        self.apis = apis
        self.functions = analyzer.functions
        self.callees = analyzer.callees
        self.call_sites = analyzer.call_sites

    def entry(self, name: str, binding: Binding) -> Entry | None:
        node, value = binding.node, binding.value
        if binding.kind == "import":
            return self.imported(name, binding)
        if binding.kind == "def" and isinstance(node, FUNCTIONS):
            helper = self.helpers.get(name)
            if helper is not None:
                return self.helper(helper, node)
            # A factory first: `def create_sparse_mask(lens, splits, modes, device)` has a mask's shape too.
            factory = self.factory(node)
            if factory is not None or not shaped(node):
                return factory
            return self.masks([self.functions.mask_function(node, node.name, node)], True, "mask")
        if binding.kind != "store" or value is None or not isinstance(node, ast.Name):
            return None
        if isinstance(value, ast.Lambda):
            if not shaped(value):
                return None
            return self.masks([self.functions.mask_function(value, name, node)], True, "mask")
        if isinstance(value, (ast.Call, ast.Name, ast.Attribute)):
            alias = self.alias(value, node.lineno)
            if alias is not None:
                return alias
        if isinstance(value, (ast.Call, ast.Name, ast.IfExp)):  # `document_causal = and_masks(...)`
            functions, known = self.functions.resolve_mask_expr(value, set())
            return self.masks(functions, known, "mask") if functions else None
        return None

    def imported(self, name: str, binding: Binding) -> Entry | None:
        """A re-export (`from .masks import causal` in a package's `__init__.py`), or an API itself."""
        qualified = sorted(binding.qualified_names(name))
        if len(qualified) != 1 or not isinstance(binding.node, ast.ImportFrom):  # `import x` binds a module
            return None
        line = binding.position[0]
        if self.apis.get(qualified[0]) is not None:
            return {"kind": "alias", "line": line, "apis": [[qualified[0], 0, False]], "compiled": False}
        return {"kind": "reexport", "line": line, "target": qualified[0]}

    def masks(self, functions: list[MaskFunction], known: bool, kind: str) -> Entry:
        line = functions[0].span.line if functions else 1
        return {"kind": kind, "line": line, "known": known, "functions": [function_item(f) for f in functions]}

    def factory(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Entry | None:
        """A def that returns functions it creates: `def padding(lengths): def mask(...): ...; return mask`."""
        if node.decorator_list or not self.creates_functions(node):
            return None
        scopes = self.analyzer.scopes
        if id(node) not in scopes.function_scope:  # a def the relevance filter skipped
            scopes.skipped_body(node)
        functions: list[MaskFunction] = []
        known = True
        qualname = self.analyzer.qualname(node)
        for ret in own_returns(node):
            if ret.value is None:
                continue
            found, k = self.functions.resolve_mask_expr(ret.value, set())
            known = known and k
            for fn in found:
                if fn.enclosing is not None and fn.factory is None and fn.enclosing == qualname:
                    fn.factory = node.name
                functions.append(fn)
        if not functions:
            return None
        entry = self.masks(functions, known, "factory")
        entry["line"] = node.lineno
        return entry

    def creates_functions(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """The def's body holds a def or a lambda (the text is searched first: most bodies spell neither)."""
        body = "".join(self.analyzer.positions.lines[node.body[0].lineno - 1 : node.end_lineno])
        if "lambda" not in body and "def " not in body:
            return False
        return any(isinstance(n, (*FUNCTIONS, ast.Lambda)) for stmt in node.body for n in ast.walk(stmt))

    def alias(self, value: ast.expr, line: int) -> Entry | None:
        """`compiled_create_block_mask = torch.compile(create_block_mask)`: another name for an API."""
        if isinstance(value, ast.Call):
            resolved: list[ResolvedApi] = self.callees.resolve_wrapper_call(value, set())
        else:
            resolved = self.callees.resolve_callable(value, set())
        apis = [[r.api.qualified_name, r.offset, r.mask_bound] for r in resolved if r.helper is None]
        if not apis:
            return None
        compiled = "torch.compile" in set(self.call_sites.wrappers_of(value, set()))
        return {"kind": "alias", "line": line, "apis": apis, "compiled": compiled}

    def helper(self, helper: PassThrough, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Entry:
        inner = helper.inner
        constants: list[list[Any]] = []
        compiled = False
        if inner is not None:
            for name in _CONSTANT_ARGUMENTS:
                arg = inner.arguments.get(name)
                value = arg.constant if arg is not None else NOT_CONSTANT
                if value is None or type(value) in (int, bool):
                    constants.append([name, value])
            compiled = inner.call_node is not None and self.call_sites.may_be_compiled(inner.call_node) is True
        return {
            "kind": "helper",
            "line": node.lineno,
            "api": helper.api.qualified_name,
            "position": helper.api.mask_position,
            "keyword": helper.api.mask_keyword,
            "constants": constants,
            "compiled": compiled,
        }
