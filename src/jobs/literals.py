"""Required literals of a watcher pattern: the prefilter that runs before RE2.

:func:`required_literals` reads a pattern's source and returns a few byte
strings such that every match of the pattern on a line contains at least one
of them. Finding those over a whole chunk of output (``memchr`` of a rare
byte of each, :mod:`pivot.jobs.literal_search`), and running RE2 only on the
lines that contain one, is what makes a scan cost about what ``grep`` costs.

The analysis is conservative by construction; where it is unsure it answers
``None`` and the caller runs RE2 on everything:

- Only a literal character, a ``\\Q...\\E`` run or an escaped punctuation
  character is literal text. Classes, ``.``, ``\\d`` and the like, optional
  parts (``?``, ``*``, ``{0,n}``) and anything the parser does not know
  contribute nothing, and they break a run of literal text.
- An alternation needs a literal from every branch (the set is their union);
  one branch without a literal leaves the whole alternation without one.
- Case-insensitive text (``(?i)``) is kept in lower case and flagged ``fold``:
  the caller then searches a lower-cased copy of the chunk, and only of an
  ASCII chunk (Unicode case folding maps ``k`` to the Kelvin sign and ``s``
  to the long s; ``bytes.lower`` knows neither). Under ``(?i)`` a non-ASCII
  character is not literal at all.
- A syntax the parser does not model exactly (a ``{`` that is not a
  repetition, an octal or unknown escape, ``(?P=...)``) gives up on the whole
  pattern rather than guess.

``tests/jobs/test_jobs_literals.py`` checks, with random patterns and lines,
that prefiltered scanning finds exactly what plain RE2 finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MIN_LITERAL", "Prefilter", "required_literals"]

MAX_SET = 16  # exact strings tracked per node before a run of literal text is cut
MAX_ANY = 4  # literals searched at most (each costs at least a memchr pass over the chunk)
MIN_LITERAL = 3  # shorter literals are too frequent to beat RE2's own chunk scan

_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_POSIX = re.compile(r"\[:\^?[a-z]+:\]")
_ESCAPED_CHARS = {"a": "\a", "f": "\f", "t": "\t", "n": "\n", "r": "\r", "v": "\v"}

# A literal: its UTF-8 bytes, and whether it is matched case-insensitively
# (then the bytes are lower case).
_Lit = tuple[bytes, bool]
_EMPTY: _Lit = (b"", False)


@dataclass(frozen=True, slots=True)
class Prefilter:
    """Every match contains one of ``literals`` (lower-cased and searched so when ``fold``)."""

    literals: tuple[bytes, ...]
    fold: bool


class _GiveUp(Exception):
    """A construct the analysis does not model exactly: no prefilter."""


@dataclass(frozen=True, slots=True)
class _Info:
    """What is known of the strings one node of the pattern matches."""

    exact: frozenset[_Lit] | None = None  # all of them, when few
    required: frozenset[_Lit] | None = None  # each contains one of these


_UNKNOWN = _Info()
_EMPTY_WIDTH = _Info(exact=frozenset({_EMPTY}))


def required_literals(source: str) -> Prefilter | None:
    """The literals one of which every match of ``source`` contains, or None.

    ``source`` must already be a valid RE2 pattern (compile it first).
    """
    try:
        info = _Parser(source).whole()
    except _GiveUp:
        return None
    best = _best([info.required, info.exact])
    if best is None or len(best) > MAX_ANY:
        return None
    if min(len(text) for text, _ in best) < MIN_LITERAL:
        return None
    fold = any(f for _, f in best)
    texts = sorted({text.lower() if fold else text for text, _ in best})
    return Prefilter(literals=tuple(texts), fold=fold)


def _join(a: _Lit, b: _Lit) -> _Lit:
    if a[1] or b[1]:
        # Lower-casing the case-sensitive part too only widens what is found.
        return (a[0].lower() + b[0].lower(), True)
    return (a[0] + b[0], False)


def _weight(text: bytes) -> float:
    """How selective a literal is likely to be in job output: its length, where
    spaces (in every line) count half and bytes other than lower-case letters
    and digits (rarer, and ``bytes.find`` skips fastest on a rare last byte) count double."""
    return sum(0.5 if b == 0x20 else 1.0 if (0x61 <= b <= 0x7A or 0x30 <= b <= 0x39) else 2.0
               for b in text)  # fmt: skip


def _best(sets: Iterable[frozenset[_Lit] | None]) -> frozenset[_Lit] | None:
    """The most selective usable set: heaviest lightest literal, then fewest literals."""
    usable = [s for s in sets if s and all(text for text, _ in s)]
    if not usable:
        return None
    return max(usable, key=lambda s: (min(_weight(t) for t, _ in s), -len(s)))


def _concat(items: list[_Info]) -> _Info:
    candidates: list[frozenset[_Lit] | None] = []
    run: frozenset[_Lit] = frozenset({_EMPTY})
    all_exact = True
    for item in items:
        if item.exact is not None:
            joined = frozenset(_join(a, b) for a in run for b in item.exact)
            if len(joined) <= MAX_SET:
                run = joined
                continue
            candidates.append(run)
            run = item.exact
            all_exact = False
            continue
        all_exact = False
        candidates.append(run)
        candidates.append(item.required)
        run = frozenset({_EMPTY})
    candidates.append(run)
    return _Info(exact=run if all_exact else None, required=_best(candidates))


def _alternate(branches: list[_Info]) -> _Info:
    if len(branches) == 1:
        return branches[0]
    exact: frozenset[_Lit] | None = None
    if all(b.exact is not None for b in branches):
        union = frozenset().union(*(b.exact or () for b in branches))
        exact = union if len(union) <= MAX_SET else None
    required: frozenset[_Lit] | None = frozenset()
    for b in branches:
        one = _best([b.required, b.exact])
        if one is None:
            required = None
            break
        required = (required or frozenset()) | one
    if required is not None and len(required) > MAX_SET:
        required = None
    return _Info(exact=exact, required=required)


def _repeat(atom: _Info, low: int, high: int | None) -> _Info:
    if low == 1 and high == 1:
        return atom
    if low == 0:
        if high == 1 and atom.exact is not None and len(atom.exact) < MAX_SET:
            return _Info(exact=atom.exact | {_EMPTY})
        return _UNKNOWN
    # At least once: each match contains a match of the atom; exact text is lost.
    return _Info(required=_best([atom.required, atom.exact]))


class _Parser:
    """Recursive descent over RE2 syntax, computing :class:`_Info` bottom-up."""

    def __init__(self, source: str) -> None:
        self.s = source
        self.i = 0
        self.fold = False

    def whole(self) -> _Info:
        info = self.alternation()
        if self.i != len(self.s):
            raise _GiveUp  # an unbalanced ")": RE2 refuses it; do not guess
        return info

    def _peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def alternation(self) -> _Info:
        branches = [self._concatenation()]
        while self._peek() == "|":
            self.i += 1
            branches.append(self._concatenation())
        return _alternate(branches)

    def _concatenation(self) -> _Info:
        items: list[_Info] = []
        while self.i < len(self.s) and self.s[self.i] not in "|)":
            atom = self._atom()
            if atom is not None:
                items.append(self._quantified(atom))
        return _concat(items)

    def _quantified(self, atom: _Info) -> _Info:
        while True:
            c = self._peek()
            if c == "*":
                low, high, self.i = 0, None, self.i + 1
            elif c == "+":
                low, high, self.i = 1, None, self.i + 1
            elif c == "?":
                low, high, self.i = 0, 1, self.i + 1
            elif c == "{":
                m = _REPEAT.match(self.s, self.i)
                if m is None:
                    raise _GiveUp  # RE2 reads such a brace as text; do not guess
                low = int(m.group(1))
                high = low if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
                self.i = m.end()
            else:
                return atom
            if self._peek() == "?":  # lazy: same strings
                self.i += 1
            atom = _repeat(atom, low, high)

    def _char(self, c: str) -> _Info:
        if self.fold:
            if not c.isascii():
                return _UNKNOWN
            return _Info(exact=frozenset({(c.lower().encode(), c.isalpha())}))
        return _Info(exact=frozenset({(c.encode(), False)}))

    def _atom(self) -> _Info | None:
        c = self.s[self.i]
        if c == "(":
            return self._group()
        if c == "[":
            self._skip_class()
            return _UNKNOWN
        if c == "\\":
            return self._escape()
        if c in "*+?{":
            raise _GiveUp
        self.i += 1
        if c == ".":
            return _UNKNOWN
        if c in "^$":
            return _EMPTY_WIDTH
        return self._char(c)

    def _group(self) -> _Info | None:
        s = self.s
        self.i += 1
        saved = self.fold
        if s.startswith("?", self.i):
            self.i += 1
            if s.startswith(("P<", "<"), self.i):
                close = s.find(">", self.i)
                if close < 0:
                    raise _GiveUp
                self.i = close + 1
            else:
                flags_end = self.i
                while flags_end < len(s) and s[flags_end] in "imsU-":
                    flags_end += 1
                if flags_end >= len(s) or s[flags_end] not in ":)":
                    raise _GiveUp
                self._set_flags(s[self.i : flags_end])
                self.i = flags_end + 1
                if s[flags_end] == ")":
                    return None  # (?i): flags for the rest of the enclosing group
        info = self.alternation()
        if self._peek() != ")":
            raise _GiveUp
        self.i += 1
        self.fold = saved
        return info

    def _set_flags(self, flags: str) -> None:
        on = True
        for f in flags:
            if f == "-":
                on = False
            elif f == "i":
                self.fold = on

    def _skip_class(self) -> None:
        s = self.s
        j = self.i + 1
        if s.startswith("^", j):
            j += 1
        if s.startswith("]", j):
            j += 1
        while j < len(s):
            c = s[j]
            if c == "]":
                self.i = j + 1
                return
            if c == "\\":
                if s.startswith(("p{", "P{", "x{"), j + 1):
                    close = s.find("}", j)
                    if close < 0:
                        raise _GiveUp
                    j = close + 1
                else:
                    j += 2
            elif c == "[" and s.startswith(":", j + 1):
                m = _POSIX.match(s, j)
                if m is None:
                    raise _GiveUp
                j = m.end()
            else:
                j += 1
        raise _GiveUp

    def _escape(self) -> _Info:
        s = self.s
        if self.i + 1 >= len(s):
            raise _GiveUp
        c = s[self.i + 1]
        self.i += 2
        if c in "AzbB":
            return _EMPTY_WIDTH
        if c in "dDsSwWC":
            return _UNKNOWN
        if c in "pP":
            close = s.find("}", self.i) if self._peek() == "{" else self.i
            if close < 0:
                raise _GiveUp
            self.i = close + 1
            return _UNKNOWN
        if c == "Q":
            end = s.find("\\E", self.i)
            text = s[self.i :] if end < 0 else s[self.i : end]
            self.i = len(s) if end < 0 else end + 2
            return _concat([self._char(ch) for ch in text])
        if c == "x":
            return self._hex()
        if c not in _ESCAPED_CHARS and (not c.isascii() or c.isalnum()):
            raise _GiveUp  # octal, or an escape we do not model
        return self._char(_ESCAPED_CHARS.get(c, c))

    def _hex(self) -> _Info:
        s = self.s
        if self._peek() == "{":
            close = s.find("}", self.i)
            digits = s[self.i + 1 : close] if close > 0 else ""
            self.i = close + 1
        else:
            digits = s[self.i : self.i + 2]
            self.i += 2
        try:
            code = int(digits, 16)
            return self._char(chr(code))
        except (ValueError, OverflowError):
            raise _GiveUp from None
