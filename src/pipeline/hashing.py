"""Content hashes of deps and outputs, with a fast path for files that did not change.

A file whose :func:`signature` (size, modification and status-change times in
nanoseconds, inode) matches the cache entry keeps its cached hash and is not
read. The status-change time (ctime) is the kernel's: a rewrite that puts the
old mtime back (``cp -p``, ``touch -r``, an archive or a backup restored) still
changes it, and a file replaced by a rename has a new inode. Files changed in
the last two seconds are never cached (:func:`racy`): a second same-size edit
within one clock tick would otherwise go unseen, git's "racy clean" problem.
Any other file is read and
hashed (BLAKE2b); a FIFO, socket or device is a :class:`PipelineError` (reading one
could wait for ever). A directory's hash combines the relative paths and hashes of
every file below it, so adding, removing, renaming or editing any of them
changes it. Cache keys are project-relative POSIX paths.
"""

# The hot path of a no-op run: plain os calls on str paths, no Path objects.
# ruff: noqa: PTH116, PTH118, PTH123

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pivot.pipeline.errors import PipelineError

__all__ = [
    "LARGE_PARAM",
    "RACY_NS",
    "CacheEntry",
    "FileHasher",
    "Signature",
    "hash_bytes",
    "racy",
    "recorded_params",
    "signature",
]

Signature = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode
CacheEntry = tuple[int, int, int, int, str]  # the file's signature, then its content hash
RACY_NS = 2_000_000_000  # files younger than this are hashed but not cached


def signature(st: os.stat_result) -> Signature:
    """What must be unchanged for a cached result about a file to hold."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def racy(st: os.stat_result) -> bool:
    """Changed so recently (or dated in the future) that an edit in the same clock
    tick could keep its signature: a result about it must not be cached."""
    now = time.time_ns()
    return now - st.st_mtime_ns < RACY_NS or now - st.st_ctime_ns < RACY_NS


_CHUNK = 1 << 20


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def hash_bytes(data: bytes) -> str:
    """The hash pivot uses for a file holding ``data``."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


LARGE_PARAM = 1024  # bytes of JSON above which a param is recorded as a digest


def recorded_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as a stage's record and ``StageSucceeded`` keep them: large values as digests.

    A value whose JSON exceeds :data:`LARGE_PARAM` bytes becomes the string
    ``"<N bytes, digest HEX>"``: a change still shows (the digest differs),
    but ``state.db`` and the log do not hold a copy of it per run. Applying
    it twice changes nothing, so records written before this holds
    compare equal too.
    """
    out: dict[str, Any] = {}
    for name, value in params.items():
        text = json.dumps(value, sort_keys=True)
        if len(text) > LARGE_PARAM:
            data = text.encode()
            out[name] = f"<{len(data)} bytes, digest {hash_bytes(data)}>"
        else:
            out[name] = value
    return out


UNREADABLE = "unreadable"  # like no hash: stands for a path that cannot be hashed


class FileHasher:
    """Hashes project paths, reusing cached hashes of files that did not change."""

    def __init__(self, root: str | os.PathLike[str], cache: Mapping[str, CacheEntry]) -> None:
        self.root = Path(root)
        self._cache = dict(cache)
        self.dirty: dict[str, CacheEntry] = {}  # entries to write back
        self.read_files = 0  # how many files were actually read (for tests and bench)

    def hash(self, rel: str) -> str | None:
        """Hash of the file or directory at ``rel``; None when it does not exist."""
        full = os.path.join(self.root, rel)
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISDIR(st.st_mode):
            return self._dir(rel, full)
        if not stat.S_ISREG(st.st_mode):
            # Reading a FIFO waits for a writer for ever; a device never ends.
            raise PipelineError(
                f"{rel} is a {_kind(st.st_mode)}, not a regular file or directory: pivot "
                "reads every dep and output to hash it; make it a file (or leave it undeclared)"
            )
        return self._file(rel, full, st)

    def hashes(self, paths: Iterable[str]) -> dict[str, str | None]:
        """:meth:`hash` of each path."""
        return {p: self.hash(p) for p in paths}

    def hash_or_unreadable(self, rel: str) -> str | None:
        """:meth:`hash`, or :data:`UNREADABLE` for a path that cannot be read as a file or
        folder (a FIFO, no permission, removed while read): to compare, never for a record."""
        try:
            return self.hash(rel)
        except (PipelineError, OSError):
            return UNREADABLE

    def outputs(self, outs: Iterable[str]) -> tuple[dict[str, str | None], str]:
        """The hashes of a stage's outputs after it ran, and why they are not its outputs
        ("" when they are): the first not written, or that cannot be read as a file or folder
        (a FIFO, no permission, removed while read). Never raises: the stage fails instead."""
        hashes: dict[str, str | None] = {}
        for out in outs:
            try:
                hashes[out] = self.hash(out)
            except PipelineError as exc:
                return hashes, str(exc)
            except OSError as exc:
                return hashes, f"output {out} cannot be read: {exc.strerror or exc}"
            if hashes[out] is None:
                return hashes, f"declared output not written: {out}"
        return hashes, ""

    def _file(self, rel: str, full: str, st: os.stat_result) -> str:
        entry = self._cache.get(rel)
        if (
            entry is not None
            and entry[0] == st.st_size
            and entry[1] == st.st_mtime_ns
            and entry[2] == st.st_ctime_ns
            and entry[3] == st.st_ino
        ):
            return entry[4]
        h = hashlib.blake2b(digest_size=16)
        with open(full, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        self.read_files += 1
        digest = h.hexdigest()
        # A file changed in the last moments could change again within the same
        # clock tick at the same size: such an entry would hide that edit.
        if not racy(st):
            new = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, digest)
            self._cache[rel] = new
            self.dirty[rel] = new
        return digest

    def _dir(self, rel: str, full: str) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(b"dir\0")
        stack = [(rel, full)]
        entries: list[tuple[str, str]] = []
        while stack:
            r, f = stack.pop()
            with os.scandir(f) as it:
                for e in it:
                    child_rel, child_full = f"{r}/{e.name}", e.path
                    try:
                        st = os.stat(child_full)
                    except FileNotFoundError:
                        continue  # a dangling symlink, or removed while we walked
                    if stat.S_ISDIR(st.st_mode):
                        stack.append((child_rel, child_full))
                    elif stat.S_ISREG(st.st_mode):
                        entries.append(
                            (child_rel[len(rel) + 1 :], self._file(child_rel, child_full, st))
                        )
        for name, digest in sorted(entries):
            h.update(f"{name}\0{digest}\n".encode())
        return "d" + h.hexdigest()
