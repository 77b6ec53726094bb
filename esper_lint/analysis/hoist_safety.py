"""Is moving a capture-free nested function to module level unobservable? Pure functions over `ast`.

Hoisting changes three things a program can see, and each check below rules one of them out:
- **When the definition runs.** A `def`/`lambda` statement evaluates its decorators, defaults and
  (without `from __future__ import annotations`) annotations each time it runs; hoisted, they run once,
  at import. Only code whose value cannot differ between the two is allowed (`definition_time_reasons`).
- **How many function objects there are.** Nested, every call makes a new one; hoisted, all callers share
  one. That is unobservable only when the object is never touched except by being called or passed as a
  mask function (`use_reasons`).
- **Where the name lives.** The name leaves the enclosing function's locals for the module's globals:
  code that reaches those namespaces dynamically (`locals()`, `eval`, frames, `globals()`) may notice,
  and a use that can run before (or without) the definition no longer fails (`dominance_reasons`).

Uses are found by spelling within the enclosing function, skipping only nested functions that bind the
name themselves: a superset of the real uses, so a mistake can only decline a safe fix, never allow an
unsafe one. The analysis calls `hoist_reasons` for each capture-free nested mask function and records the
result in `MaskFunction.unfixable_reasons`, which check mode and the fixer both read. Walks of the whole
module or function are skipped when its text does not spell a word they look for (`_spells`): exact, since
Python reads no name or keyword that the text (NFKC-normalized, as Python reads identifiers) does not spell.
"""

from __future__ import annotations

import ast
import functools
import re
import unicodedata
from collections.abc import Callable, Iterator
from functools import cached_property

from ..core.records import NamedTuple
from .bound_names import bound_names, own_scope_nodes, scope_names
from .model import FunctionKind, MaskUse
from .syntax import defaults

FuncNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
# `is_mask_argument(expr)`: is this expression passed where a mask API (or a mask combinator) takes its mask?
IsMaskArgument = Callable[[ast.expr], bool]
# `parent(node)`: the node's parent in the tree (the analysis' table), None at the top.
Parent = Callable[[ast.AST], ast.AST | None]

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_SCOPES = (*_FUNCTIONS, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
# Builtins that read or write the calling frame's namespace, or run code in it.
_DYNAMIC_LOCALS = frozenset({"locals", "vars", "dir"})  # and `eval`/`exec`: checked module-wide
_FRAME_ATTRIBUTES = frozenset(
    {"_getframe", "currentframe", "f_locals", "f_back", "f_globals", "stack", "tb_frame", "settrace", "setprofile"}
)
_FRAME_MODULES = frozenset({"sys", "inspect"})
_FRAME_FUNCTIONS = frozenset({"_getframe", "currentframe", "stack", "trace", "getouterframes", "getinnerframes"})
_IMMUTABLE_CONSTANTS = (int, float, complex, str, bytes, bool, type(None), type(Ellipsis))


def hoist_reasons(
    fn: FuncNode,
    enclosing: FuncNode,
    parent: Parent,
    module: ModuleSummary,
    is_mask_argument: IsMaskArgument,
    future_annotations: bool,
    resolved_uses: list[ast.Name] | None = None,
    enclosing_source: str | None = None,
) -> list[str]:
    """Every reason (worded for "no automatic fix because ...") why hoisting `fn` out of `enclosing`
    could change what the program does. `parent`: the analysis' parent table for the whole tree (walks up
    from here stop at `enclosing`); `module`: `module_summary` of the module, computed once per analysis.
    `resolved_uses`: the reads of the function's variable as the analysis resolved them (else found here,
    more conservatively). `enclosing_source`, the whole lines `enclosing` spans (decorators included),
    only lets the frame check skip its walk when no word it looks for occurs in them."""

    def parents(node: ast.AST) -> ast.AST | None:
        return None if node is enclosing else parent(node)

    reasons = definition_time_reasons(fn, future_annotations, module)
    if module.may_access_frames and _may_access_frames(enclosing_source):  # the cached module fact first
        reasons += dynamic_access_reasons(enclosing, module)
    else:  # no word that dynamic access needs is in the text (or the function's): the walk would find nothing
        reasons += module.reasons
    if not any("inspects frames" in r for r in reasons):
        reasons += module.frame_reasons  # a helper elsewhere can read the enclosing function's frame
    name = _bound_name(fn, parents)
    if resolved_uses is not None:
        uses = [u for u in resolved_uses if not isinstance(u.ctx, ast.Store)]
    else:
        uses = list(_uses(enclosing, fn, name)) if name else []
    reasons += use_reasons(fn, uses, parents, is_mask_argument)
    # An inline walrus the fix leaves in place keeps its variable bound where it was: nothing to dominate.
    kept_walrus = resolved_uses is None and isinstance(parents(fn), ast.NamedExpr)
    reasons += [] if kept_walrus else dominance_reasons(fn, uses, parents)
    return _unique(reasons)


# --------------------------------------------------------------------------- definition time
def definition_time_reasons(fn: FuncNode, future_annotations: bool, module: ModuleSummary) -> list[str]:
    reasons: list[str] = []
    if not isinstance(fn, ast.Lambda) and fn.decorator_list:
        reasons.append("it is decorated (a decorator would run once at import instead of each time the `def` runs)")
    for default in defaults(fn):  # the module's constants: computed only for a function with defaults
        if not _frozen_value(default, module.constants):
            reasons.append(
                f"its default `{ast.unparse(default)}` would be evaluated once at import instead of each time "
                "the `def` runs (only immutable literals and constants are safe)"
            )
    if not isinstance(fn, ast.Lambda) and not future_annotations:
        for annotation in _annotations(fn):
            if not _plain_annotation(annotation):
                reasons.append(
                    f"its annotation `{ast.unparse(annotation)}` would be evaluated once at import instead of "
                    "each time the `def` runs"
                )
    return reasons


def _frozen_value(expr: ast.expr, constants: frozenset[str]) -> bool:
    """Does `expr` produce the same (immutable) value whether it runs once or on every call?"""
    if isinstance(expr, ast.Constant):
        return isinstance(expr.value, _IMMUTABLE_CONSTANTS)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd, ast.Not, ast.Invert)):
        return _frozen_value(expr.operand, constants)
    if isinstance(expr, ast.Tuple):
        return all(_frozen_value(e, constants) for e in expr.elts)
    if isinstance(expr, ast.Name):
        return expr.id in constants
    return False


def _frame_imports(node: ast.ImportFrom) -> list[ast.alias]:
    """`from sys import _getframe`, `from inspect import currentframe, stack`: frames by a name of their own."""
    if node.module not in _FRAME_MODULES or node.level:
        return []
    return [a for a in node.names if a.name in _FRAME_FUNCTIONS]


def _reads_frames(node: ast.Attribute) -> bool:
    if node.attr == "stack":  # `inspect.stack()`, not `torch.stack`
        return isinstance(node.value, ast.Name) and node.value.id in _FRAME_MODULES
    return node.attr in _FRAME_ATTRIBUTES


def _module_scope_nodes(stmt: ast.stmt) -> Iterator[ast.AST]:
    """The nodes of a top-level statement evaluated in the module's own scope: not the bodies of functions,
    lambdas, classes or comprehensions, but what those evaluate where they stand (defaults, decorators,
    bases, first iterable)."""
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(_evaluated_here(node))


def _evaluated_here(node: ast.AST) -> list[ast.AST]:
    """The children of `node` evaluated in the scope `node` itself is evaluated in."""
    if isinstance(node, _FUNCTIONS):
        here: list[ast.AST] = list(defaults(node))
        if not isinstance(node, ast.Lambda):
            here += [*node.decorator_list, *_annotations(node)]
        return here
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return [node.generators[0].iter]
    return list(ast.iter_child_nodes(node))


def _plain_annotation(expr: ast.expr) -> bool:
    """Names, dotted names, strings, subscripts and `|` unions of those: type expressions that only read."""
    if isinstance(expr, (ast.Name, ast.Constant)):
        return True
    if isinstance(expr, ast.Attribute):
        return _plain_annotation(expr.value)
    if isinstance(expr, ast.Subscript):
        return _plain_annotation(expr.value) and _plain_annotation(expr.slice)
    if isinstance(expr, (ast.Tuple, ast.List)):
        return all(_plain_annotation(e) for e in expr.elts)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return _plain_annotation(expr.left) and _plain_annotation(expr.right)
    return False


def _annotations(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    a = fn.args
    params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *(p for p in (a.vararg, a.kwarg) if p is not None)]
    found = [p.annotation for p in params if p.annotation is not None]
    return [*found, *([fn.returns] if fn.returns is not None else [])]


# --------------------------------------------------------------------------- dynamic namespaces
def dynamic_access_reasons(enclosing: FuncNode, module: ModuleSummary) -> list[str]:
    reasons: list[str] = []
    shadowed = module.shadowed
    for node in ast.walk(enclosing):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in shadowed:
            called = node.func.id
            if called in _DYNAMIC_LOCALS and not (called in ("vars", "dir") and node.args):
                reasons.append(
                    f"the enclosing function calls `{called}()`, which would no longer see the function's name"
                )
        elif isinstance(node, ast.Attribute) and _reads_frames(node):
            reasons.append(
                f"the enclosing function inspects frames (`.{node.attr}`), which would no longer see the "
                "function's name"
            )
    return reasons + list(module.reasons)


class ModuleSummary:
    """The module-wide facts every hoist check of one tree reads. The analysis makes one per tree and drops
    it with itself; each fact is computed on first use, and the module's source, when given, lets a fact
    skip its walk of the tree when no word it needs is spelled in it (`_spells`)."""

    def __init__(self, tree: ast.Module, text: str | None) -> None:
        self._tree = tree
        self._text = text

    @cached_property
    def _texts(self) -> tuple[str, ...] | None:
        return None if self._text is None else identifier_texts(self._text)

    @cached_property
    def _facts(self) -> _ModuleFacts:
        return _module_facts(self._tree, _spells(self._texts, _NAMESPACE_WORDS))

    @property
    def constants(self) -> frozenset[str]:
        return self._facts.constants

    @property
    def shadowed(self) -> frozenset[str]:
        return self._facts.shadowed

    @cached_property
    def reasons(self) -> tuple[str, ...]:
        # Each reason is about one of these builtins, or the module object: none spelled, none reached.
        direct = self._facts.reasons if _spells(self._texts, _MODULE_BUILTIN_WORDS) else ()
        indirect = _indirect_access_reasons(self._tree, self.shadowed) if self._reaches_indirectly else ()
        return tuple(_unique([*direct, *indirect]))

    @cached_property
    def _reaches_indirectly(self) -> bool:
        """Could the module reach its namespace other than by calling a builtin by name? Only then walk."""
        if self._text is None:
            return True
        return _spells(self._texts, _INDIRECT_WORDS) or any(
            _own_module().search(text) is not None for text in self._texts or ()
        )

    @cached_property
    def may_access_frames(self) -> bool:
        """False: no word `dynamic_access_reasons` looks for occurs in the module's text."""
        return _spells(self._texts, _FRAME_WORDS)

    @cached_property
    def frame_reasons(self) -> tuple[str, ...]:
        """Frames read anywhere in the module: a helper can read its caller's locals
        (`sys._getframe(1).f_locals`), where the nested function's name is until it is hoisted."""
        if not _spells(self._texts, _FRAME_ONLY_WORDS):
            return ()
        found = sorted(
            {n.attr for n in ast.walk(self._tree) if isinstance(n, ast.Attribute) and _reads_frames(n)}
            | {a.name for n in ast.walk(self._tree) if isinstance(n, ast.ImportFrom) for a in _frame_imports(n)}
        )
        if not found:
            return ()
        return (
            f"a function of the module inspects frames (`.{found[0]}`), and a frame sees its caller's locals, "
            "where the nested function's name would no longer be",
        )


class _ModuleFacts(NamedTuple):
    constants: frozenset[str]
    shadowed: frozenset[str]
    reasons: tuple[str, ...]


# Words that can only be spelled as a whole word: `(word, after_dot)`, where `after_dot` says whether the
# word right after a `.` counts (there it is an attribute, never a builtin's name or a keyword).
_Words = tuple[tuple[str, bool], ...]
# A `global` declaration, a `del`, or a call of `globals`/`eval`/`exec`: what makes `_module_facts` walk.
_NAMESPACE_WORDS: _Words = (("global", True), ("del", True), ("globals", False), ("eval", False), ("exec", False))
# The builtins whose calls make `_module_facts`' reasons.
_MODULE_BUILTIN_WORDS: _Words = tuple((w, False) for w in ("globals", "eval", "exec", "locals", "vars", "dir"))
# The names `dynamic_access_reasons` looks for.
_FRAME_WORDS: _Words = tuple((w, True) for w in sorted(_DYNAMIC_LOCALS | _FRAME_ATTRIBUTES))
_FRAME_ONLY_WORDS: _Words = tuple((w, True) for w in sorted(_FRAME_ATTRIBUTES | _FRAME_FUNCTIONS))
# ... and those that reach the namespace indirectly (a builtin as a value, taken from `builtins` or
# `__builtins__`, or a function's `__globals__`).
_INDIRECT_WORDS: _Words = (
    *_MODULE_BUILTIN_WORDS,
    ("builtins", False),
    ("__builtins__", False),
    ("__globals__", True),
)


@functools.cache
def _word_end(word: str) -> re.Pattern[str]:
    """`word` then a word boundary; compiled on first use (start-up: most runs never ask for most words)."""
    return re.compile(re.escape(word) + r"\b")


def identifier_texts(text: str) -> tuple[str, ...]:
    """`text`, and where it differs, its NFKC form: Python reads each identifier NFKC-normalized (a
    fullwidth `eval` calls `eval`). Outside strings and comments an identifier's neighbours are ASCII
    punctuation or spaces, which normalization neither changes nor merges with it. An identifier reads as
    an ASCII word only if each of its characters decomposes (NFKD) to ASCII: without such a character
    (`é`, `µ`, `—` do not), the text reads as written."""
    if text.isascii() or not any(unicodedata.normalize("NFKD", c).isascii() for c in set(_non_ascii().findall(text))):
        return (text,)
    return (text, unicodedata.normalize("NFKC", text))


@functools.cache
def _non_ascii() -> re.Pattern[str]:
    return re.compile(r"[^\x00-\x7f]")  # compiled on first use: most texts are ASCII


def _spells(texts: tuple[str, ...] | None, words: _Words) -> bool:
    """Could one of `texts` (None: unknown) hold one of `words` as a name or keyword? Every token Python reads
    as one is spelled so, whole (not inside a longer word); a match elsewhere (a string, a comment) only
    costs a walk. A substring test first, then each candidate's ends: a regex that starts with a literal
    runs at `str.find` speed, one that starts with a look-behind tries every position."""
    if texts is None:
        return True
    for text in texts:
        for word, after_dot in words:
            if word not in text:
                continue
            for match in _word_end(word).finditer(text):
                start = match.start()
                before = text[start - 1] if start else " "
                if not (before.isalnum() or before == "_" or (before == "." and not after_dot)):
                    return True
    return False


def _may_access_frames(text: str | None) -> bool:
    return _spells(None if text is None else identifier_texts(text), _FRAME_WORDS)


def module_summary(tree: ast.Module, text: str | None) -> ModuleSummary:
    """The module-wide facts every hoist check of `tree` reads: the analysis makes them once and keeps
    them as long as itself. `text`, the module's source, only lets them skip walks of the whole tree
    when no word they look for occurs in it."""
    return ModuleSummary(tree, text)


def _module_facts(tree: ast.Module, walk: bool) -> _ModuleFacts:
    """Computed once per module, in two passes: its frozen constants (module-level names bound exactly
    once, by a plain assignment of an immutable literal, never declared `global` or deleted), the names it
    binds at module level, and the reasons module-wide dynamic access rules out every hoist. `walk` False:
    the text spells no `global`, `del`, `globals`, `eval` or `exec`, so the walk of the whole tree would
    find nothing."""
    bound_at: dict[str, list[int]] = {}  # the indices of the top-level statements that bind a name
    literal: set[str] = set()
    calls: list[tuple[str, ast.Call, bool]] = []  # (name called, call, evaluated in module scope)
    for index, stmt in enumerate(tree.body):
        for node in _module_scope_nodes(stmt):
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
            if isinstance(node, ast.Assign) and isinstance(target, ast.Name) and _frozen_value(node.value, frozenset()):
                literal.add(target.id)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                calls.append((node.func.id, node, True))
            for name in bound_names(node):
                bound_at.setdefault(name, []).append(index)
    disqualified: set[str] = set()
    for node in ast.walk(tree) if walk else ():
        if isinstance(node, ast.Global):
            disqualified.update(node.names)
            for name in node.names:
                bound_at.setdefault(name, []).append(len(tree.body))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Del):
            disqualified.add(node.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            calls.append((node.func.id, node, False))
    shadowed = frozenset(bound_at)
    reasons: list[str] = []
    for called, call, module_scope in calls:
        if called in shadowed:
            continue
        # At module level `locals()`, `vars()` and `dir()` are the module's namespace too.
        if called == "globals" or (called in ("locals", "vars", "dir") and not call.args and module_scope):
            reasons.append(f"the module calls `{called}()`, which would see or change the new module-level name")
        elif called in ("exec", "eval"):
            reasons.append(f"the module calls `{called}()`, which could read or bind the new module-level name unseen")
    constants = frozenset(n for n in literal if len(bound_at.get(n, ())) == 1 and n not in disqualified)
    return _ModuleFacts(constants, shadowed, tuple(_unique(reasons)))


# The module object itself, by its own name: `sys.modules[__name__]`, `sys.modules.get(__name__)`,
# `importlib.import_module(__name__)`, `__import__(__name__)`.
@functools.cache
def _own_module() -> re.Pattern[str]:
    return re.compile(
        r"(?:modules\s*\[|modules\s*\.\s*get\s*\(|import_module\s*\(|__import__\s*\()\s*(?:__name__\b|['\"]__main__['\"])"
    )


_NAMESPACE_BUILTINS = frozenset({"globals", "eval", "exec", "locals", "vars", "dir"})


def _indirect_access_reasons(tree: ast.Module, shadowed: frozenset[str]) -> list[str]:
    """What reaches the module's namespace without calling a builtin by its name: the builtin passed around
    as a value (`run = eval`, `map(eval, names)`), taken from `builtins` (`builtins.eval(...)`, `from
    builtins import eval as run`), or the module object itself (`sys.modules[__name__]`): each could see,
    or change, the new module-level name. A name counts as the builtin only where no scope around it, nor
    module level (`shadowed`), binds it. Conservative: it may decline a safe fix, never allow another."""
    reasons: list[str] = []
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    # `import builtins as b`: `b.eval` is `builtins.eval`.
    builtins_names = {"builtins"} | {
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name == "builtins" and alias.asname
    }
    # (node, names bound by the scopes around it, the same for a function defined there: a class body's
    # names are not visible in its methods)
    stack: list[tuple[ast.AST, frozenset[str], frozenset[str]]] = [(s, shadowed, shadowed) for s in tree.body]
    # `builtins.print`: an attribute that is no namespace builtin reads nothing unseen; any other use of the
    # module (`getattr(builtins, name)`, `builtins.__dict__`, `vars(builtins)`) may reach `eval`.
    # (`builtins.eval` itself has its own reason below.) By spelling, in any scope: conservative.
    harmless = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and (node.attr in _NAMESPACE_BUILTINS or not node.attr.startswith("__"))
    }
    while stack:
        node, hidden, for_functions = stack.pop()
        if (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id in builtins_names
            and id(node) not in harmless
        ):
            reasons.append(
                f"the module uses the `{node.id}` module as a value, which could reach `eval` or `globals` and the "
                "new module-level name unseen"
            )
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in _NAMESPACE_BUILTINS:
            if node.id not in hidden and id(node) not in called:
                reasons.append(
                    f"the module uses `{node.id}` as a value (not only by calling it), which could reach the "
                    "new module-level name unseen"
                )
        elif isinstance(node, ast.ImportFrom) and node.module == "builtins" and node.level == 0:
            for alias in node.names:
                if alias.name in _NAMESPACE_BUILTINS or alias.name == "*":
                    reasons.append(
                        f"the module imports `{alias.name}` from `builtins`, which could reach the new "
                        "module-level name unseen"
                    )
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in _NAMESPACE_BUILTINS
            and isinstance(node.value, ast.Name)
            and node.value.id in builtins_names
        ):
            what = f"the module uses `{node.value.id}.{node.attr}`"
            reasons.append(f"{what}, which could reach the new module-level name unseen")
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            reasons.append(
                "the module uses `__builtins__`, whose `eval`, `exec` and `globals` could reach the new "
                "module-level name unseen"
            )
        elif isinstance(node, ast.Attribute) and node.attr == "__globals__":
            reasons.append(
                "the module reads a function's `__globals__`, the module namespace, which would hold the new name"
            )
        elif _imports_builtins(node):
            reasons.append(
                "the module imports `builtins` by a string, whose `eval`, `exec` and `globals` could reach the "
                "new module-level name unseen"
            )
        elif _names_own_module(node):
            reasons.append(
                "the module reaches its own module object by `__name__` (as `sys.modules[__name__]`), whose "
                "attributes would include the new module-level name"
            )
        stack.extend(_scoped_children(node, hidden, for_functions))
    return _unique(reasons)


def _scoped_children(
    node: ast.AST, hidden: frozenset[str], for_functions: frozenset[str]
) -> list[tuple[ast.AST, frozenset[str], frozenset[str]]]:
    """`node`'s children, each with the names the scopes around it bind (see `_indirect_access_reasons`)."""
    if isinstance(node, _FUNCTIONS):
        outside = [(n, hidden, for_functions) for n in _evaluated_here(node)]
        body: list[ast.AST] = [node.body] if isinstance(node, ast.Lambda) else list(node.body)
        inner = for_functions | scope_names(node, body)
        return [*outside, *((n, inner, inner) for n in body)]
    if isinstance(node, ast.ClassDef):
        outside = [(n, hidden, for_functions) for n in _evaluated_here(node)]
        in_class = hidden | scope_names(node, list(node.body))
        return [*outside, *((n, in_class, for_functions) for n in node.body)]
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        targets = frozenset(n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name))
        rest = [c for c in ast.iter_child_nodes(node) if c is not node.generators[0]]
        first = node.generators[0]
        inside = [c for c in ast.iter_child_nodes(first) if c is not first.iter]
        return [
            (first.iter, hidden, for_functions),
            *((c, hidden | targets, for_functions | targets) for c in (*rest, *inside)),
        ]
    return [(c, hidden, for_functions) for c in ast.iter_child_nodes(node)]


def _imports_builtins(node: ast.AST) -> bool:
    """`__import__("builtins")`, `importlib.import_module("builtins")` (by spelling, conservatively)."""
    if not isinstance(node, ast.Call) or not node.args:
        return False
    first = node.args[0]
    if not (isinstance(first, ast.Constant) and first.value in ("builtins", "__builtin__")):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in ("__import__", "import_module")


def _names_own_module(node: ast.AST) -> bool:
    """`sys.modules[__name__]`, `sys.modules.get(__name__)`, `importlib.import_module(__name__)`,
    `__import__(__name__)` (whatever the objects are called: by spelling, conservatively)."""
    if isinstance(node, ast.Subscript):
        value = node.value
        return isinstance(value, ast.Attribute) and value.attr == "modules" and _is_module_name(node.slice)
    if not isinstance(node, ast.Call) or not node.args or not _is_module_name(node.args[0]):
        return False
    func = node.func
    if isinstance(func, ast.Attribute):
        if func.attr == "get":
            return isinstance(func.value, ast.Attribute) and func.value.attr == "modules"
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id in ("__import__", "import_module")


def _is_module_name(expr: ast.AST) -> bool:
    """`__name__`, or the name a script runs under (`sys.modules["__main__"]`)."""
    if isinstance(expr, ast.Constant):
        return expr.value == "__main__"
    return isinstance(expr, ast.Name) and expr.id == "__name__"


# --------------------------------------------------------------------------- the function object's uses
def _bound_name(fn: FuncNode, parents: Parent) -> str | None:
    """The variable the function object is bound to where it is defined: the def's name, or a lambda's target."""
    if not isinstance(fn, ast.Lambda):
        return fn.name
    parent = parents(fn)
    if isinstance(parent, ast.Assign) and len(parent.targets) == 1:
        target: ast.expr = parent.targets[0]
    elif isinstance(parent, (ast.AnnAssign, ast.NamedExpr)):
        target = parent.target
    else:
        return None
    return target.id if isinstance(target, ast.Name) else None


def _uses(enclosing: FuncNode, fn: FuncNode, name: str) -> Iterator[ast.Name]:
    """Every `name` read in `enclosing`, except inside nested functions that bind `name` themselves."""
    stack: list[ast.AST] = [enclosing.body] if isinstance(enclosing, ast.Lambda) else list(enclosing.body)
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES) and node is not fn and _binds_locally(node, name):
            if isinstance(node, _FUNCTIONS):
                # Decorators and defaults run in the enclosing scope, not the function's own.
                stack.extend(defaults(node))
                if not isinstance(node, ast.Lambda):
                    stack.extend(node.decorator_list)
            continue
        if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Store):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _binds_locally(scope: ast.AST, name: str) -> bool:
    if isinstance(scope, _FUNCTIONS):
        a = scope.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *(p for p in (a.vararg, a.kwarg) if p is not None)]
        if any(p.arg == name for p in params):
            return True
        if isinstance(scope, ast.Lambda):
            return False
        body: list[ast.AST] = list(scope.body)
    else:
        return False  # a comprehension's targets: conservatively treat its reads as uses
    declared = any(isinstance(n, ast.Nonlocal) and name in n.names for n in own_scope_nodes(body))
    if declared:
        return False
    return any(name in bound_names(n) for n in own_scope_nodes(body))


def use_reasons(fn: FuncNode, uses: list[ast.Name], parents: Parent, is_mask_argument: IsMaskArgument) -> list[str]:
    """The function object must only be called or passed as a mask: anything else may tell copies apart."""
    found = [_inline_position(fn, parents, is_mask_argument)] if isinstance(fn, ast.Lambda) else []
    found += [_how_used(use, parents, is_mask_argument) for use in uses]
    ways = _unique([w for w in found if w])
    return [_object_reason(", ".join(ways))] if ways else []


def _inline_position(fn: ast.Lambda, parents: Parent, is_mask_argument: IsMaskArgument) -> str | None:
    """Where the lambda itself is evaluated: passed as a mask, or bound to one plain variable."""
    parent = parents(fn)
    if isinstance(parent, (ast.Assign, ast.AnnAssign)) and isinstance(parents(parent), ast.ClassDef):
        return "it is a class attribute, used through the class where its uses cannot be followed"
    if isinstance(parent, ast.Assign):
        if len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
            return None  # its uses are checked through the variable
        return "it is stored in more than one place or in a container"
    if isinstance(parent, ast.AnnAssign) and isinstance(parent.target, ast.Name):
        return None
    if isinstance(parent, ast.NamedExpr):
        return _how_used(parent, parents, is_mask_argument)
    return _how_used(fn, parents, is_mask_argument)


def _how_used(expr: ast.expr, parents: Parent, is_mask_argument: IsMaskArgument) -> str | None:
    """None when `expr` is called or passed as a mask; otherwise how it is used ("it is returned")."""
    if isinstance(expr, ast.Name) and isinstance(expr.ctx, ast.Del):
        return None  # the analysis' hoist site reports `del` itself
    current: ast.expr = expr
    parent = parents(current)
    while isinstance(parent, ast.IfExp) and current is not parent.test:  # `a if flag else b`: either passes through
        current, parent = parent, parents(parent)
    if isinstance(parent, ast.Call) and parent.func is current:
        return None  # called: the result does not depend on which object it is
    if isinstance(parent, ast.Assign) and _rebinds_itself(parent):
        return None  # `mask = mask`: the analysis lets the fix delete it only when it rebinds the same variable
    if isinstance(parent, (ast.Call, ast.keyword)) and is_mask_argument(current):
        return None
    return _describe(current, parent)


def _rebinds_itself(assign: ast.Assign) -> bool:
    target = assign.targets[0] if len(assign.targets) == 1 else None
    return isinstance(target, ast.Name) and isinstance(assign.value, ast.Name) and target.id == assign.value.id


def _describe(expr: ast.expr, parent: ast.AST | None) -> str:
    if isinstance(parent, ast.Attribute):
        return f"its attribute `.{parent.attr}` is used"
    if isinstance(parent, (ast.Return, ast.Yield, ast.YieldFrom)):
        return "it is returned"
    if isinstance(parent, (ast.Compare,)):
        return "it is compared"
    if isinstance(parent, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
        return "it is stored in another variable or attribute"
    if isinstance(parent, (ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Starred)):
        return "it is stored in a container"
    if isinstance(parent, (ast.Call, ast.keyword)):
        call = parent if isinstance(parent, ast.Call) else None
        callee = ast.unparse(call.func) if call is not None else "a call"
        return f"it is passed to `{callee}`, which is not a mask function API"
    return f"it is used as a value (`{ast.unparse(parent) if isinstance(parent, ast.expr) else ast.unparse(expr)}`)"


def _object_reason(what: str) -> str:
    return (
        f"the function object is used beyond being called or passed as a mask function ({what}), and "
        "hoisted, every call would share one object instead of getting its own"
    )


# --------------------------------------------------------------------------- conditional definitions
def dominance_reasons(fn: FuncNode, uses: list[ast.Name], parents: Parent) -> list[str]:
    """Every use must run only after the definition: in the statements that follow it in its block, or
    after an `if` whose other branch cannot fall through (it ends in `return`, `raise`, `break`, `continue`)."""
    statement = _defining_statement(fn, parents)
    if statement is None:
        return []
    dominated = _dominated_statements(statement, parents)
    walrus = isinstance(parents(fn), ast.NamedExpr)
    for use in uses:
        around = _self_and_ancestors(use, parents)
        if fn in around:
            continue  # its own body (recursion): runs after the binding
        if statement in around:
            if not walrus:
                continue  # the statement that binds it (`v = v` in its own line is not a use)
            return [
                f"`{use.id}` is read on line {use.lineno} in the statement whose walrus binds it, where it may "
                "run first and fail, and hoisted, it would not"
            ]
        if not any(s in around for s in dominated):
            return [
                f"the use on line {use.lineno} can run without the definition running first (a conditional "
                "definition, or a use before it), and hoisted, that path would no longer fail"
            ]
    return []


def _dominated_statements(statement: ast.stmt, parents: Parent) -> list[ast.stmt]:
    dominated: list[ast.stmt] = []
    current: ast.stmt = statement
    while True:
        parent = parents(current)
        block = _block_of(current, parents)
        if parent is None or block is None:
            return dominated
        index = next(i for i, s in enumerate(block) if s is current)
        dominated += block[index + 1 :]
        if not isinstance(parent, ast.If):
            return dominated
        other = parent.orelse if block is parent.body else parent.body
        if not other or not isinstance(other[-1], (ast.Return, ast.Raise, ast.Break, ast.Continue)):
            return dominated
        current = parent


def _defining_statement(fn: FuncNode, parents: Parent) -> ast.stmt | None:
    """The statement that binds the function's variable. A walrus: the statement it is in (a use elsewhere
    in that statement may run before it, so such uses count as undominated)."""
    if not isinstance(fn, ast.Lambda):
        return fn
    parent = parents(fn)
    if isinstance(parent, ast.NamedExpr):
        while parent is not None and not isinstance(parent, ast.stmt):
            parent = parents(parent)
        return parent
    return parent if isinstance(parent, (ast.Assign, ast.AnnAssign)) else None


def _block_of(statement: ast.stmt, parents: Parent) -> list[ast.stmt] | None:
    parent = parents(statement)
    if parent is None:
        return None
    for field in ("body", "orelse", "finalbody", "handlers"):
        block = getattr(parent, field, None)
        if isinstance(block, list) and any(s is statement for s in block):
            return block
    return None


def _self_and_ancestors(node: ast.AST, parents: Parent) -> set[ast.AST]:
    """`node` and every node above it (nodes hash by identity): one walk up answers each "is it inside"."""
    found: set[ast.AST] = set()
    current: ast.AST | None = node
    while current is not None:
        found.add(current)
        current = parents(current)
    return found


# --------------------------------------------------------------------------- suppressed uses
def mark_suppressed_uses(uses: list[MaskUse], is_suppressed: Callable[[int, str], bool]) -> None:
    """A use silenced with `# noqa` keeps its function nested: hoisting for another use would move it too."""
    for use in uses:
        line = use.arg_span.line
        for fn in use.functions:
            code = "ESP001" if fn.kind is FunctionKind.DEF else "ESP002"
            if fn.nested and is_suppressed(line, code):
                reason = f"its use on line {line} is suppressed with `# noqa: {code}`, and the fix would move it too"
                if reason not in fn.unfixable_reasons:
                    fn.unfixable_reasons.append(reason)


# --------------------------------------------------------------------------- helpers
def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


__all__ = ["ModuleSummary", "hoist_reasons", "mark_suppressed_uses", "module_summary"]
