"""`__eq__` and `__repr__` for plain record classes, as `dataclasses` would write them.

The facts and results made on every run (analysis/model.py, findings.py) are plain classes with slots:
building dataclasses costs a one-file run (pre-commit's) a noticeable part of its start-up. A class lists
the fields its equality compares (`_compared`, in order) and its repr shows (`_shown`). Value types that
are tuples use this module's `NamedTuple`, which makes the same classes as `typing.NamedTuple`, faster.
"""

from __future__ import annotations

import collections
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
            made = collections.namedtuple(
                typename, fields, defaults=[namespace[name] for name in with_default], module=namespace["__module__"]
            )
            made.__annotations__ = annotations
            for key, value in namespace.items():
                if key not in _NAMEDTUPLE_OWN and key not in annotations:
                    setattr(made, key, value)
            return made

    _NAMEDTUPLE_OWN = frozenset({"__module__", "__annotations__", "__name__"})

    class NamedTuple(metaclass=_NamedTupleMeta):
        """`typing.NamedTuple` for this package's value types: the same classes, made faster (see the
        metaclass); type checkers see `typing.NamedTuple` itself."""
