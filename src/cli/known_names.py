"""Which stage and watcher names exist, so a mistyped name is an error, not silence.

A stage is known when the log mentions it (``stage`` or a wave's ``stages``)
or when the project's pipeline (if one loads) declares it; a watcher id is
known when the log mentions it. Only consulted when a name matched nothing,
so a correct name costs nothing extra. The message about a name that matched
nothing is :func:`pivot.names.unknown_name`.
"""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pivot.events.store import EventStore

__all__ = ["logged_names", "pipeline_stages"]


def logged_names(store: EventStore, field: str) -> set[str]:
    """Every value of ``field`` in the log (for ``stage`` also wave ``stages`` lists)."""
    names: set[str] = set()
    for _seq, _type, _version, data in store.read_payloads(0, until=store.last_seq()):
        value = data.get(field)
        if isinstance(value, str) and value:
            names.add(value)
        if field == "stage":
            names.update(s for s in data.get("stages") or () if isinstance(s, str))
    return names


def pipeline_stages() -> list[str]:
    """Stage names of the pipeline found from the working directory; [] if none loads."""
    from pivot.pipeline.loader import load_pipeline

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the pipeline may print
            spec = load_pipeline(check_deps=False)
    except Exception:  # a broken or absent pipeline only means: no names from it
        return []
    return [s.name for s in spec.stages]
