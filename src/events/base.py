"""The base of every event: typed, frozen, versioned, serialisable.

An event class declares ``TYPE`` (a stable dotted name such as
``"stage.started"``) and ``VERSION``. Registering it with :func:`event` lets the
store turn stored JSON back into the class. When a class's fields change
incompatibly (a field renamed or removed, or added without a default), bump
``VERSION`` and register an upcaster from the old version with
:func:`upcaster`, so a log written by an older pivot still reads. Adding a
field with a default needs neither: old rows read with the default, and an
older pivot ignores a field it does not know.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
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
    "load_catalogue",
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
    _CURRENT.pop(cls.TYPE, None)
    return cls


def upcaster(
    type_name: str, from_version: int
) -> Callable[[Callable[[JSONDict], JSONDict]], Callable[[JSONDict], JSONDict]]:
    """Register a function turning version ``from_version`` data into the next version."""

    def register(fn: Callable[[JSONDict], JSONDict]) -> Callable[[JSONDict], JSONDict]:
        _UPCASTERS[(type_name, from_version)] = fn
        return fn

    return register


# The modules defining pivot's events. They register their classes when
# imported, which happens on first use (see ``pivot.events``); reading the
# whole registry, or meeting a type not registered yet, imports them all.
DOMAINS = (
    "pivot.events.pipeline",
    "pivot.events.watchers",
    "pivot.events.jobs",
    "pivot.events.actors",
)


@functools.cache
def load_catalogue() -> None:
    """Import every domain module, so every event class is registered (once)."""
    for name in DOMAINS:
        importlib.import_module(name)


def event_types() -> Mapping[str, type[Event]]:
    """Every event class by type name (the whole catalogue)."""
    load_catalogue()
    return dict(_REGISTRY)


def _registered(type_name: str) -> type[Event] | None:
    load_catalogue()
    return _REGISTRY.get(type_name)


class EventDecodeError(ValueError):
    """Stored data that no registered event class can read."""


def encode(ev: Event) -> tuple[str, int, JSONDict]:
    """Type name, version and fields of an event."""
    return ev.TYPE, ev.VERSION, ev.to_dict()


def decode(type_name: str, version: int, data: JSONDict) -> Event:
    """Rebuild an event, upcasting data written by an older version."""
    # Every event of a replay comes through here: data of the current
    # version goes straight to its class's fast constructor.
    current = _CURRENT.get(type_name)
    if current is not None and current[0] == version:
        ev = current[1](data)
        if ev is not None:
            return ev
    return _decode(type_name, version, data)


def _decode(type_name: str, version: int, data: JSONDict) -> Event:
    cls = _REGISTRY.get(type_name) or _registered(type_name)
    if cls is None:
        raise EventDecodeError(f"unknown event type {type_name!r}")
    while version < cls.VERSION:
        step = _UPCASTERS.get((type_name, version))
        if step is None:
            # The class may be registered while its module (which registers
            # the upcaster a few lines later) is still being imported by
            # another thread: load_catalogue waits for that import.
            load_catalogue()
            step = _UPCASTERS.get((type_name, version))
        if step is None:
            raise EventDecodeError(f"no upcaster for {type_name} v{version}")
        data = step(data)
        version += 1
    if version > cls.VERSION:
        raise EventDecodeError(
            f"{type_name} v{version} was written by a newer pivot (this one reads v{cls.VERSION})"
        )
    build = _BUILDERS.get(cls)
    if build is None:
        build = _BUILDERS[cls] = _builder(cls)
    _CURRENT[type_name] = (cls.VERSION, build)
    ev = build(data)
    if ev is not None:
        return ev
    names = _field_names(cls)
    try:
        return cls(**{k: _thaw(v) for k, v in data.items() if k in names})
    except TypeError as exc:
        raise EventDecodeError(f"{type_name} v{version}: {exc}") from exc


_BUILDERS: dict[type[Event], Callable[[JSONDict], Event | None]] = {}
# Type name -> (its current version, its class's fast constructor), filled by _decode.
_CURRENT: dict[str, tuple[int, Callable[[JSONDict], Event | None]]] = {}
_SCALARS = frozenset({"str", "int", "float", "bool", "None"})


def _may_hold_list(annotation: object) -> bool:
    # Annotations are strings here (``from __future__ import annotations``).
    parts = [p.strip() for p in str(annotation).split("|")]
    return not all(p in _SCALARS or p.startswith(("dict", "Mapping")) for p in parts)


def _builder(cls: type[Event]) -> Callable[[JSONDict], Event | None]:
    """A fast constructor for stored data of ``cls``'s current version.

    Frozen dataclass ``__init__`` pays one ``object.__setattr__`` per field,
    which dominated replays. For classes without ``__post_init__`` or slots,
    filling a new instance's ``__dict__`` (defaults, then the stored fields,
    JSON lists turned back into tuples) is equivalent. It declines (returns
    None, and ``__init__`` reports the problem) when a required field is
    missing or an unknown one is present.
    """
    fields = dataclasses.fields(cls)
    missing = dataclasses.MISSING
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        return lambda data: None
    names = frozenset(f.name for f in fields)
    required = frozenset(
        f.name for f in fields if f.default is missing and f.default_factory is missing
    )
    defaults = {f.name: f.default for f in fields if f.default is not missing}
    factories = tuple(
        (f.name, f.default_factory) for f in fields if f.default_factory is not missing
    )
    sequences = tuple(f.name for f in fields if _may_hold_list(f.type))
    new = object.__new__

    def build(data: JSONDict) -> Event | None:
        keys = data.keys()
        ev: Event = new(cls)
        values = ev.__dict__
        if keys == names:  # every field stored, as encode() writes them
            values.update(data)
        elif keys <= names and required <= keys:
            values.update(defaults)
            values.update(data)
            for name, factory in factories:
                if name not in values:
                    values[name] = factory()
        else:
            return None
        for name in sequences:
            value = values[name]
            if type(value) is list:
                values[name] = _thaw(value) if value else ()
        return ev

    return build


def _thaw(value: Any) -> Any:
    # JSON has no tuples; events use tuples for immutable sequences.
    if isinstance(value, list):
        return tuple([_thaw(v) if isinstance(v, list) else v for v in value])
    return value


def new_correlation_id() -> str:
    """A fresh id linking effects to their cause."""
    return uuid.uuid4().hex
