"""The base of every event: typed, frozen, versioned, serialisable.

An event class declares ``TYPE`` (a stable dotted name such as
``"stage.started"``) and ``VERSION``. Registering it with :func:`event` lets the
store turn stored JSON back into the class. When a class's fields change, bump
``VERSION`` and register an upcaster from the old version with
:func:`upcaster`, so a log written by an older pivot still reads.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

__all__ = [
    "Event",
    "EventDecodeError",
    "decode",
    "encode",
    "event",
    "event_types",
    "new_correlation_id",
    "upcaster",
]

JSONDict = dict[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """Something that happened, recorded once and never changed.

    ``at`` is when it happened (seconds since the epoch), ``actor`` which actor
    or command recorded it, ``correlation_id`` links an effect to its cause
    (a stage run to the change batch behind it, an action to the line that
    matched).
    """

    TYPE: ClassVar[str] = "event"
    VERSION: ClassVar[int] = 1

    at: float = dataclasses.field(default_factory=time.time)
    actor: str = ""
    correlation_id: str = ""

    def to_dict(self) -> JSONDict:
        """The event's fields as plain JSON-serialisable data.

        Fields hold plain data (str, numbers, bools, tuples, dicts of those),
        so a shallow copy is enough; ``dataclasses.asdict`` would deep-copy
        every value and costs several times more on the append path.
        """
        return {name: getattr(self, name) for name in _field_names(type(self))}


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


def _field_names(cls: type[Event]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        _FIELD_NAMES[cls] = names
    return names


E = TypeVar("E", bound=type[Event])

_REGISTRY: dict[str, type[Event]] = {}
_UPCASTERS: dict[tuple[str, int], Callable[[JSONDict], JSONDict]] = {}


def event(cls: E) -> E:
    """Class decorator: register an event class under its ``TYPE``."""
    existing = _REGISTRY.get(cls.TYPE)
    if existing is not None and existing is not cls:
        raise ValueError(f"event type {cls.TYPE!r} registered twice: {existing} and {cls}")
    _REGISTRY[cls.TYPE] = cls
    return cls


def upcaster(
    type_name: str, from_version: int
) -> Callable[[Callable[[JSONDict], JSONDict]], Callable[[JSONDict], JSONDict]]:
    """Register a function turning version ``from_version`` data into the next version."""

    def register(fn: Callable[[JSONDict], JSONDict]) -> Callable[[JSONDict], JSONDict]:
        _UPCASTERS[(type_name, from_version)] = fn
        return fn

    return register


def event_types() -> Mapping[str, type[Event]]:
    """Every registered event class by type name."""
    return dict(_REGISTRY)


class EventDecodeError(ValueError):
    """Stored data that no registered event class can read."""


def encode(ev: Event) -> tuple[str, int, JSONDict]:
    """Type name, version and fields of an event."""
    return ev.TYPE, ev.VERSION, ev.to_dict()


def decode(type_name: str, version: int, data: JSONDict) -> Event:
    """Rebuild an event, upcasting data written by an older version."""
    cls = _REGISTRY.get(type_name)
    if cls is None:
        raise EventDecodeError(f"unknown event type {type_name!r}")
    while version < cls.VERSION:
        step = _UPCASTERS.get((type_name, version))
        if step is None:
            raise EventDecodeError(f"no upcaster for {type_name} v{version}")
        data = step(data)
        version += 1
    if version > cls.VERSION:
        raise EventDecodeError(
            f"{type_name} v{version} was written by a newer pivot (this one reads v{cls.VERSION})"
        )
    shape = _shape(cls)
    if shape.plain and data.keys() <= shape.names and shape.required <= data.keys():
        # Fast path, taken by every replay: fill the instance's __dict__
        # directly. Frozen dataclass __init__ pays one object.__setattr__ per
        # field; this is equivalent for classes without __post_init__/slots.
        ev = object.__new__(cls)
        fields = ev.__dict__
        fields.update(shape.defaults)
        fields.update(data)
        for name, factory in shape.factories:
            if name not in data:
                fields[name] = factory()
        for key, value in data.items():
            if type(value) is list:
                fields[key] = _thaw(value)
        return ev
    try:
        return cls(**{k: _thaw(v) for k, v in data.items() if k in shape.names})
    except TypeError as exc:
        raise EventDecodeError(f"{type_name} v{version}: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class _Shape:
    """What decoding needs to know about an event class, computed once."""

    names: frozenset[str]
    required: frozenset[str]
    defaults: dict[str, Any]
    factories: tuple[tuple[str, Callable[[], Any]], ...]
    plain: bool  # no __post_init__ and no __slots__: __dict__ may be filled directly


_SHAPES: dict[type[Event], _Shape] = {}


def _shape(cls: type[Event]) -> _Shape:
    shape = _SHAPES.get(cls)
    if shape is None:
        fields = dataclasses.fields(cls)
        missing = dataclasses.MISSING
        shape = _SHAPES[cls] = _Shape(
            names=frozenset(f.name for f in fields),
            required=frozenset(
                f.name for f in fields if f.default is missing and f.default_factory is missing
            ),
            defaults={f.name: f.default for f in fields if f.default is not missing},
            factories=tuple(
                (f.name, f.default_factory) for f in fields if f.default_factory is not missing
            ),
            plain=not hasattr(cls, "__post_init__") and not hasattr(cls, "__slots__"),
        )
    return shape


def _thaw(value: Any) -> Any:
    # JSON has no tuples; events use tuples for immutable sequences.
    if isinstance(value, list):
        return tuple(_thaw(v) for v in value)
    return value


def new_correlation_id() -> str:
    """A fresh id linking effects to their cause."""
    return uuid.uuid4().hex
