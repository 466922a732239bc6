"""The OpenAPI 3.1 document ``GET /openapi.json`` serves.

Written out here rather than derived from request models: the watcher
format's single definition is :mod:`pivot.jobs.definition` (its parser is
what validates a request), and a second, model-shaped copy of it would
drift. ``tests/ui/test_ui_api.py`` checks that every route of the app is in
this document and every path here is a route.
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, status: str = "200",
        errors: tuple[str, ...] = ("401",)) -> dict[str, Any]:  # fmt: skip
    op: dict[str, Any] = {"summary": summary, "responses": {status: _json(ok)}}
    for code in errors:
        op["responses"][code] = _json(_ref("Error"), _ERRORS[code])
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


_ERRORS = {
    "400": "a malformed request (the field is named)",
    "401": "a token is required: Authorization: Bearer <token>",
    "404": "no such watcher, job, host or stage",
    "409": "the watcher is not in a state that allows this",
    "422": "an invalid watcher definition (the field is named)",
    "502": "the host or Slurm could not be reached",
}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def _p(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
            "description": description}  # fmt: skip


_OBJ = {"type": "object"}
_WID = _p("watcher_id", "watcher id (or a unique prefix)")
_HOST = _p("hostname", "a host of pivot.toml, or local")
_BYTES = _q("bytes", {"type": "integer", "minimum": 1, "maximum": 1048576},
            "how much of the end of the file (default 65536)")  # fmt: skip

_STR = {"type": "string"}
_SCHEMAS: dict[str, Any] = {
    "SlurmJob": {"type": ["object", "null"], "description": "the SLURM job of the stage's "
        "current or last run (null: it ran locally)", "properties": {
        "job_id": _STR, "host": _STR, "exit_code": _STR, "resubmit_of": _STR,
        "state": {"type": "string", "description": "submitted or adopted until Slurm was "
                  "asked, then Slurm's (pending, running, completed, failed, out_of_memory...); "
                  "ended: the run ended before a poll saw the job end"},
        "adopted": {"type": "boolean"}, "ended": {"type": "boolean"}, "at": {"type": "number"}}},
    "PipelineStage": {"type": "object", "properties": {
        "name": _STR, "state": _STR, "last_run": {"type": ["number", "null"]},
        "duration": {"type": ["number", "null"]}, "reason": _STR, "last_error": _STR,
        "wave_id": _STR, "updated_at": {"type": "number"},
        "executor": {"type": "string", "description": "where its current or last run runs: "
                     "local, slurm (empty before it first ran)"},
        "host": {"type": "string", "description": "the SLURM host (empty when local)"},
        "job": _ref("SlurmJob")}},
    "Error": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"}, "field": {"type": ["string", "null"]}}},
    "Action": {"type": "object", "required": ["type"], "properties": {
        "type": {"enum": ["cancel_job", "resubmit", "notify_email", "notify_webhook",
                          "run_command", "store_metric", "log_event", "pause_watcher"]},
        "params": {"type": "object", "description": "at most 10 KB as JSON"}}},
    "NewWatcher": {
        "type": "object",
        "required": ["job_id", "name", "pattern", "actions"],
        "description": "job_id and hostname, plus any key of the YAML format (docs/watchers.md)",
        "properties": {
            "job_id": {"type": "string"}, "hostname": {"type": "string", "default": "local"},
            "name": {"type": "string"}, "pattern": {"type": "string", "maxLength": 1000},
            "captures": {"type": "array", "items": {"type": "string"}},
            "condition": {"type": "string", "maxLength": 500},
            "actions": {"type": "array", "minItems": 1, "items": _ref("Action")},
            "interval_seconds": {"type": "number"},
            "output_type": {"enum": ["stdout", "stderr", "both"]},
            "max_triggers": {"type": "integer"}, "max_failures": {"type": "integer"},
            "rate_limit_per_minute": {"type": "integer"},
            "timer_mode_enabled": {"type": "boolean"}, "timer_interval_seconds": {"type": "number"},
            "trigger_on_job_end": {"type": "boolean"},
            "job_end_states": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Watcher": {"type": "object", "description": "ssync's watcher fields plus pivot's "
                "(see pivot.ui.shapes)", "properties": {
        k: {} for k in ("id", "job_id", "hostname", "name", "pattern", "state", "trigger_count",
                        "interval_seconds", "captures", "condition", "actions", "last_check",
                        "created_at", "match_count", "counts", "last_trigger")}},
    "Event": {"type": "object", "description": "see pivot.ui.messages.event_json"},
    "Stats": {"type": "object", "properties": {k: {} for k in (
        "total_watchers", "watchers_by_state", "total_events", "events_by_action",
        "events_last_hour", "top_watchers")}},
}  # fmt: skip


def _list(key: str, item: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    props = {key: {"type": "array", "items": _ref(item)}, "count": {"type": "integer"}}
    props.update({k: {} for k in extra})
    return {"type": "object", "properties": props}


def openapi() -> dict[str, Any]:
    """The document (a fresh dict each call)."""
    watcher, error4 = _ref("Watcher"), ("401", "404")
    paths: dict[str, Any] = {
        "/api/status": {"get": _op("this server: seq, hosting watchers, store", _OBJ)},
        "/api/watchers": {
            "get": _op("watchers, newest first", _list("watchers", "Watcher"), params=[
                _q("state", {"type": "string"}, "only this state"),
                _q("limit", {"type": "integer", "minimum": 1}, "at most this many")],
                errors=("400", "401")),
            "post": _op("validate like `pivot watchers add` and attach a watcher", watcher,
                        body=_ref("NewWatcher"), status="201", errors=("400", "401", "422")),
        },
        "/api/watchers/events": {"get": _op("watcher events, newest first", _list(
            "events", "Event"), params=[_q("job_id", {"type": "string"}, "only this job"),
            _q("watcher_id", {"type": "string"}, "only this watcher"),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "default 100")],
            errors=("400", "401", "404"))},
        "/api/watchers/stats": {"get": _op("totals, states, action outcomes, busiest",
                                           _ref("Stats"))},
        "/api/jobs/{job_id}/watchers": {"get": _op("a job's watchers", _list(
            "watchers", "Watcher", ("job_id",)), params=[_p("job_id", "Slurm job id")])},
        "/api/watchers/{watcher_id}": {
            "get": _op("one watcher", watcher, params=[_WID], errors=error4),
            "put": _op("a new definition for the same watcher (id, read position kept), "
                       "as `pivot watchers edit`; job_id and hostname may not change", watcher,
                       params=[_WID], body=_ref("NewWatcher"),
                       errors=("400", "401", "404", "422")),
            "delete": _op("remove a watcher (its history stays)", _OBJ, params=[_WID],
                          errors=error4),
        },
        "/api/watchers/{watcher_id}/copy": {"post": _op(
            "attach a copy to another job", watcher, params=[_WID], status="201",
            body={"type": "object", "required": ["job_id"], "properties": {
                "job_id": {"type": "string"}, "hostname": {"type": "string"}}},
            errors=("400", "401", "404", "422"))},
        "/api/watchers/{watcher_id}/pause": {"post": _op("pause", watcher, params=[_WID],
                                                         errors=("401", "404", "409"))},
        "/api/watchers/{watcher_id}/resume": {"post": _op("resume", watcher, params=[_WID],
                                                          errors=("401", "404", "409"))},
        "/api/watchers/{watcher_id}/trigger": {"post": _op(
            "fire now and run the actions", {"type": "object", "properties": {
                k: {} for k in ("timer_mode", "success", "message", "matches")}},
            params=[_WID], body={"type": "object", "properties": {"text": {"type": "string"}}},
            errors=("400", "401", "404", "422"))},
        "/api/watchers/{watcher_id}/metrics": {"get": _op(
            "series stored by store_metric", _OBJ, params=[_WID], errors=error4)},
        "/api/templates": {"get": _op("the built-in watcher templates and their parameters",
                                      _OBJ)},
        "/api/templates/{name}/render": {"post": _op(
            "a template filled in: the watcher definition", _OBJ,
            params=[_p("name", "template name")],
            body={"type": "object", "properties": {"values": {"type": "object"}}},
            errors=("400", "401", "404", "422"))},
        "/api/watchers/check": {"post": _op(
            "validate a create request and list its add-time warnings (nothing is added)",
            {"type": "object", "properties": {"definition": {}, "warnings": {}}},
            body=_ref("NewWatcher"), errors=("400", "401", "422"))},
        "/api/hosts": {"get": _op("configured hosts", _OBJ)},
        "/api/hosts/{hostname}/jobs": {"get": _op("the user's queued and running jobs", _OBJ,
                                                  params=[_HOST], errors=("401", "404", "502"))},
        "/api/hosts/{hostname}/jobs/{job_id}/output": {"get": _op(
            "the end of a job's stdout, as text", _OBJ,
            params=[_HOST, _p("job_id", "Slurm job id"), _BYTES],
            errors=("400", "401", "404", "502"))},
        "/api/pipeline": {"get": _op(
            "stages (where each runs, its SLURM job), the current wave, the last pipeline error, "
            "a wave that could not be planned",
            {"type": "object", "properties": {
                "stages": {"type": "array", "items": _ref("PipelineStage")},
                "count": {"type": "integer"}, "wave": {"type": ["object", "null"]},
                "pipeline_error": {"type": ["object", "null"]},
                "plan_error": {"type": ["object", "null"]}}})},
        "/api/pipeline/stages/{stage}/log": {"get": _op(
            "the end of a stage's log, as text", _OBJ, params=[_p("stage", "stage name"), _BYTES],
            errors=("400", "401", "404"))},
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pivot ui",
            "version": "1",
            "description": "Job watchers and pipeline status. WebSockets (not in OpenAPI): "
            "/ws/watchers, /ws/watchers/{job_id}, /ws/pipeline with ?after=SEQ to resume "
            "(see docs/ui.md).",
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
