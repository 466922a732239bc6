"""Tailing decisions: partial lines, long lines, truncation and replacement."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pivot.jobs.tail import (
    FileStat,
    Position,
    chunk_length,
    head_digest,
    head_matches,
    job_has_output,
    plan_read,
    remember_head,
    split_lines,
)


def test_partial_line_waits_for_its_newline() -> None:
    s = split_lines(b"", b"epoch 1 loss=0.5\nepoch 2 lo")
    assert (s.lines_blob, s.line_count, s.consumed, s.partial) == (
        b"epoch 1 loss=0.5",
        1,
        17,
        b"epoch 2 lo",
    )
    s2 = split_lines(s.partial, b"ss=0.25\n")
    assert (s2.lines_blob, s2.consumed, s2.partial) == (b"epoch 2 loss=0.25", 18, b"")


def test_no_newline_at_all_keeps_everything() -> None:
    s = split_lines(b"abc", b"def")
    assert (s.line_count, s.consumed, s.partial) == (0, 0, b"abcdef")


def test_very_long_line_is_cut_and_memory_stays_bounded() -> None:
    s = split_lines(b"", b"x" * 100, max_line=10)
    assert (s.lines_blob, s.line_count, s.partial, s.skipping, s.consumed) == (
        b"x" * 10,
        1,
        b"",
        True,
        100,
    )
    s = split_lines(s.partial, b"y" * 50, skipping=s.skipping, max_line=10)
    assert (s.line_count, s.partial, s.consumed) == (0, b"", 50)
    s = split_lines(s.partial, b"zz\nnext\n", skipping=s.skipping, max_line=10)
    assert (s.lines_blob, s.line_count, s.skipping) == (b"next", 1, False)


def test_long_lines_inside_a_chunk_are_cut() -> None:
    s = split_lines(b"", b"short\n" + b"L" * 30 + b"\nend\n", max_line=8)
    assert s.lines_blob.split(b"\n") == [b"short", b"L" * 8, b"end"]


@given(st.lists(st.binary(max_size=40), max_size=20), st.data())
def test_any_split_of_the_stream_gives_the_same_lines(
    chunks: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(chunks)
    expected = stream.split(b"\n")[:-1]  # complete lines only
    # Re-cut the stream at arbitrary points: a poll sees whatever was written.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    partial, got, consumed = b"", [], 0
    for piece in pieces:
        s = split_lines(partial, piece)
        if s.line_count:
            got.extend(s.lines_blob.split(b"\n"))
        partial = s.partial
        consumed += s.consumed
    assert got == expected
    assert consumed + len(partial) == len(stream)


def _pos(**kw: object) -> Position:
    base = {"path": "/o", "offset": 100, "inode": 7, "head_len": 20, "size": 100, "mtime": 1.0}
    base["head_hash"] = head_digest(b"h" * 20)
    base.update(kw)
    return Position(**base)  # type: ignore[arg-type]


def test_unchanged_file_is_not_read() -> None:
    assert plan_read(_pos(), FileStat(inode=7, size=100, mtime=1.0)) is None


def test_growth_reads_from_offset_checking_the_head() -> None:
    plan = plan_read(_pos(), FileStat(inode=7, size=150, mtime=2.0))
    assert plan is not None
    assert (plan.start, plan.check_head, plan.reset_reason) == (100, True, "")


def test_new_inode_is_a_replacement_even_if_larger() -> None:
    plan = plan_read(_pos(), FileStat(inode=8, size=5000, mtime=2.0))
    assert plan is not None
    assert (plan.start, plan.reset_reason) == (0, "replaced (new inode)")


def test_shrinking_is_truncation() -> None:
    plan = plan_read(_pos(), FileStat(inode=7, size=10, mtime=2.0))
    assert plan is not None
    assert plan.reset_reason == "truncated"


def test_same_size_rewrite_is_caught_by_the_head() -> None:
    pos = _pos()
    plan = plan_read(pos, FileStat(inode=7, size=100, mtime=3.0))
    assert plan is not None and plan.check_head
    assert head_matches(pos, b"h" * 20 + b"more")
    assert not head_matches(pos, b"H" + b"h" * 19)
    assert not head_matches(pos, b"h" * 5)  # now shorter than the remembered head


def test_head_grows_up_to_the_limit() -> None:
    pos = Position(path="/o")
    pos = remember_head(pos, b"abc")
    assert pos.head_len == 3
    assert remember_head(pos, b"ab") == pos
    pos = remember_head(pos, b"x" * 5000)
    assert pos.head_len == 1024


def test_a_remote_read_asks_for_what_the_stat_says_is_there() -> None:
    assert chunk_length(100, 3100, 1 << 20) == 3000  # what the stat says grew
    assert chunk_length(0, 5 << 20, 1 << 20) == 1 << 20  # at most a chunk
    assert chunk_length(100, 100, 1 << 20) == 0  # nothing new (touched only)


def test_a_job_waiting_to_start_has_no_output_of_its_own() -> None:
    # Slurm opens (truncates) the files when the job starts: before, they are another job's.
    assert [job_has_output(s) for s in ("pending", "PENDING", "configuring")] == [False] * 3
    started = ("running", "completing", "suspended", "completed", "failed", "cancelled", "")
    assert all(job_has_output(s) for s in started)
