"""`__eq__` and `__repr__` for plain record classes, as `dataclasses` would write them.

The facts and results made on every run (analysis/model.py, findings.py) are plain classes with slots:
building dataclasses costs a one-file run (pre-commit's) a noticeable part of its start-up. A class lists
the fields its equality compares (`_compared`, in order) and its repr shows (`_shown`). Value types that
are tuples use this module's `NamedTuple`, which makes the same classes as `typing.NamedTuple`, faster.
"""

from __future__ import annotations

import functools
import sys
import types
from collections import _tuplegetter  # type: ignore[attr-defined]  # what namedtuple's fields are made of
from typing import TYPE_CHECKING, Any


def record_eq(self: object, other: object) -> bool:
    """Equal when of the same class and equal in every compared field (a dataclass' `__eq__`)."""
    if other.__class__ is not self.__class__:
        return NotImplemented  # type: ignore[no-any-return]  # Python then tries the other side
    fields = type(self)._compared  # type: ignore[attr-defined]
    return tuple(getattr(self, f) for f in fields) == tuple(getattr(other, f) for f in fields)


def record_repr(self: object) -> str:
    """`Name(field=value, ...)` over the shown fields (a dataclass' `__repr__`)."""
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self)._shown)  # type: ignore[attr-defined]
    return f"{type(self).__name__}({shown})"


if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple  # re-exported: what type checkers see
else:

    class _NamedTupleMeta(type):
        """Builds `class Name(NamedTuple): field: type = default` as `typing.NamedTuple` does (a
        `collections.namedtuple` with the class body's docstring and methods), without checking each
        field's annotation: under `from __future__ import annotations` that check compiles every
        annotation's text, about two thirds of the cost of making the class, paid by every run at start-up
        (the analysis defines dozens of these)."""

        def __new__(mcls, typename: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
            if not bases:  # `NamedTuple` itself
                return super().__new__(mcls, typename, bases, namespace)
            annotations = namespace.get("__annotations__", {})
            fields = list(annotations)
            with_default = [name for name in fields if name in namespace]
            if with_default and fields[-len(with_default) :] != with_default:
                raise TypeError(f"{typename}: a field without a default follows one with a default")
            made = _namedtuple(typename, fields, [namespace[name] for name in with_default], namespace["__module__"])
            made.__annotations__ = annotations
            for key, value in namespace.items():
                if key not in _NAMEDTUPLE_OWN and key not in annotations:
                    setattr(made, key, value)
            return made

    _NAMEDTUPLE_OWN = frozenset({"__module__", "__annotations__", "__name__"})

    def _namedtuple(typename: str, fields: list[str], defaults: list[Any], module: str) -> type:
        """`collections.namedtuple(typename, fields, defaults=defaults, module=module)`, the same class, but
        its `__new__` is a template compiled once per number of fields, its parameters renamed, where
        `collections` compiles one for each class (about half the cost of making one)."""
        names = tuple(map(sys.intern, fields))
        count = len(names)
        template = _new_template(count)
        new = types.FunctionType(
            template.__code__.replace(co_varnames=("_cls", *names)), template.__globals__, "__new__", tuple(defaults)
        )
        arguments = ", ".join(names) + ("," if count == 1 else "")
        new.__doc__ = f"Create new instance of {typename}({arguments})"
        shown = "(" + ", ".join(f"{name}=%r" for name in names) + ")"

        @classmethod  # type: ignore[misc]
        def _make(cls: type, iterable: Any) -> Any:
            result = tuple.__new__(cls, iterable)
            if len(result) != count:
                raise TypeError(f"Expected {count} arguments, got {len(result)}")
            return result

        _make.__func__.__doc__ = f"Make a new {typename} object from a sequence or iterable"

        def _replace(self: Any, /, **changes: Any) -> Any:
            result = self._make(map(changes.pop, names, self))
            if changes:
                raise ValueError(f"Got unexpected field names: {list(changes)!r}")
            return result

        _replace.__doc__ = f"Return a new {typename} object replacing specified fields with new values"

        def __repr__(self: Any) -> str:
            "Return a nicely formatted representation string"
            return self.__class__.__name__ + shown % self

        def _asdict(self: Any) -> dict[str, Any]:
            "Return a new dict which maps field names to their values."
            return dict(zip(self._fields, self, strict=True))

        def __getnewargs__(self: Any) -> tuple[Any, ...]:
            "Return self as a plain tuple.  Used by copy and pickle."
            return tuple(self)

        for method in (new, _make.__func__, _replace, __repr__, _asdict, __getnewargs__):
            method.__qualname__ = f"{typename}.{method.__name__}"
        body: dict[str, Any] = {
            "__doc__": f"{typename}({arguments})",
            "__slots__": (),
            "_fields": names,
            "_field_defaults": dict(zip(names[count - len(defaults) :], defaults, strict=True)),
            "__new__": new,
            "_make": _make,
            "_replace": _replace,
            "__repr__": __repr__,
            "_asdict": _asdict,
            "__getnewargs__": __getnewargs__,
            "__match_args__": names,
        }
        for index, name in enumerate(names):
            body[name] = _tuplegetter(index, sys.intern(f"Alias for field number {index}"))
        made = type(typename, (tuple,), body)
        made.__module__ = module
        return made

    @functools.cache
    def _new_template(count: int) -> types.FunctionType:
        """`lambda _cls, _0, _1, ...: tuple.__new__(_cls, (_0, _1, ...))`, as `collections` writes it."""
        arguments = ", ".join(f"_{index}" for index in range(count)) + ("," if count == 1 else "")
        namespace = {"_tuple_new": tuple.__new__, "__builtins__": {}, "__name__": "namedtuple_template"}
        return eval(f"lambda _cls, {arguments}: _tuple_new(_cls, ({arguments}))", namespace)  # type: ignore[no-any-return]

    class NamedTuple(metaclass=_NamedTupleMeta):
        """`typing.NamedTuple` for this package's value types: the same classes, made faster (see the
        metaclass); type checkers see `typing.NamedTuple` itself."""
