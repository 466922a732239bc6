"""A second look at an open log never costs the first one its locks.

POSIX locks belong to a process and a file: closing *any* descriptor of the
file drops all of them. When pivot opened ``events.db`` with a plain
``open()`` (to check its header) while a store on it was open in the same
process, that store lost its locks; another process closing its last
connection then checkpointed and deleted the ``-wal`` the first store was
still appending to, and those events were lost (``pivot watch`` lost a
whole wave this way after a ``pivot run`` in another terminal ended).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pivot.events.pipeline import WaveFinished
from pivot.events.store import EventStore
from pivot.storage import sqlite_file_problem, storage_error

APPEND = """
import sys
from pivot.events.pipeline import WaveFinished
from pivot.events.store import EventStore
with EventStore.open(sys.argv[1]) as s:
    s.append([WaveFinished(wave_id=sys.argv[2], succeeded=0, failed=0, duration=0.0)])
"""

COUNT = """
import sys
from pivot.events.store import EventStore
with EventStore.open(sys.argv[1]) as s:
    print(sum(1 for _ in s.read()))
"""


def _python(code: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=True
    )
    return proc.stdout.strip()


def _wave(name: str) -> WaveFinished:
    return WaveFinished(wave_id=name, succeeded=0, failed=0, duration=0.0)


def test_events_appended_after_another_process_closes_the_log_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore.open(path) as mine:
        mine.append([_wave("first")])
        # Everything that looks at the file again in this process while the store is open:
        sqlite_file_problem(path)
        storage_error(OSError(5, "Input/output error"), path, "the event log")
        EventStore.open(path).close()
        # Another process writes and closes its last connection.
        _python(APPEND, str(path), "theirs")
        mine.append([_wave("second")])
        # Seen by a third process while this store is still open.
        assert _python(COUNT, str(path)) == "3"
    assert _python(COUNT, str(path)) == "3"
