"""The event catalogue page (docs/events.md), generated from the event classes.

Nothing here knows any particular event: every class registered with
:func:`pivot.events.base.event` is listed, grouped by the module that defines
it (its *domain*, titled by the module docstring's first line), with its
type name, version, docstring and fields (name, type, default). Regenerate
the page after adding or changing an event::

    uv run pivot events catalogue --write docs/events.md

A test fails while the page is stale.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Mapping
from typing import Any

from pivot.events.base import Event, event_types

__all__ = ["catalogue_data", "pivot_event_types", "render_markdown"]

_COMMON = ("at", "actor", "correlation_id")


def pivot_event_types() -> dict[str, type[Event]]:
    """Every registered event class defined in pivot itself (not by tests or plugins)."""
    return {
        name: cls
        for name, cls in event_types().items()
        if cls.__module__.split(".", 1)[0] == "pivot"
    }


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:
        made = f.default_factory()
        return repr(made) if made in ({}, [], (), "", 0) else "(computed)"
    return "required"


def _type_text(annotation: object) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return str(text or annotation).replace("typing.", "")


def _doc(obj: object) -> str:
    return inspect.cleandoc(getattr(obj, "__doc__", None) or "")


def catalogue_data(types: Mapping[str, type[Event]]) -> list[dict[str, Any]]:
    """Every event as data: domain, type, version, class, doc, fields (for ``--json``)."""
    rows = []
    for type_name, cls in sorted(types.items(), key=lambda kv: (kv[1].__module__, kv[0])):
        fields = [
            {"name": f.name, "type": _type_text(f.type), "default": _default(f)}
            for f in dataclasses.fields(cls)
            if f.name not in _COMMON
        ]
        rows.append(
            {
                "domain": cls.__module__.rsplit(".", 1)[-1],
                "module": cls.__module__,
                "type": type_name,
                "version": cls.VERSION,
                "class": cls.__name__,
                "doc": _doc(cls),
                "fields": fields,
            }
        )
    return rows


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(types: Mapping[str, type[Event]]) -> str:
    """The whole docs/events.md page."""
    rows = catalogue_data(types)
    out = [
        "# Event catalogue",
        "",
        "<!-- Generated from the event classes by `pivot events catalogue --write "
        "docs/events.md`; do not edit by hand (a test fails when this page is stale). -->",
        "",
        "Every state transition pivot records is one of these events. Each also "
        "carries `at` (when it happened, seconds since the epoch), `actor` (which "
        "actor or command recorded it) and `correlation_id` (the cause it belongs "
        "to: a stage event carries its wave's id, a wave the change batch that "
        "caused it, an action the match that triggered it). Show them with "
        "`pivot events`; see [event-store.md](event-store.md).",
        "",
        f"{len(rows)} event types.",
        "",
    ]
    domain = None
    for row in rows:
        if row["module"] != domain:
            domain = row["module"]
            module_doc = _doc(sys.modules.get(domain)).split("\n\n")[0]
            out += [f"## {row['domain']}", "", _cell(module_doc), ""] if module_doc else [
                f"## {row['domain']}",
                "",
            ]  # fmt: skip
        out += [f"### `{row['type']}` (v{row['version']}, `{row['class']}`)", ""]
        if row["doc"]:
            out += [row["doc"], ""]
        if row["fields"]:
            out += ["| field | type | default |", "|---|---|---|"]
            out += [
                f"| `{f['name']}` | `{_cell(f['type'])}` | {_cell(f['default'])} |"
                for f in row["fields"]
            ]
        else:
            out.append("No fields besides `at`, `actor` and `correlation_id`.")
        out.append("")
    return "\n".join(out)
