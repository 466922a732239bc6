"""Finding a pattern's required literals in a chunk of output, rarest byte first.

``bytes.find`` of a literal is a Horspool or two-way search: 1.2 to 4 GB/s
here, slowest when the literal's last byte is common (`` loss=``,
``ERROR ``), and one such pass per literal of an alternation. ``bytes.find``
of a single byte is ``memchr``: about 25 GB/s. So a literal is searched for
through a *probe*, one of its rarest bytes (by a fixed ranking of how often
bytes appear in job output), and each occurrence of the probe is checked
against the whole literal with ``startswith``.

A byte the ranking thought rare can be common in a given log (``=`` in a
training log that prints ``loss=... lr=...`` on every line, ``y`` in one
that prints ``sync``). Each false hit costs a round trip through the
interpreter, so once misses come more often than a plain search would cost
(:func:`within_budget`: one per 2 KiB searched, after a few free ones) the
search moves on to the next rarest byte of the literal (:data:`PROBES` of
them), and after the last to ``bytes.find`` of the literal for the rest of
the chunk. The worst case is thus about the plain search; the common case is
a memchr pass. A :class:`ProbeMemory` carries the probe that worked from one
chunk of a log to the next.

Case-insensitive literals (``Prefilter.fold``) are lower case and only
searched in ASCII chunks (see :mod:`pivot.jobs.literals`): a letter probe is
found in either case and the candidate compared lower-cased, so the chunk is
lower-cased (a copy at 1.2 GB/s) only if the plain fallback is taken.

:meth:`LiteralSearch.find_from` answers exactly what ``bytes.find`` answers
on the chunk (or its lower-cased copy); ``tests/jobs/test_jobs_literal_search.py``
checks that on random chunks dense enough in probe bytes to cross every switch.
"""

from __future__ import annotations

from collections.abc import Iterator

from pivot.jobs.literals import Prefilter

__all__ = [
    "PROBES",
    "LiteralSearch",
    "ProbeMemory",
    "lines_containing",
    "probes",
    "within_budget",
]

# Bytes of job output from commonest to rarest, as far as it matters for picking
# a probe: the space, lower case in English frequency order, digits, the
# punctuation of numbers, paths and key=value pairs, non-ASCII (UTF-8 text),
# upper case; everything not listed (control bytes, rarer punctuation) rarest.
_COMMON_FIRST = (
    b" etaoinsr0123456789hldcumfpgwybvkxjqz.:-,=_/()[]'\""
    + bytes(range(0x80, 0x100))
    + b"ETAOINSRHLDCUMFPGWYBVKXJQZ+*<>#%!?;&@$^|~`{}\\"
)
_RANK = [len(_COMMON_FIRST)] * 256  # higher: rarer
for _i, _b in enumerate(_COMMON_FIRST):
    _RANK[_b] = _i

PROBES = 3  # bytes of a literal tried as probe before the plain search

# A false hit of the probe costs about 0.3 us in the interpreter; a plain find
# 0.25-0.8 ms per MiB. Allowing one miss per 2 KiB searched keeps a probe's
# worst case at or below the plain find's cost; a few are free at the start.
_FREE_MISSES = 16
_BYTES_PER_MISS = 2048


def probes(text: bytes) -> tuple[int, ...]:
    """Indexes in ``text`` of the bytes to look for, rarest first (the last occurrence of each).

    A case-insensitive literal is lower case, and its letters are looked for
    in both cases: their lower-case rank (the commoner case) is the right one.
    """
    last = {b: i for i, b in enumerate(text)}
    return tuple(sorted(last.values(), key=lambda i: (_RANK[text[i]], i), reverse=True)[:PROBES])


def within_budget(misses: int, searched: int) -> bool:
    """Whether ``misses`` false hits over ``searched`` bytes still pay for themselves."""
    return misses <= _FREE_MISSES + searched // _BYTES_PER_MISS


class ProbeMemory:
    """Which probe of each literal to start with: the one that last held up in this log.

    Owned by one compiled pattern; shared use from several threads can only
    cost speed (a stale choice), never a wrong answer.
    """

    __slots__ = ("start",)

    def __init__(self, literals: int) -> None:
        self.start = [0] * literals


class _Chunk:
    """A chunk and, made on first use, its lower-cased copy (shared by a pattern's literals)."""

    __slots__ = ("_lower", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._lower: bytes | None = None

    def lower(self) -> bytes:
        if self._lower is None:
            self._lower = self.data.lower()
        return self._lower


class LiteralSearch:
    """Successive occurrences of one literal in one chunk, found through a probe byte."""

    __slots__ = (
        "_at",
        "_cases",
        "_chunk",
        "_fold",
        "_k",
        "_memory",
        "_misses",
        "_off",
        "_one",
        "_probes",
        "_since",
        "_slot",
        "_text",
    )

    def __init__(
        self,
        chunk: bytes | _Chunk,
        text: bytes,
        *,
        fold: bool,
        memory: ProbeMemory | None = None,
        slot: int = 0,
    ) -> None:
        self._chunk = chunk if isinstance(chunk, _Chunk) else _Chunk(chunk)
        self._text = text
        self._fold = fold
        self._probes = probes(text)
        self._memory, self._slot = memory, slot
        start = memory.start[slot] if memory is not None else 0
        self._use(start if 0 <= start < len(self._probes) else 0, since=0)

    def _use(self, k: int, *, since: int) -> None:
        """Search through probe ``k`` from ``since`` on (``k == len(probes)``: plain search)."""
        self._k, self._since, self._misses = k, since, 0
        if self._memory is not None:
            self._memory.start[self._slot] = 0 if k == len(self._probes) else k
        if k == len(self._probes):
            return
        self._off = self._probes[k]
        b = self._text[self._off]
        self._at = [-2, -2]  # next occurrence of each case (-2: not looked for yet)
        if self._fold and 0x61 <= b <= 0x7A:  # a letter, looked for in both cases
            self._one: bytes | None = None
            self._cases = (bytes([b]), bytes([b - 0x20]))
        else:
            self._one = bytes([b])

    @property
    def probe(self) -> int | None:
        """The index in the literal of the probe in use; None once on the plain search."""
        return None if self._k == len(self._probes) else self._off

    def find_from(self, pos: int) -> int:
        """The first index ``>= pos`` where the literal starts, or -1 (``bytes.find``'s answer).

        ``pos`` never decreases from one call to the next (positions are cached).
        """
        text, fold = self._text, self._fold
        while self._k < len(self._probes):
            data, off, one = self._chunk.data, self._off, self._one
            # No match starts between pos and (the first probe at or after
            # pos + off) - off: its probe byte would be in between.
            hit = data.find(one, pos + off) if one is not None else self._either(data, pos + off)
            if hit < 0:
                return -1
            start = hit - off
            if (
                data[start : start + len(text)].lower() == text
                if fold
                else data.startswith(text, start)
            ):
                return start
            pos = start + 1
            self._misses += 1
            if not within_budget(self._misses, start - self._since):
                self._use(self._k + 1, since=pos)
        return (self._chunk.lower() if fold else self._chunk.data).find(text, pos)

    def _either(self, data: bytes, want: int) -> int:
        """The first occurrence of the probe letter, in either case, at or after ``want``."""
        at = self._at
        for k in (0, 1):
            if at[k] == -2 or -1 < at[k] < want:  # -1 stays: none left after an earlier point
                at[k] = data.find(self._cases[k], want)
        lo, hi = at
        return hi if lo < 0 else lo if hi < 0 else min(lo, hi)


def lines_containing(
    chunk: bytes, prefilter: Prefilter, memory: ProbeMemory | None = None
) -> Iterator[bytes]:
    """Each line of ``chunk`` holding one of the prefilter's literals, in order, ``\\r`` stripped.

    With ``prefilter.fold`` the chunk must be ASCII (Unicode case folding is
    not byte-wise). ``memory`` (one slot per literal) carries each literal's
    working probe over to the next chunk of the same log.
    """
    shared = _Chunk(chunk)
    searches = [
        LiteralSearch(shared, lit, fold=prefilter.fold, memory=memory, slot=i)
        for i, lit in enumerate(prefilter.literals)
    ]
    find, rfind = chunk.find, chunk.rfind
    end = len(chunk)
    pos = 0
    if len(searches) == 1:  # the common case, without the bookkeeping of several
        find_from = searches[0].find_from
        at = find_from(0)
        while at >= 0:
            nl = rfind(b"\n", pos, at)  # pos is a line start: look no further back
            line_end = find(b"\n", at)
            if line_end < 0:
                line_end = end
            yield chunk[pos if nl < 0 else nl + 1 : line_end].rstrip(b"\r")
            pos = line_end + 1
            at = find_from(pos)
        return
    nxt = [s.find_from(0) for s in searches]
    while True:
        at = min((a for a in nxt if a >= 0), default=-1)
        if at < 0:
            return
        nl = rfind(b"\n", pos, at)
        line_end = find(b"\n", at)
        if line_end < 0:
            line_end = end
        yield chunk[pos if nl < 0 else nl + 1 : line_end].rstrip(b"\r")
        pos = line_end + 1
        nxt = [
            a if a < 0 or a >= pos else s.find_from(pos) for a, s in zip(nxt, searches, strict=True)
        ]
