"""pivot's own files failing (``.pivot/events.db``, ``state.db``, ``run.lock``): one line.

When SQLite or the OS refuses one of pivot's own files, the exception says
little ("disk I/O error", "unable to open database file") and nothing of the
file. :func:`storage_error` turns such an exception and the file it concerns
into a :class:`StorageError` whose message says what is wrong, which file,
and what the user can do; commands print it as one line and exit 1 (see
``pivot.cli.store_access.store_errors``).

Four problems, told apart from the error and, where SQLite's code is vague
(``CANTOPEN``, ``READONLY``, ``IOERR``), by probing the directory:

* ``damaged``: not a SQLite file, or truncated (SQLite's ``NOTADB`` and
  ``CORRUPT``, or :func:`sqlite_file_problem`'s look at the header);
* ``full``: no space left (``ENOSPC``/``EDQUOT``, SQLite's ``FULL``, or an
  I/O error on a device with no free block);
* ``unwritable``: the directory or file refuses writes (``chattr +i``,
  permissions, a read-only mount). SQLite needs to write even to read a log
  in WAL mode (its ``-shm`` file), so this concerns reading commands too;
* ``io``: any other I/O error.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

__all__ = ["StorageError", "describe", "sqlite_file_problem", "storage_error"]


class StorageError(RuntimeError):
    """One of pivot's own files cannot be used; the message says which and what to do."""


# Primary SQLite result codes (the low byte of an extended code).
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 3, 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 13, 14, 26

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_UNWRITABLE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}


def sqlite_file_problem(path: Path) -> str:
    """Why the SQLite file at ``path`` is visibly damaged ("" if it looks whole or is absent).

    Cheap (one ``stat`` and a read-only SQLite connection that reads the
    header) so every open can afford it. It catches what SQLite itself lets
    through: a file cut inside a page, whose missing bytes SQLite reads as
    zeros (rows then decode as garbage, or a count over them is silently
    short). A file cut at a page boundary SQLite reports as malformed by
    itself. With a non-empty ``-wal`` beside it the main file may
    legitimately lag (a checkpoint in progress): not judged.

    Never ``open()`` the file directly: closing any descriptor of a file
    drops every POSIX lock this process holds on it, so a store already open
    in this process would lose its locks, and another process's last
    connection would then checkpoint and delete the ``-wal`` that this one is
    still writing (see docs/solutions/closing-a-db-file-drops-sqlite-locks.md).
    SQLite's own connections share their descriptors' locks safely.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return ""  # absent or unreadable: SQLite's own error says more
    if size == 0:
        return ""
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True)
    except sqlite3.Error:
        return ""
    try:
        conn.execute("PRAGMA schema_version")  # reads and checks the header
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        return "not a SQLite database" if code == _SQLITE_NOTADB else ""
    finally:
        conn.close()
    if size % page:
        wal = path.with_name(path.name + "-wal")
        if not (wal.is_file() and wal.stat().st_size > 0):
            return f"truncated: {size} bytes is not a whole number of {page}-byte pages"
    return ""


def _root_cause(exc: BaseException) -> BaseException:
    """The sqlite3 or OS error under wrappers (eventsourcing re-raises sqlite3's)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, sqlite3.Error | OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return exc


def _probe(path: Path) -> OSError | None:
    """Whether pivot can write next to (and into) ``path``: the OS error if not."""
    folder = path.parent
    probe = folder / f".pivot-write-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            probe.unlink()
    except OSError as exc:
        return exc
    # access(2), not open(2): closing a descriptor of the file would drop the
    # POSIX locks of this process's SQLite connections to it.
    if path.exists() and not os.access(path, os.W_OK):
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    return None


def _no_free_space(folder: Path) -> bool:
    try:
        info = os.statvfs(folder)
    except OSError:
        return False
    return info.f_bavail == 0 or info.f_favail == 0


def _os_problem(exc: OSError) -> str:
    if exc.errno in _FULL_ERRNOS:
        return "full"
    if exc.errno in _UNWRITABLE_ERRNOS:
        return "unwritable"
    return "io" if exc.errno == errno.EIO else ""


def _sqlite_problem(exc: sqlite3.Error, path: Path) -> tuple[str, str]:
    reason = str(exc)
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if code in {_SQLITE_NOTADB, _SQLITE_CORRUPT}:
        return "damaged", reason
    if code == _SQLITE_FULL:
        return "full", reason
    if code not in {_SQLITE_CANTOPEN, _SQLITE_READONLY, _SQLITE_PERM, _SQLITE_IOERR}:
        return "", reason  # e.g. "database is locked": not a storage failure
    # SQLite does not say why it could not open or write: ask the OS.
    refused = _probe(path)
    if refused is not None:
        return _os_problem(refused) or "io", refused.strerror or str(refused)
    if _no_free_space(path.parent):
        return "full", reason
    return ("io" if code == _SQLITE_IOERR else "unwritable"), reason


def _classify(exc: BaseException, path: Path) -> tuple[str, str]:
    """``(problem, reason)`` for ``exc`` about ``path``; problem "" when not a storage failure."""
    cause = _root_cause(exc)
    if isinstance(cause, sqlite3.Error):
        return _sqlite_problem(cause, path)
    if isinstance(cause, OSError):
        return _os_problem(cause), cause.strerror or str(cause)
    return "", str(exc)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it (``.pivot/events.db``)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def describe(problem: str, reason: str, path: Path, what: str) -> str:
    """The one line for ``problem`` (see the module docstring) with ``path``, ``what`` it holds."""
    p = _shown(path)
    folder = _shown(path.parent)
    if problem == "damaged":
        if path.name == "state.db":
            then = "pivot rebuilds it from the event log"
        else:
            then = "pivot starts a new log (the stages' skip records in state.db are kept)"
        return f"{what} {p} is damaged ({reason}): move it aside (mv {p} {p}.broken) and {then}"
    if problem == "full":
        return (
            f"no space left on the device of {what} {p} ({reason}): the run stopped; free "
            "space and run again (it records the stopped wave as interrupted)"
        )
    if problem == "unwritable":
        return (
            f"cannot write in {folder} ({reason}), where pivot keeps {what} {p}: make it "
            f"writable (see `lsattr -d {folder}`, `ls -ld {folder}` and the mount) and run again"
        )
    return f"disk I/O error on {what} {p} ({reason}): check the disk and its free space"


def storage_error(
    exc: BaseException, path: str | os.PathLike[str], what: str
) -> StorageError | None:
    """A :class:`StorageError` for ``exc`` raised using ``path``, or None if it is not one.

    ``what`` names the file for the user ("the event log", "the stage
    records"). Lock contention ("database is locked") and programming errors
    are not storage failures: None, and the caller re-raises.
    """
    if isinstance(exc, StorageError):
        return exc
    file = Path(path)
    problem, reason = _classify(exc, file)
    if not problem:
        return None
    return StorageError(describe(problem, reason, file, what))
