"""Which names module level binds or reads: a hoisted function must not take any of them."""

from __future__ import annotations

import ast
import bisect
import functools
import io
import itertools
import re
from typing import TYPE_CHECKING

from ..core.span import first_line
from .bound_names import scope_names
from .hoist_safety import identifier_texts

if TYPE_CHECKING:
    from ..core.noqa import SourceLines


def module_level_names(text: str) -> frozenset[str]:
    """Every name module level binds or some code reads from module level (or builtins), by the
    compiler's own symbol tables: a hoisted function must not take any of them."""
    import symtable

    top = symtable.symtable(text, "<module>", "exec")
    names = set(top.get_identifiers())
    stack = list(top.get_children())
    while stack:
        table = stack.pop()
        is_class = str(table.get_type()) in ("class", "SymbolTableType.CLASS")
        for sym in table.get_symbols():
            if sym.is_global() or sym.is_declared_global():
                names.add(sym.get_name())
            elif is_class and sym.is_referenced() and not sym.is_free():
                names.add(sym.get_name())  # a class body reads its own names from module level as well
        stack.extend(table.get_children())
    return frozenset(names)


class ModuleLevelNames:
    """`module_level_names`, asked one name at a time: answered from the text when it can be, exactly,
    and by the compiler's symbol tables (`symtable`, a second parse of the whole file) only otherwise.

    Everything `module_level_names` holds is an identifier spelled in module-level code, a name some
    scope reads as a global, or a name a class body reads. So a name is surely not among them when the
    text spells it nowhere; or when `inside` (the def whose local the hoisted function is) binds it in
    its own scope and the text spells it, as a whole word, nowhere but in that def's body, in strings,
    in comments or after a `.` (attributes are no names), no scope in that body declaring it `global`
    and no class body there binding it (a class body that binds a name reads it from module level):
    every read of it there is a read of that local. Mangled names (`_C__x`) are never spelled, so names
    with `__` go to `symtable`; so does every name when some identifier may NFKC-normalize to an ASCII
    word it does not spell."""

    def __init__(self, text: str, tree: ast.Module) -> None:
        self.text = text
        self.tree = tree
        self._all: frozenset[str] | None = None

    def uses(self, name: str, inside: ast.AST | None = None) -> bool:
        if self._all is None and self._surely_unused(name, inside):
            return False
        if self._all is None:
            self._all = module_level_names(self.text)
        return name in self._all

    @functools.cached_property
    def _read_as_written(self) -> bool:
        """No identifier can NFKC-normalize to an ASCII word the text does not spell."""
        return len(identifier_texts(self.text)) == 1

    @functools.cached_property
    def _line_starts(self) -> list[int]:
        lines = io.StringIO(self.text, newline="").readlines()  # \n, \r\n and \r end lines, as for Python
        return list(itertools.accumulate((len(line) for line in lines), initial=0))

    @functools.cached_property
    def _source(self) -> SourceLines:
        from ..core.noqa import SourceLines

        return SourceLines(self.text, self.tree)

    def _surely_unused(self, name: str, inside: ast.AST | None) -> bool:
        text = self.text
        if "__" in name or not name.isidentifier() or not name.isascii() or not self._read_as_written:
            return False
        found = [m.start() for m in re.finditer(rf"\b{re.escape(name)}\b", text)]
        if not found:
            return True
        body = self._body_lines(inside)
        if body is None:
            return False
        assert isinstance(inside, (ast.FunctionDef, ast.AsyncFunctionDef))
        if name not in scope_names(inside, list(inside.body)):
            return False  # only a local of `inside` is read there as that local, not as a global
        first, last = body
        for node in (n for stmt in inside.body for n in ast.walk(stmt)):
            if isinstance(node, ast.Global) and name in node.names:
                return False  # a nested scope reads and writes the module's own `name`
            if isinstance(node, ast.ClassDef) and name in scope_names(node, list(node.body)):
                return False  # a class body that binds `name` reads it from module level
        line_starts = self._line_starts
        for at in found:
            number = bisect.bisect_right(line_starts, at)
            if first <= number <= last:
                continue
            before = text[line_starts[number - 1] : at]
            if before.rstrip(" \t").endswith("."):
                continue  # an attribute: `x.name`
            column = len(before.encode("utf-8", "surrogatepass"))  # ast counts UTF-8 bytes
            if self._source.in_code(number, column) is not False:
                return False  # an identifier, or the tree cannot tell
        return True

    @staticmethod
    def _body_lines(inside: ast.AST | None) -> tuple[int, int] | None:
        """The lines of a def's body, when none of them also holds its header (`def f(x=a): a`)."""
        if not isinstance(inside, (ast.FunctionDef, ast.AsyncFunctionDef)) or inside.end_lineno is None:
            return None
        header = [inside.args, *inside.decorator_list, *([inside.returns] if inside.returns else [])]
        header_end = max([inside.lineno, *(getattr(n, "end_lineno", 0) or 0 for h in header for n in ast.walk(h))])
        first = first_line(inside.body[0])
        return (first, inside.end_lineno) if first > header_end else None
