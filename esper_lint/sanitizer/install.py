"""Putting the checks in torch's way: the entry points of `torch.nn.attention.flex_attention` replaced by
checked wrappers, however the program reaches them.

- Module attributes: `create_block_mask`, `create_mask`, `flex_attention` (so `from ... import` after
  installation gets the wrappers) and `BlockMask.__getitem__` (to know what a slice was cut from).
- Names already bound in the program's modules (`with sanitize():` after `from ... import`) are rebound
  for the duration, and restored after.
- `torch.compile(<entry point>)` returns a checked object around the real compiled function: the checks
  run in Python before each call, outside anything dynamo traces.
- Inside code dynamo traces (a compiled model calling `flex_attention`), each wrapper calls the original at
  once: `torch.compiler.is_compiling()` is constant-folded by dynamo, so the traced graph is the one the
  program gets without the sanitizer (no graph break; tests/test_sanitize_compile.py proves it).

For the CLI and pytest, `install_on_import()` waits for the program to import the flex_attention module
(an import hook), so torch is imported when the program imports it, not before: a program that sets
CUDA_VISIBLE_DEVICES or torch's own environment variables before `import torch` keeps that working.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import os
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

from .records import SanitizerError
from .session import STATE

MODULE = "torch.nn.attention.flex_attention"
ENTRY_POINTS = ("create_block_mask", "create_mask", "flex_attention")
# Tested on these releases (the checks read FlexAttention internals that change between releases).
SUPPORTED = ((2, 13),)
SUPPORTED_TEXT = "torch 2.13"
ANY_TORCH_ENV = "ESPER_SANITIZE_ANY_TORCH"  # =1: run on another release anyway, at your own risk


def version_problem(version: str) -> str | None:
    """Why this torch release is refused, or None when it is supported."""
    numbers = version.split("+")[0].split(".")
    try:
        major_minor = (int(numbers[0]), int(numbers[1]))
    except (IndexError, ValueError):
        major_minor = (0, 0)
    if major_minor in SUPPORTED or os.environ.get(ANY_TORCH_ENV) == "1":
        return None
    return (
        f"esper-lint sanitize supports {SUPPORTED_TEXT}; this environment has torch {version}. Its checks read "
        f"FlexAttention internals that change between releases. Set {ANY_TORCH_ENV}=1 to try it anyway."
    )


def installed_torch_version() -> str | None:
    """The installed torch's version without importing torch."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


class _Installed:
    def __init__(self) -> None:
        self.originals: dict[str, Any] = {}
        self.wrappers: dict[str, Any] = {}
        self.getitem: Any = None
        self.compile: Any = None
        self.rebound: list[tuple[dict[str, Any], str, Any, Any]] = []
        self.users = 0


_INSTALLED: _Installed | None = None
# One wrapper per original for the life of the process: a name the program bound to a wrapper during one
# sanitized block is the same object in the next one (and calls the original when no block is active).
_WRAPPERS: dict[str, Any] = {}


def _depth() -> int:
    depth: int = getattr(STATE.local, "depth", 0)
    return depth


def _entry_wrapper(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    import torch

    from . import calls

    is_compiling = torch.compiler.is_compiling

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Dynamo folds is_compiling() to True and traces only the original call: no graph break.
        if is_compiling() or _depth() or not STATE.sessions:
            return original(*args, **kwargs)
        STATE.local.depth = 1  # torch calls its own entry points (create_block_mask -> create_mask)
        try:
            if name == "flex_attention":
                return calls.flex_call(original, args, kwargs, None)
            return calls.mask_call(name, original, args, kwargs, None, False)
        finally:
            STATE.local.depth = 0

    wrapper.__esper_sanitize_original__ = original  # type: ignore[attr-defined]
    return wrapper


class CompiledEntry:
    """What `torch.compile(flex_attention)` (or create_block_mask, create_mask) returns while sanitizing:
    the checks, then the real compiled function with the original arguments."""

    def __init__(
        self, name: str, original: Callable[..., Any], compiled: Callable[..., Any], dynamic_false: bool
    ) -> None:
        import torch

        self._name = name
        self._original = original
        self._compiled = compiled
        self._dynamic_false = dynamic_false
        self._is_compiling = torch.compiler.is_compiling
        self.__wrapped__ = compiled
        self.__name__ = getattr(original, "__name__", name)
        self.__doc__ = getattr(original, "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._is_compiling() or _depth() or not STATE.sessions:
            return self._compiled(*args, **kwargs)
        from . import calls

        STATE.local.depth = 1
        try:
            if self._name == "flex_attention":
                return calls.flex_call(self._original, args, kwargs, self._compiled)
            return calls.mask_call(self._name, self._original, args, kwargs, self._compiled, self._dynamic_false)
        finally:
            STATE.local.depth = 0

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._compiled, attribute)


def install() -> None:
    """Install the checks (idempotent; counted: each install() is matched by an uninstall())."""
    global _INSTALLED
    import torch

    problem = version_problem(torch.__version__)
    if problem is not None:
        raise SanitizerError(problem)
    if _INSTALLED is not None:
        _INSTALLED.users += 1
        return
    import torch.nn.attention.flex_attention

    module = sys.modules[MODULE]
    state = _Installed()
    state.users = 1
    for name in ENTRY_POINTS:
        original = getattr(module, name)
        original = getattr(original, "__esper_sanitize_original__", original)
        state.originals[name] = original
        if name not in _WRAPPERS:
            _WRAPPERS[name] = _entry_wrapper(name, original)
        state.wrappers[name] = _WRAPPERS[name]
        setattr(module, name, state.wrappers[name])
    block_mask = module.BlockMask
    state.getitem = block_mask.__getitem__
    if "__getitem__" not in _WRAPPERS:
        _WRAPPERS["__getitem__"] = _slice_wrapper(state.getitem)
    block_mask.__getitem__ = _WRAPPERS["__getitem__"]
    state.compile = torch.compile
    torch.compile = _compile_wrapper(state)
    _INSTALLED = state
    rebind_loaded_modules()


def uninstall() -> None:
    global _INSTALLED
    state = _INSTALLED
    if state is None:
        return
    state.users -= 1
    if state.users > 0:
        return
    import torch

    module = sys.modules[MODULE]
    for name, original in state.originals.items():
        if getattr(module, name) is state.wrappers[name]:
            setattr(module, name, original)
    module.BlockMask.__getitem__ = state.getitem
    if getattr(torch.compile, "__esper_sanitize_original__", None) is state.compile:
        setattr(torch, "compile", state.compile)  # noqa: B010  (typed as torch's own function)
    for namespace, key, original, wrapper in state.rebound:
        if namespace.get(key) is wrapper:
            namespace[key] = original
    _INSTALLED = None


def rebind_loaded_modules() -> None:
    """Point the program's own module-level names for the entry points (and torch.compile) at the wrappers."""
    state = _INSTALLED
    if state is None:
        return
    import torch

    replace: dict[int, Any] = {id(o): state.wrappers[n] for n, o in state.originals.items()}
    replace[id(state.compile)] = torch.compile
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.partition(".")[0] in ("torch", "esper_lint", "functorch", "builtins", "sys"):
            continue
        try:
            namespace = vars(module)
        except TypeError:
            continue
        for key, value in list(namespace.items()):
            wrapper = replace.get(id(value))
            if wrapper is not None and (value in state.originals.values() or value is state.compile):
                namespace[key] = wrapper
                state.rebound.append((namespace, key, value, wrapper))


def _slice_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    import torch

    from . import calls

    is_compiling = torch.compiler.is_compiling

    @functools.wraps(original)
    def __getitem__(self: Any, index: Any) -> Any:
        if is_compiling() or _depth() or not STATE.sessions:
            return original(self, index)
        STATE.local.depth = 1
        try:
            return calls.slice_call(original, self, index)
        finally:
            STATE.local.depth = 0

    return __getitem__


def _compile_wrapper(state: _Installed) -> Callable[..., Any]:
    real = state.compile
    entries = {id(v): n for n, v in state.originals.items()} | {id(v): n for n, v in state.wrappers.items()}

    @functools.wraps(real)
    def compile(model: Any = None, **kwargs: Any) -> Any:
        if model is None:  # `@torch.compile(dynamic=False)`: a decorator
            return lambda fn: compile(fn, **kwargs)
        name = entries.get(id(model))
        if name is None or _INSTALLED is not state:
            return real(model, **kwargs)
        original = state.originals[name]
        return CompiledEntry(name, original, real(original, **kwargs), kwargs.get("dynamic") is False)

    compile.__esper_sanitize_original__ = real  # type: ignore[attr-defined]
    return compile


# --------------------------------------------------------------------------- installation on import
class _Finder(importlib.abc.MetaPathFinder):
    """Installs the checks right after the program imports torch's flex_attention module."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader: Any = spec.loader
        real_exec = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            real_exec(module)
            sys.modules[fullname] = module
            install()
            on_install()

        loader.exec_module = exec_module
        return spec


on_install: Callable[[], None] = lambda: None  # noqa: E731


def install_on_import() -> None:
    """Install now if the module is loaded, else when it is first imported."""
    if MODULE in sys.modules:
        install()
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
