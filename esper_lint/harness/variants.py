"""Importing the variant under test inside a harness worker: the module is executed from the given source
(original, or after `esper-lint --fix`) under its real dotted name, and its factory looked up."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import linecache
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from esper_lint.harness.options import type_phrase


class CheckError(Exception):
    """A check the harness makes on what it was given failed (device, factory, what the module returns).

    Reported as its message alone: neither the module's exception nor a fault of the harness.
    """


class _VariantLoader(importlib.abc.Loader):
    def __init__(self, source: str, filename: str, code_name: str) -> None:
        self.source, self.filename, self.code_name = source, filename, code_name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        code = compile(self.source, self.code_name, "exec", dont_inherit=True)
        exec(code, module.__dict__)


class _VariantFinder(importlib.abc.MetaPathFinder):
    """Serves the variant for exactly one module name, whoever imports it first (the package's
    `__init__` included), so import-time side effects such as registries run once per process."""

    def __init__(self, name: str, loader: _VariantLoader, is_package: bool) -> None:
        self.name, self.loader, self.is_package = name, loader, is_package

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None) -> Any:
        if fullname != self.name:
            return None
        spec = importlib.machinery.ModuleSpec(
            fullname, self.loader, origin=self.loader.filename, is_package=self.is_package
        )
        spec.has_location = True
        if self.is_package:
            spec.submodule_search_locations = [str(Path(self.loader.filename).parent)]
        return spec


def import_variant(setup: dict[str, Any]) -> types.ModuleType:
    source = Path(setup["source_file"]).read_bytes().decode(setup.get("encoding", "utf-8"))
    filename = setup["path"]
    code_name = filename if setup["variant"] == "original" else f"{filename} (after esper-lint --fix)"
    # Tracebacks and inspect.getsource show the variant's own lines.
    linecache.cache[code_name] = (len(source), None, source.splitlines(True), code_name)
    sys.path.insert(0, setup["root"])
    loader = _VariantLoader(source, filename, code_name)
    sys.meta_path.insert(0, _VariantFinder(setup["module"], loader, setup["is_package"]))
    return importlib.import_module(setup["module"])


def resolve_factory(module: types.ModuleType, name: str) -> Any:
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            candidates = sorted(
                n
                for n, v in vars(module).items()
                if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == module.__name__
            )
            hint = f" (callables defined there: {', '.join(candidates)})" if candidates else ""
            raise CheckError(f"factory {name!r} not found in {module.__name__}{hint}; pass --factory NAME")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CheckError(f"{name!r} is {type_phrase(obj)}, not a factory function or nn.Module class")
    return obj
