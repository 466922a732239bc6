"""The page's one JSON encoding: a value that is not a finite number is ``null``.

A job's output decides what ``store_metric`` stores, and a training loss
that diverges prints ``nan`` or ``inf``: the log keeps the value as it was.
JSON has no NaN or Infinity, though. Python's encoder would write the
tokens ``NaN``/``Infinity``, which the browser's ``JSON.parse`` refuses (a
push the page could not read), and Starlette's refuses to encode them at
all (a 500 for every answer that holds one). So every body and push of
``pivot ui`` is encoded here, and only a value holding such a number takes
the slower path that replaces it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse as _StarletteJSONResponse

__all__ = ["JSONResponse", "encode"]

_STRICT = json.JSONEncoder(separators=(",", ":"), default=str, allow_nan=False,
                           check_circular=False).encode  # fmt: skip


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def encode(value: Any) -> str:
    """``value`` as compact JSON text, a NaN or infinite float as ``null``."""
    try:
        return _STRICT(value)
    except ValueError:
        return _STRICT(_finite(value))


class JSONResponse(_StarletteJSONResponse):
    """Starlette's JSON response, encoded by :func:`encode`."""

    def render(self, content: Any) -> bytes:
        """The body."""
        return encode(content).encode()
