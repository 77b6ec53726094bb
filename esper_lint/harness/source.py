"""Where a file is imported from, and the two sources the harness runs: as written and after `--fix`."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from .options import HarnessError


@dataclass(frozen=True)
class ModuleLocation:
    root: Path  # goes on sys.path: the folder above the outermost package
    name: str  # dotted module name relative to root, e.g. "blocks.attention"
    is_package: bool  # the file is a package's __init__.py


def locate(path: Path) -> ModuleLocation:
    """Walk up `__init__.py` files so relative imports in the file resolve as they do for its users."""
    path = path.resolve()
    if path.suffix != ".py":
        raise HarnessError(f"{path}: not a Python file (.py); pass the file that defines the factory")
    is_package = path.name == "__init__.py"
    parts = [] if is_package else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder != folder.parent:
        parts.insert(0, folder.name)
        folder = folder.parent
    if not parts:
        raise HarnessError(f"{path}: an __init__.py outside any package cannot be imported; pass a module file")
    for part in parts:
        if not part.isidentifier():
            raise HarnessError(f"{path}: {part!r} is not a valid module name, so the file cannot be imported")
    return ModuleLocation(root=folder, name=".".join(parts), is_package=is_package)


@dataclass(frozen=True)
class Sources:
    original: bytes
    fixed: bytes
    fixes_applied: int  # findings removed by the fix
    remaining: list[str]  # "CODE line: message" for findings the fix left (no safe fix)

    @property
    def changed(self) -> bool:
        return self.fixed != self.original


def read_sources(path: Path) -> Sources:
    """The file's bytes and the bytes `esper-lint --fix` would write, computed in memory."""
    try:
        original = path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        from ..fix.file_fixer import fix_source
    except ImportError:
        raise HarnessError(
            "this esper-lint has no fixer (esper_lint.fix.file_fixer.fix_source is missing), so there is no "
            "fixed variant to compare; reinstall esper-lint"
        ) from None
    from ..config import ConfigError, load_config

    try:
        config = load_config(None, path.resolve().parent)
    except ConfigError as exc:
        raise HarnessError(str(exc)) from None
    result = fix_source(original, str(path), config)
    if result.errors:
        raise HarnessError("; ".join(str(e) for e in result.errors))
    fixed = result.new_source if result.new_source is not None else original
    remaining = [f"{f.code} line {f.span.line}: {f.message}" for f in result.findings]
    return Sources(original, fixed, result.fixed, remaining)


def check_factory(path: Path, factory: str, is_package: bool) -> None:
    """Parse the file and find the factory's first name at module level, in the parent and without torch.

    Precision first: when the module could bind names in ways a reading cannot follow (a star import,
    a module `__getattr__`, writes through `globals()`), the worker's import decides instead.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        where = f"{path}:{exc.lineno}:{exc.offset}" if exc.lineno else str(path)
        raise HarnessError(f"{where}: the file does not parse ({exc.msg}), so it cannot be imported") from None
    except ValueError as exc:  # null bytes
        raise HarnessError(f"{path}: the file does not parse ({exc}), so it cannot be imported") from None
    head = factory.split(".")[0]
    if not all(part.isidentifier() for part in factory.split(".")):
        raise HarnessError(f"--factory {factory!r} is not a Python name (e.g. make_block or Model)")
    names = _module_level_names(tree)
    if names is None or head in names or (is_package and _is_submodule(path.parent, head)):
        return
    defined = sorted(n for n, kind in names.items() if kind == "callable" and not n.startswith("_"))
    hint = f" (defined there: {', '.join(defined)})" if defined else ""
    raise HarnessError(f"factory {head!r} not found in {path}{hint}; pass --factory NAME")


def _is_submodule(folder: Path, name: str) -> bool:
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


def _module_level_names(tree: ast.Module) -> dict[str, str] | None:
    """Names bound at module level ("callable" for def/class, else "value"); None when unknowable."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            names.update((n, "value") for n in node.names)  # assigned from inside a function
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("globals", "vars"):
            return None
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == "__getattr__":
                return None
            names[node.name] = "callable"
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.setdefault(alias.asname or alias.name.split(".")[0], "value")
            continue
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
            targets = [node.target]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    names.setdefault(sub.id, "value")
        for sub in ast.walk(node):  # walrus at module level
            if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                names.setdefault(sub.target.id, "value")
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(node, field, None) or ():
                if isinstance(child, ast.ExceptHandler):
                    if child.name:
                        names.setdefault(child.name, "value")
                    pending.extend(child.body)
                elif isinstance(child, ast.match_case):
                    pending.extend(child.body)
                elif isinstance(child, ast.stmt):
                    pending.append(child)
    return names
