"""Patterns run on RE2: linear time, same results as a line-by-line loop."""

from __future__ import annotations

import re

import pytest

from pivot.jobs.patterns import PatternError, compile_pattern


def test_groups_named_and_positional() -> None:
    p = compile_pattern(r"epoch (\d+) loss=(?P<loss>[0-9.]+)")
    m = p.match_line(b"epoch 3 loss=0.25 done")
    assert m is not None
    assert (m.whole, m.groups, m.named) == ("epoch 3 loss=0.25", ("3", "0.25"), {"loss": "0.25"})
    assert p.group_count == 2


@pytest.mark.parametrize("source", [r"(a)\1", r"foo(?=bar)", r"(?<!x)y", "(", "a{2,1}", ""])
def test_unsupported_or_invalid_patterns_rejected(source: str) -> None:
    with pytest.raises(PatternError, match="invalid pattern"):
        compile_pattern(source)


def test_backreference_error_explains_re2() -> None:
    with pytest.raises(PatternError, match="linear time"):
        compile_pattern(r"(a)\1")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", [r"(a+)+$", r"(a|aa)*c", r"(x+x+)+y", r"(.*a){12}z"])
def test_catastrophic_patterns_finish(source: str) -> None:
    # With a backtracking engine each of these needs ~2**n steps on n characters;
    # 50,000 characters would never finish (the timeout is the failure).
    p = compile_pattern(source)
    line = b"a" * 25_000 + b"x" * 25_000 + b"!"
    assert list(p.scan(line)) == []


def test_chunk_scan_equals_line_by_line() -> None:
    lines = [
        b"epoch 1 loss=0.9",
        b"",
        b"noise CUDA out of memory noise",
        b"\xff\xfe invalid utf8 OutOfMemoryError",
        b"epoch 2 loss=0.4\r",
        b"OutOfMemoryError OutOfMemoryError",
        b"tail",
    ]
    chunk = b"\n".join(lines)
    for source in [r"(CUDA out of memory|OutOfMemoryError)", r"loss=([0-9.]+)", r"^$", r"^tail$"]:
        p = compile_pattern(source)
        expected = [m for raw in chunk.split(b"\n") if (m := p.match_line(raw.rstrip(b"\r")))]
        assert list(p.scan(chunk)) == expected, source


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    p = compile_pattern(r"value=(\S+)")
    [m] = list(p.scan(b"value=\xff\xfe!"))
    assert m.groups == ("\ufffd\ufffd!",)


def test_line_quoting_the_pattern_itself_is_not_a_match() -> None:
    # A job that prints its own script (with the watcher block) must not match.
    source = r"loss=([0-9.]+)"
    p = compile_pattern(source)
    script_line = b'# pattern: "' + source.replace("\\", "\\\\").encode() + b'"'
    assert list(p.scan(b"# pattern: " + source.encode())) == []
    assert list(p.scan(script_line)) == []
    assert [m.groups for m in p.scan(b"loss=0.5")] == [("0.5",)]


def test_literal_pattern_still_matches_its_own_text() -> None:
    p = compile_pattern("CUDA out of memory")
    assert [m.whole for m in p.scan(b"RuntimeError: CUDA out of memory.")] == ["CUDA out of memory"]


def test_python_re_agrees_on_simple_patterns() -> None:
    text = b"a1 b22 c333\nxyz\nb4"
    p = compile_pattern(r"b(\d+)")
    ours = [m.groups[0] for m in p.scan(text)]
    ref = [m.group(1).decode() for line in text.split(b"\n") if (m := re.search(rb"b(\d+)", line))]
    assert ours == ref


def test_empty_last_line_of_a_chunk_is_scanned() -> None:
    # A chunk of one empty line is b"" (split_lines drops the newline); "a\n" ends in one.
    p = compile_pattern("^$")
    assert [m.line for m in p.scan(b"")] == [""]
    assert [m.line for m in p.scan(b"a\n")] == [""]
    assert [m.line for m in p.scan(b"a")] == []


def test_crlf_lines_match_end_anchored_patterns() -> None:
    # A line is matched without its "\r"; the chunk scan's "$" would see it before "\n".
    for source in ["ab$", "^ERROR .*timeout$"]:
        p = compile_pattern(source)
        chunk = b"x ab\r\nERROR disk timeout\r\nab"
        expected = [m for raw in chunk.split(b"\n") if (m := p.match_line(raw.rstrip(b"\r")))]
        assert expected and list(p.scan(chunk)) == expected, source
