"""The literal prefilter finds exactly what plain RE2 finds, line by line.

Random patterns (literal text, classes, escapes, alternations, groups,
repetitions, anchors, case-insensitive flags) over random lines that mix in
the letters Unicode case folding treats specially (the Kelvin sign folds to
``k``, the long s to ``s``, ``É`` to ``é``).
"""

from __future__ import annotations

from typing import Any

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivot.jobs.literals import required_literals
from pivot.jobs.patterns import PatternError, compile_pattern

WORDS = ["ab", "Err", "OR", "kS", "loss=", "epoch", "é", "x.y", " ", "=", "Ab"]
ATOMS = [
    r"\.",
    r"\=",
    r"\d",
    r"\w+",
    r"\s",
    ".",
    "[a-c]",
    "[^x]",
    "[[:alpha:]]",
    r"[\]a]",
    "^",
    "$",
    r"\b",
    r"\Qx.y\E",
    r"\x41",
    r"\x{e9}",
    r"\pL",
    r"\p{Greek}",
]
LINE_PIECES = [
    *WORDS,
    "ERR",
    "err",
    "or",
    "K",
    "\u212a",  # KELVIN SIGN: (?i)k matches it
    "s",
    "\u017f",  # LATIN SMALL LETTER LONG S: (?i)s matches it
    "É",
    "A",
    "1",
    "42",
    ".",
    "\r",
    "\u03b1",  # Greek alpha: \pL and \p{Greek}
]


def _patterns() -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(WORDS), st.sampled_from(ATOMS))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        quant = st.sampled_from(["*", "+", "?", "{1,2}", "{0,1}", "{2}", "+?", "*?"])
        return st.one_of(
            st.lists(inner, min_size=2, max_size=4).map("".join),
            st.lists(inner, min_size=2, max_size=3).map("|".join),
            inner.map(lambda p: f"({p})"),
            inner.map(lambda p: f"(?:{p})"),
            inner.map(lambda p: f"(?P<g>{p})"),
            inner.map(lambda p: f"(?i:{p})"),
            inner.map(lambda p: f"(?i){p}"),
            inner.map(lambda p: f"(?i)(?-i:{p})"),
            st.tuples(inner.map(lambda p: f"(?:{p})"), quant).map("".join),
        )

    return st.recursive(leaf, extend, max_leaves=8)


def _lines() -> st.SearchStrategy[list[str]]:
    line = st.lists(st.sampled_from(LINE_PIECES), max_size=8).map("".join)
    return st.lists(line, min_size=1, max_size=12)


def _reference(
    source: str, chunk: bytes, skip: tuple[bytes, ...]
) -> list[tuple[str, tuple[Any, ...]]]:
    """Plain RE2, one line at a time, with the scan's own-source-text rule."""
    regexp = re2.compile(source.encode())
    out = []
    for raw in chunk.split(b"\n"):
        line = raw.rstrip(b"\r")
        if any(lit in line for lit in skip):
            continue
        m = regexp.search(line)
        if m is not None:
            groups = tuple((g or b"").decode() for g in m.groups())
            out.append((m.group(0).decode(), groups))
    return out


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=_patterns(), lines=_lines())
def test_prefiltered_scan_equals_plain_re2(source: str, lines: list[str]) -> None:
    try:
        pattern = compile_pattern(source)
    except PatternError:
        return  # the grammar can build what RE2 refuses (e.g. nothing to repeat)
    chunk = "\n".join(lines).encode()
    expected = _reference(source, chunk, pattern._literals)
    got = [(m.whole, m.groups) for m in pattern.scan(chunk)]
    assert got == expected
    # The analysis itself: every line RE2 matches holds one of the literals.
    pf = pattern.prefilter
    if pf is not None:
        regexp = re2.compile(source.encode())
        for raw in chunk.split(b"\n"):
            if regexp.search(raw.rstrip(b"\r")) is not None:
                hay = raw.lower() if pf.fold else raw
                assert any(lit in hay for lit in pf.literals) or (pf.fold and not raw.isascii())


@pytest.mark.parametrize(
    ("source", "literals", "fold"),
    [
        (
            "(CUDA out of memory|OutOfMemoryError)",
            {b"CUDA out of memory", b"OutOfMemoryError"},
            False,
        ),
        ("epoch ([0-9]+) loss=([0-9.]+)", {b" loss="}, False),
        ("^ERROR .*timeout$", {b"ERROR "}, False),
        ("colou?r", {b"color", b"colour"}, False),
        ("(?i)nan loss", {b"nan loss"}, True),
        ("(?i:Err)OR x", {b"error x"}, True),
        (r"\Qa.b*\E", {b"a.b*"}, False),
        (r"(abc)+d", {b"abc"}, False),
        ("[[:alpha:]]+ value=", {b" value="}, False),
    ],
)
def test_required_literals_of_typical_patterns(
    source: str, literals: set[bytes], fold: bool
) -> None:
    pf = required_literals(source)
    assert pf is not None
    assert (set(pf.literals), pf.fold) == (literals, fold)


@pytest.mark.parametrize(
    "source",
    [
        r"\d+",  # no literal text at all
        "abc|[0-9]+",  # one branch without a literal
        "(abc)?x+",  # the literal is optional
        "ab",  # too short to beat RE2's own chunk scan
        "(?i)ééé",  # under (?i) a non-ASCII character is not literal text
        "x{",  # a brace RE2 reads as text: the analysis does not guess
        r"\101bc",  # octal escape: not modelled
    ],
)
def test_no_literal_where_none_is_safe(source: str) -> None:
    assert required_literals(source) is None


def test_case_insensitive_prefilter_on_non_ascii_chunk_falls_back() -> None:
    # (?i)k matches the Kelvin sign; a lower-cased byte search would miss it.
    p = compile_pattern("(?i)kelvin=([0-9]+)")
    assert p.prefilter is not None and p.prefilter.fold
    chunk = "\u212aelvin=3\nKELVIN=4\nnothing".encode()
    assert [m.groups for m in p.scan(chunk)] == [("3",), ("4",)]
