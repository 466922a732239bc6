"""How an event is stored as a row, and read back.

A row holds the event's type (eventsourcing's *topic*) and, as its state,
the bytes of ``{"v": version, "d": fields}`` in compact JSON. Reading a row
back decodes (and upcasts) it; a row that is not such JSON is a clear
:class:`pivot.events.base.EventDecodeError` naming its seq, not a traceback.
"""

from __future__ import annotations

import json
from typing import Any

from pivot.events.base import Event, EventDecodeError, decode, encode

__all__ = ["encode_payload", "encode_state", "event_of", "parse", "row_error"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)
_DECODER = json.JSONDecoder()
# The decoder's C scanner (set by JSONDecoder.__init__; the stubs omit it).
_SCAN = _DECODER.scan_once  # type: ignore[attr-defined]


def encode_payload(version: int, data: Any) -> bytes:
    """The stored bytes ``{"v": version, "d": data}`` (one reused encoder: json.dumps
    builds a new one per call with these options)."""
    return f'{{"v":{version},"d":{_ENCODER.encode(data)}}}'.encode()


def encode_state(ev: Event) -> tuple[str, bytes]:
    """The topic and stored bytes of an event."""
    type_name, version, data = encode(ev)
    return type_name, encode_payload(version, data)


def parse(text: str) -> Any:
    """``json.loads(text)``, faster for what :func:`encode_state` writes.

    ``JSONDecoder.decode`` runs two whitespace regexes around the C scanner
    on every call; stored payloads have no surrounding whitespace, so the
    scanner alone reads them. Anything else (whitespace, trailing garbage)
    takes the full decoder, which accepts or rejects it exactly as before.
    """
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return _DECODER.decode(text)
    if end != len(text):
        return _DECODER.decode(text)
    return value


def event_of(seq: int, topic: str, state: bytes) -> Event:
    """The event a stored row holds (an :class:`EventDecodeError` naming it if none)."""
    try:
        payload = parse(state.decode())
        return decode(topic, payload["v"], payload["d"])
    except Exception as exc:
        raise row_error(seq, topic, state, exc) from None


def row_error(seq: int, topic: str, state: bytes, exc: Exception) -> Exception:
    """What to raise for a stored row that did not read: which event, and why.

    A row that is not ``{"v": int, "d": {...}}`` JSON (a damaged file, a row
    written by something else) is a clear :class:`EventDecodeError` naming its
    seq, so commands print one line; any other exception is a bug and stays
    itself.
    """
    if isinstance(exc, EventDecodeError):
        return EventDecodeError(f"event #{seq}: {exc}")
    try:
        payload = json.loads(state)
    except ValueError:  # also invalid UTF-8
        payload = None
    if not (
        isinstance(payload, dict)
        and type(payload.get("v")) is int
        and isinstance(payload.get("d"), dict)
    ):
        return EventDecodeError(
            f"event #{seq} ({topic}): the stored data is not a pivot event "
            "(a damaged store, or a row written by another program); "
            "`pivot events export --skip-damaged FILE` saves every event that reads"
        )
    return exc
