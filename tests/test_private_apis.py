"""Every use of a library's private API, each failing loudly if the library changes.

pivot keeps six such uses, each with a measured reason and behind one small
module (docs/dependencies.md lists them with the figures). Each module
degrades quietly at run time if the library moves (commands only slower,
help only noisier); these tests are where the move is noticed, with a message
naming the module to revisit:

- typer: ``pivot.cli.fast_coercion`` (pydantic kept out of start-up) and
  ``pivot.cli.help_format`` (help text without type noise);
- watchfiles: ``pivot.watch.rust_notify`` (a notifier that is live when built);
- eventsourcing: ``pivot.events.backend_sqlite`` (one ``executemany`` per batch);
- google-re2: ``pivot.jobs.patterns`` (every group's span in one call);
- loky: ``pivot.pipeline.spawn`` (workers born in a session of their own) and
  the executor's ``_processes`` (the worker pids whose trees are killed).
"""

from __future__ import annotations

import inspect
import os
import threading
import time
import uuid
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest


def _moved(library: str, module: str, what: str) -> str:
    return (
        f"{library} {version(library)} changed {what}: {module} relies on it; "
        f"see that module's docstring and docs/dependencies.md"
    )


def _params(func: Callable[..., Any]) -> list[str]:
    return [
        ("**" if p.kind is p.VAR_KEYWORD else "") + p.name
        for p in inspect.signature(func).parameters.values()
    ]


# typer ---------------------------------------------------------------------


def test_typer_runtime_coercion_is_where_fast_coercion_defers_it() -> None:
    msg = _moved("typer", "src/cli/fast_coercion.py", "its per-parameter coercion")
    try:
        from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
        from typer.core import _TyperParameter
    except ImportError as exc:
        pytest.fail(f"{msg} ({exc})")
    assert {"parameter_info", "annotation"} <= set(RuntimeParam.__dataclass_fields__), msg
    assert _params(RuntimeParam._coerce_value)[:4] == ["self", "value", "param", "ctx"], msg
    assert callable(build_runtime_param) and TypeDescriptor is not None, msg
    assert callable(getattr(_TyperParameter, "get_runtime_param", None)), msg
    source = inspect.getsource(_TyperParameter)
    assert "_runtime_param" in source and "type_descriptor" in source, msg

    from pivot.cli import fast_coercion

    fast_coercion.install()
    assert getattr(_TyperParameter, "_pivot_lazy_coercion", False), msg


def test_typer_help_rendering_is_where_help_format_replaces_it() -> None:
    msg = _moved("typer", "src/cli/help_format.py", "its help rendering")
    try:
        from typer.core import TyperArgument, _TyperParameter
    except ImportError as exc:
        pytest.fail(f"{msg} ({exc})")
    for name in ("_usage_display_name", "_rich_display_name", "display_type"):
        assert hasattr(TyperArgument, name), f"{msg} (TyperArgument.{name})"

    from pivot.cli import help_format

    help_format.install()
    assert getattr(_TyperParameter, "_pivot_help_format", False), msg


# watchfiles ----------------------------------------------------------------


def test_rust_notify_is_live_when_built_and_reports_as_expected(tmp_path: Path) -> None:
    msg = _moved("watchfiles", "src/watch/rust_notify.py", "RustNotify")
    from pivot.watch.rust_notify import RustNotify, open_notify

    assert callable(getattr(RustNotify, "watch", None)), msg
    notify = open_notify([str(tmp_path)], recursive=False)
    try:
        # Written right after the constructor returned, before watch() is first called.
        (tmp_path / "new.txt").write_text("x")
        stop = threading.Event()
        got: object = "timeout"
        deadline = time.monotonic() + 30
        while got == "timeout" and time.monotonic() < deadline:
            got = notify.watch(50, 2, 500, stop)
        assert isinstance(got, set), f"{msg} (watch() returned {got!r})"
        assert any(isinstance(kind, int) and Path(path).name == "new.txt" for kind, path in got), (
            f"{msg} (changes {got!r})"
        )
        assert notify.watch(50, 2, 100, stop) == "timeout", msg
        stop.set()
        assert notify.watch(50, 2, 100, stop) == "stop", msg
    finally:
        notify.close()


def test_the_public_watch_still_misses_what_changes_before_its_first_step(
    tmp_path: Path,
) -> None:
    """The reason for the private API: when this fails, watchfiles.watch() can replace it."""
    import watchfiles

    changes = watchfiles.watch(tmp_path, rust_timeout=300, yield_on_timeout=True, debounce=50)
    (tmp_path / "early.txt").write_text("x")  # the generator has not started watching yet
    try:
        assert next(changes) == set(), (
            f"watchfiles {version('watchfiles')}.watch() now sees a change made before its "
            "first step: src/watch/rust_notify.py could use the public API instead"
        )
    finally:
        changes.close()


# google-re2 ----------------------------------------------------------------


def test_re2_raw_match_gives_every_group_span_as_the_wrapper_does() -> None:
    msg = _moved("google-re2", "src/jobs/patterns.py", "re2._re2.RE2.Match")
    import re2

    try:
        from re2 import _re2

        unanchored = _re2.RE2.Anchor.UNANCHORED
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{msg} ({exc})")
    from pivot.jobs.patterns import compile_pattern

    for source, line in [
        (r"epoch ([0-9]+) loss=([0-9.]+)", b"x epoch 12 loss=0.5 lr=1"),
        (r"(a)|(b)", b"zzb"),  # an unset group: (-1, -1)
        (r"(?P<n>\d+)?x", b"x"),
        (r"\d+", b"no digits"),
    ]:
        raw = _re2.RE2(source.encode(), re2.Options()).Match(unanchored, line, 0, len(line))
        m = re2.compile(source.encode()).search(line)
        expected = (
            [(-1, -1)] * (1 + source.count("("))
            if m is None
            else [m.span(i) for i in range(m.re.groups + 1)]
        )
        assert [tuple(span) for span in raw] == expected, f"{msg} ({source!r}: {raw})"
        got = compile_pattern(source).match_line(line)
        assert (got is None) == (m is None), msg


# eventsourcing -------------------------------------------------------------


def test_sqlite_recorder_still_inserts_through_insert_events(tmp_path: Path) -> None:
    msg = _moved("eventsourcing", "src/events/backend_sqlite.py", "SQLite inserts")
    from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder

    assert _params(SQLiteApplicationRecorder._insert_events) == [
        "self",
        "c",
        "stored_events",
        "**_",
    ], msg
    assert "self._insert_events(c, stored_events" in inspect.getsource(
        SQLiteAggregateRecorder.insert_events
    ), msg

    # And the override's answer is the rowids SQLite gave the batch.
    import sqlite3

    from pivot.events import EventStore
    from pivot.events.watchers import WatcherCreated

    db = tmp_path / "events.db"
    with EventStore.open(db) as store:
        seqs = [
            store.append(
                [
                    WatcherCreated(watcher_id=uuid.uuid4().hex, name=f"w{n}", job_id="1", at=1.0)
                    for n in range(size)
                ]
            )
            for size in (1, 3, 5)
        ]
    with sqlite3.connect(db) as conn:
        (table,) = (
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if "event" in row[0]
        )
        rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
    assert [s for batch in seqs for s in batch] == rowids, msg


# loky ----------------------------------------------------------------------


def test_loky_spawns_through_the_fork_exec_spawn_wraps() -> None:
    msg = _moved("loky", "src/pipeline/spawn.py", "how it starts workers")
    try:
        from loky.backend import fork_exec, popen_loky_posix
    except ImportError as exc:
        pytest.fail(f"{msg} ({exc})")
    assert _params(fork_exec.fork_exec)[:3] == ["cmd", "keep_fds", "env"], msg
    # Looked up at each spawn (so a wrapper installed later is used).
    assert "from .fork_exec import fork_exec" in inspect.getsource(popen_loky_posix.Popen), msg


def test_loky_workers_are_session_leaders_and_listed_in_processes() -> None:
    """spawn.install() takes effect, and ``_processes`` holds the live workers' pids."""
    from loky import ProcessPoolExecutor

    from pivot.pipeline import spawn

    assert spawn.install(), _moved("loky", "src/pipeline/spawn.py", "fork_exec")
    ex = ProcessPoolExecutor(max_workers=1)
    try:
        pid, sid = ex.submit(_pid_and_session).result(timeout=120)
        assert sid == pid, _moved("loky", "src/pipeline/spawn.py", "worker start-up")
        processes = getattr(ex, "_processes", None)
        assert isinstance(processes, dict) and pid in processes, _moved(
            "loky", "pipeline/local_executor.py", "ProcessPoolExecutor._processes"
        )
    finally:
        ex.shutdown(wait=True, kill_workers=True)


def _pid_and_session() -> tuple[int, int]:
    return os.getpid(), os.getsid(0)
