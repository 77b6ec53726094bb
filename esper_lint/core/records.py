"""`__eq__` and `__repr__` for plain record classes, as `dataclasses` would write them.

The facts and results made on every run (analysis/model.py, findings.py) are plain classes with slots:
building dataclasses costs a one-file run (pre-commit's) a noticeable part of its start-up. A class lists
the fields its equality compares (`_compared`, in order) and its repr shows (`_shown`).
"""

from __future__ import annotations


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
