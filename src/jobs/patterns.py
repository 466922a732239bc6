"""Watcher patterns: RE2 (linear time, no catastrophic backtracking).

A pattern is compiled twice: once as written, applied to one line at a time,
and once in multi-line mode with ``never_nl`` to scan a whole chunk of output
in one call. The chunk scan only finds *candidate* lines (every line that has
a match contains the start of some chunk match, and the leftmost chunk match
starts no later than the first matching line); each candidate line is then
matched on its own, so results are exactly those of a line-by-line loop at a
fraction of the cost.

Before either, a literal prefilter (:mod:`pivot.jobs.literals`) finds the
lines holding a text every match must contain, with ``memchr`` of its rarest
byte over the whole chunk (:mod:`pivot.jobs.literal_search`); RE2 then only
sees those lines. Patterns without such a text
(``\\d+``, ``^$``) take the RE2 chunk scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import re2
from re2 import _re2

from pivot.jobs.literal_search import ProbeMemory, lines_containing
from pivot.jobs.literals import Prefilter, required_literals

__all__ = ["CompiledPattern", "LineMatch", "PatternError", "compile_pattern"]


_UNANCHORED = _re2.RE2.Anchor.UNANCHORED


class PatternError(ValueError):
    """A pattern RE2 cannot compile (backreferences, lookaround, syntax)."""


def _options(*, never_nl: bool) -> Any:
    opts = re2.Options()
    opts.log_errors = False  # RE2 would print to stderr; we raise a clear error instead
    opts.never_nl = never_nl
    return opts


class LineMatch(NamedTuple):
    """One matching line: the whole match, positional groups and named groups.

    A named tuple, not a frozen dataclass: one is built per matching line,
    and a frozen dataclass's ``__init__`` (a guarded ``__setattr__`` per
    field) cost as much as the RE2 match itself.
    """

    line: str
    whole: str
    groups: tuple[str, ...]
    named: dict[str, str]


class CompiledPattern:
    """A validated pattern that can scan bytes of job output."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._line = re2.compile(source.encode(), options=_options(never_nl=False))
            # The same regexp without the wrapper (re2's private _re2): one call
            # returns every group's span, ~6x cheaper than search() plus a call
            # per group (docs/dependencies.md; tests/test_private_apis.py).
            self._raw = _re2.RE2(source.encode(), _options(never_nl=False))
            self._scan = re2.compile(b"(?m)" + source.encode(), options=_options(never_nl=True))
        except re2.error as exc:
            raise PatternError(_explain(exc)) from None
        self.group_count: int = int(self._line.groups)
        self.group_names: dict[str, int] = {
            (k.decode() if isinstance(k, bytes) else str(k)): int(v)
            for k, v in dict(self._line.groupindex).items()
        }
        self._named = tuple(self.group_names.items())
        # \A and \z mean "start/end of text": only a per-line loop keeps their meaning.
        self._chunk_scan_ok = "\\A" not in source and "\\z" not in source
        self.prefilter: Prefilter | None = required_literals(source)
        self._probe_memory = ProbeMemory(len(self.prefilter.literals) if self.prefilter else 0)
        # The pattern as it appears in a script: plain, or escaped for double-quoted YAML.
        # A literal pattern (no metacharacters) is its own only match: never skip those.
        literal = not any(c in source for c in "\\.^$*+?{}[]|()")
        self._literals: tuple[bytes, ...] = (  # at most two: scan() checks both inline
            () if literal else tuple({source.encode(), source.replace("\\", "\\\\").encode()})
        )

    def match_line(self, line: bytes) -> LineMatch | None:
        """Match one line (without its newline)."""
        spans = self._raw.Match(_UNANCHORED, line, 0, len(line))
        if spans[0][0] < 0:
            return None
        if line.isascii():  # byte offsets are character offsets: slice the decoded line
            text = line.decode("ascii")
            texts = [text[a:b] if a >= 0 else "" for a, b in spans]
        else:
            text = line.decode("utf-8", "replace")
            texts = [line[a:b].decode("utf-8", "replace") if a >= 0 else "" for a, b in spans]
        named = {name: texts[idx] for name, idx in self._named} if self._named else {}
        return LineMatch(text, texts[0], tuple(texts[1:]), named)

    def scan(self, chunk: bytes) -> Iterator[LineMatch]:
        """Every matching line of a chunk of complete lines, in order.

        A line that contains the pattern's own source text verbatim (a job
        echoing its submission script, with the watcher block in it) is not a
        match: its "captures" would be the pattern's own syntax. (A literal
        pattern such as ``CUDA out of memory`` is exempt: every real match
        contains it.)
        """
        ascii_only = chunk.isascii()  # isascii is ~10x cheaper than a decode
        try:
            if not ascii_only:
                chunk.decode("utf-8")
        except UnicodeDecodeError:
            # RE2 reads UTF-8: invalid bytes would match nothing, not even `\S`.
            chunk = chunk.decode("utf-8", errors="replace").encode("utf-8")
        pf = self.prefilter
        if pf is not None and (ascii_only or not pf.fold):
            candidates = lines_containing(chunk, pf, self._probe_memory)
        else:
            candidates = self._candidate_lines(chunk)
        own = self._literals
        match_line = self.match_line
        for line in candidates:
            if own and (own[0] in line or (len(own) > 1 and own[1] in line)):
                continue
            found = match_line(line)
            if found is not None:
                yield found

    def _candidate_lines(self, chunk: bytes) -> Iterator[bytes]:
        # A line is matched without its trailing "\r"s, but in the chunk "$" sees
        # them before the "\n": CRLF output takes the per-line loop.
        if not self._chunk_scan_ok or ("$" in self.source and b"\r" in chunk):
            for raw in chunk.split(b"\n"):
                yield raw.rstrip(b"\r")
            return
        pos = 0
        end = len(chunk)
        while pos <= end:  # == end: the chunk's last line is empty (b"" or ending in "\n")
            m = self._scan.search(chunk, pos)
            if m is None:
                return
            start = m.start()
            line_start = chunk.rfind(b"\n", 0, start) + 1
            line_end = chunk.find(b"\n", start)
            if line_end < 0:
                line_end = end
            yield chunk[line_start:line_end].rstrip(b"\r")
            pos = line_end + 1
            if m.end() == start and start == line_end:
                # An empty match at the end of a line: move past it.
                pos = max(pos, start + 1)


def _explain(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else str(exc)
    msg = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    hint = ""
    if "\\1" in msg or "escape" in msg or "perl operator" in msg:
        hint = (
            " (patterns run on RE2, which guarantees linear time: backreferences and "
            "lookaround are not supported)"
        )
    return f"invalid pattern: {msg}{hint}"


def compile_pattern(source: str) -> CompiledPattern:
    """Compile and validate a watcher pattern; raises :class:`PatternError`."""
    if not source:
        raise PatternError("invalid pattern: empty")
    return CompiledPattern(source)
