"""Where a file is imported from, and the two sources the harness runs: as written and after `--fix`."""

from __future__ import annotations

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
        from ..fix import fix_source
    except ImportError:
        raise HarnessError(
            "this esper-lint has no fixer (esper_lint.fix.fix_source is missing), so there is no fixed variant "
            "to compare; reinstall esper-lint"
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
