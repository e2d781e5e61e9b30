"""`@record`: a frozen, slot-free value class built without code generation.

`@dataclass(frozen=True)` writes and compiles five methods per class at import; for the
sixteen action types every verb that builds a move loads, that was most of a 10 ms import.
`record` reads the class's annotations once and installs shared generic methods instead:
keyword or positional construction with defaults, `__post_init__`, frozen attributes,
equality, hashing and a dataclass-like repr. Type checkers see it as a frozen dataclass
(`dataclass_transform`). Fields are the class's own annotations, in order; a default is a
plain class attribute (no mutable defaults, no `field()`: none of its users need one).
"""

from __future__ import annotations

from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T", bound=type)


class FrozenError(AttributeError):
    """Assigning to or deleting a field of a record."""


def _frozen_setattr(self: object, name: str, value: Any) -> None:
    raise FrozenError(f"cannot assign to field '{name}' of a frozen {type(self).__name__}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenError(f"cannot delete field '{name}' of a frozen {type(self).__name__}")


def _values(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, n) for n in obj.__match_args__)


def _eq(self: Any, other: object) -> Any:  # bool, or NotImplemented
    if other.__class__ is not self.__class__:
        return NotImplemented
    return bool(_values(self) == _values(other))


def _hash(self: Any) -> int:
    return hash((self.__class__.__name__, *_values(self)))


def _repr(self: Any) -> str:
    inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__match_args__)
    return f"{self.__class__.__qualname__}({inner})"


@dataclass_transform(frozen_default=True)
def record(cls: T) -> T:
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (inspect costs the import)
    names = tuple(n for n in own if not n.startswith("_"))
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    required = tuple(n for n in names if n not in defaults)
    post = cls.__dict__.get("__post_init__")
    qual = cls.__qualname__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{qual}() takes {len(names)} positional arguments, got {len(args)}")
        given = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in defaults and key not in required:
                raise TypeError(f"{qual}() got an unexpected keyword argument '{key}'")
            if key in given:
                raise TypeError(f"{qual}() got multiple values for argument '{key}'")
            given[key] = value
        missing = [n for n in required if n not in given]
        if missing:
            raise TypeError(f"{qual}() missing required argument(s): {', '.join(missing)}")
        for n in names:
            object.__setattr__(self, n, given[n] if n in given else defaults[n])
        if post is not None:
            post(self)

    __init__.__qualname__ = f"{qual}.__init__"
    cls.__init__ = __init__  # type: ignore[misc]
    cls.__setattr__ = _frozen_setattr  # type: ignore[assignment]
    cls.__delattr__ = _frozen_delattr  # type: ignore[assignment]
    cls.__eq__ = _eq  # type: ignore[assignment]
    cls.__hash__ = _hash  # type: ignore[assignment]
    cls.__repr__ = _repr  # type: ignore[assignment]
    setattr(cls, "__match_args__", names)  # noqa: B010 (a dunder mypy will not let us assign)
    return cls
