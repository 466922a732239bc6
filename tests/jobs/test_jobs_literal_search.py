"""The rare-byte literal search answers exactly what ``bytes.find`` answers.

Chunks are drawn from a small alphabet rich in the literal's own bytes (so the
probe byte hits often and the miss budget runs out, crossing into the plain
fallback mid-chunk), in both cases for case-insensitive literals. The scan
over a log cut into chunks at arbitrary points, through the tailer's
``split_lines``, finds exactly what plain RE2 finds line by line.
"""

from __future__ import annotations

import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivot.jobs.literal_search import (
    LiteralSearch,
    ProbeMemory,
    lines_containing,
    probes,
    within_budget,
)
from pivot.jobs.literals import Prefilter
from pivot.jobs.patterns import compile_pattern
from pivot.jobs.tail import split_lines

ALPHABET = b"abAB=x \n\r."


def _bytes(alphabet: bytes, max_size: int) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(list(alphabet)), max_size=max_size).map(bytes)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunk=st.one_of(_bytes(ALPHABET, 60), _bytes(ALPHABET, 5000)),
    text=_bytes(b"abAB=x .", 4).filter(bool),
    fold=st.booleans(),
    steps=st.lists(st.integers(min_value=0, max_value=50), max_size=40),
    first_probe=st.integers(min_value=0, max_value=3),
)
def test_find_from_is_bytes_find(
    chunk: bytes, text: bytes, fold: bool, steps: list[int], first_probe: int
) -> None:
    if fold:
        text = text.lower()
    hay = chunk.lower() if fold else chunk
    memory = ProbeMemory(1)
    memory.start[0] = first_probe  # what an earlier chunk left (3: past the last probe)
    search = LiteralSearch(chunk, text, fold=fold, memory=memory)
    pos = 0
    for step in [0, *steps]:
        pos += step
        assert search.find_from(pos) == hay.find(text, pos)
    # And through to the end, as lines_containing drives it.
    while (at := search.find_from(pos)) >= 0:
        assert at == hay.find(text, pos)
        pos = at + 1
    assert hay.find(text, pos) == -1


def test_a_common_probe_byte_gives_way_to_the_next_then_to_the_plain_search() -> None:
    # "=" is the rarest byte of " loss=" by the ranking, but here it is in
    # every field: its misses run past the budget and "l" takes over.
    line = b"a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8"
    chunk = b"\n".join([line] * 400 + [b"x loss=1"] + [line] * 10 + [b"loss=2"])
    text = b" loss="
    assert [text[i] for i in probes(text)] == list(b"=ls")
    memory = ProbeMemory(1)
    search = LiteralSearch(chunk, text, fold=False, memory=memory)
    first = search.find_from(0)
    assert first == chunk.find(text)
    assert search.probe == text.index(b"l")
    assert search.find_from(first + 1) == chunk.find(text, first + 1)
    # The next chunk of the same log starts with the probe that held up.
    assert memory.start == [1]
    assert LiteralSearch(chunk, text, fold=False, memory=memory).probe == text.index(b"l")
    # Every probe common: the plain search, and the next chunk tries the rarest again.
    noisy = b"\n".join([b"s=1 l=2 " * 4] * 400 + [b"x loss=1"])
    search = LiteralSearch(noisy, text, fold=False, memory=memory)
    assert search.find_from(0) == noisy.find(text)
    assert search.probe is None
    assert memory.start == [0]
    # The plain search resumes right after the last miss: "==" starts one byte
    # after the 17th miss of its only probe, the second "=".
    edge = b"a=" * 17 + b"="
    assert LiteralSearch(edge, b"==", fold=False).find_from(0) == edge.find(b"==") == 33
    # A probe that pays its way is kept.
    quiet = LiteralSearch(b"step\n" * 10_000 + b"loss=3", b"loss=", fold=False)
    assert quiet.find_from(0) == 50_000
    assert quiet.probe == 4


def test_probes_are_the_rarest_bytes_first() -> None:
    assert [b" loss="[i] for i in probes(b" loss=")] == list(b"=ls")
    assert [b"CUDA out"[i] for i in probes(b"CUDA out")] == list(b"UCD")
    # Lower case (case-insensitive literals): letters ranked by their lower case.
    assert [b"nan loss"[i] for i in probes(b"nan loss")] == list(b"lsn")


def test_budget_allows_a_miss_per_two_kib() -> None:
    assert within_budget(16, 0)
    assert not within_budget(17, 0)
    assert within_budget(16 + 512, 1 << 20)
    assert not within_budget(17 + 512, 1 << 20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(_bytes(b"abAB=x \r.", 30), max_size=200),
    literals=st.lists(_bytes(b"abAB=x .", 4).filter(bool), min_size=1, max_size=4),
    fold=st.booleans(),
)
def test_lines_containing_is_lines_with_a_literal(
    lines: list[bytes], literals: list[bytes], fold: bool
) -> None:
    pf = Prefilter(literals=tuple(lit.lower() if fold else lit for lit in literals), fold=fold)
    chunk = b"\n".join(lines)
    expected = [
        raw.rstrip(b"\r")
        for raw in chunk.split(b"\n")
        if any(lit in (raw.lower() if fold else raw) for lit in pf.literals)
    ]
    assert list(lines_containing(chunk, pf)) == expected


PATTERNS = [
    "(CUDA out of memory|OutOfMemoryError)",
    "epoch ([0-9]+) loss=([0-9.]+)",
    "^ERROR .*timeout$",
    "(?i)nan loss",
    "(?i)(error|warn)=([0-9]+)",
    "loss=(?P<loss>[0-9.]+)",
]
LOG_PIECES = [
    "epoch 3 loss=0.25",
    "RuntimeError: CUDA out of memory.",
    "OutOfMemoryError",
    "ERROR worker hit a timeout",
    "ERROR worker hit a timeout\r",
    "NaN Loss",
    "nan loss",
    "WARN=7",
    "error=12",
    "a=1 b=2 loss=",
    "\u212a\u017f é",
    "step data load",
    "",
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(PATTERNS),
    lines=st.lists(st.lists(st.sampled_from(LOG_PIECES), max_size=3).map(" ".join), max_size=60),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=30),
)
def test_scan_through_chunk_boundaries_equals_plain_re2(
    source: str, lines: list[str], cuts: list[int]
) -> None:
    """Chunks cut anywhere (inside a line, a UTF-8 character, a CRLF) give the RE2 answer."""
    log = "".join(line + "\n" for line in lines).encode()
    pattern = compile_pattern(source)
    regexp = re2.compile(source.encode())
    expected = [
        m.group(0).decode()
        for raw in log.split(b"\n")[:-1]
        if (m := regexp.search(raw.rstrip(b"\r"))) is not None
    ]
    got: list[str] = []
    partial, skipping, at = b"", False, 0
    for size in [*cuts, len(log)]:
        chunk, at = log[at : at + size], at + size
        split = split_lines(partial, chunk, skipping=skipping)
        partial, skipping = split.partial, split.skipping
        if split.has_lines:
            got.extend(m.whole for m in pattern.scan(split.lines_blob))
    assert partial == b""
    assert got == expected
