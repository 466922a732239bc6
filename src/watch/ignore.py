"""Which paths `pivot watch` ignores: `.gitignore`, `.pivotignore`, and built-ins.

Rules follow git's syntax: ``#`` comments, ``!`` negation, a trailing ``/``
for directories only, a ``/`` elsewhere anchors the pattern to the directory
of the ignore file, ``*``, ``?``, ``[...]`` and ``**``. Ignore files are read
in every directory from the project root down to the path; in one directory
`.pivotignore` is applied after `.gitignore`, so ``!pattern`` in
`.pivotignore` re-includes what git ignores. The last matching rule wins, and
as in git a path inside an ignored directory stays ignored.

`.pivot/` (pivot's own state) and `.git/` are always ignored; `__pycache__/`,
``*.pyc`` and editors' swap files are ignored unless a rule re-includes them.

Why our own matcher and not ``pathspec``: on random ignore files
``tests/watch/test_ignore_vs_git.py`` checks that every path gets the answer
of ``git check-ignore``; pathspec 1.1 (``GitIgnoreSpec``) fails that on about
0.8 % of paths (a trailing ``/**/`` also matches files directly in the
folder; a negation matching a parent folder re-includes a child its own
pattern excludes). ``bench/ignore_match.py`` measures both, beside git.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BUILTIN_RULES", "IgnoreRules", "Rule", "parse_rules"]

IGNORE_FILES = (".gitignore", ".pivotignore")
ALWAYS_IGNORED = frozenset({".pivot", ".git"})
BUILTIN_RULES = ("__pycache__/", "*.pyc", "*.pyo", "*.swp", "*.swx", "*~", ".#*", "4913")


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of an ignore file, compiled."""

    pattern: str
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool
    source: str
    line: int

    def matches(self, rel: str, is_dir: bool) -> bool:
        """Whether this rule matches ``rel`` (posix path relative to the rule's directory)."""
        if self.dir_only and not is_dir:
            return False
        return self.regex.fullmatch(rel) is not None


def _glob_to_regex(glob: str) -> str:
    out: list[str] = []
    i = 0
    n = len(glob)
    while i < n:
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == n:
            out.append("/.*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = glob.find("]", i + 2)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = glob[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def parse_rules(text: str, source: str = "<rules>") -> list[Rule]:
    """Compile the lines of one ignore file (blank lines and comments skipped)."""
    rules: list[Rule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        # Trailing spaces are dropped unless escaped with a backslash.
        while line.endswith(" ") and not line.endswith("\\ "):
            line = line[:-1]
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated or line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        body = _glob_to_regex(line)
        regex = body if anchored else "(?:.*/)?" + body
        rules.append(
            Rule(
                pattern=raw.strip(),
                regex=re.compile(regex, re.DOTALL),
                negated=negated,
                dir_only=dir_only,
                source=source,
                line=number,
            )
        )
    return rules


class IgnoreRules:
    """Decide whether a path under ``root`` is ignored; ignore files are read lazily.

    Call :meth:`reset` after an ignore file changed.
    """

    def __init__(
        self,
        root: Path,
        extra_rules: tuple[str, ...] = BUILTIN_RULES,
        files: tuple[str, ...] = IGNORE_FILES,
    ) -> None:
        self.root = root.resolve()
        self._files = files
        self._builtin = parse_rules("\n".join(extra_rules), "<built-in>")
        self._by_dir: dict[Path, list[Rule]] = {}
        self._dir_cache: dict[Path, bool] = {}

    def reset(self) -> None:
        """Forget every parsed ignore file and cached decision."""
        self._by_dir.clear()
        self._dir_cache.clear()

    def _rules_in(self, directory: Path) -> list[Rule]:
        rules = self._by_dir.get(directory)
        if rules is None:
            rules = [] if directory != self.root else list(self._builtin)
            for name in self._files:
                f = directory / name
                try:
                    text = f.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                rules.extend(parse_rules(text, str(f)))
            self._by_dir[directory] = rules
        return rules

    def _decide(self, path: Path, is_dir: bool) -> bool:
        # Walk the ignore files from the root down to the path's directory;
        # the last matching rule wins.
        ignored = False
        directory = path.parent
        chain = [directory, *directory.parents]
        for d in reversed(chain):
            if d != self.root and self.root not in d.parents:
                continue
            rel = path.relative_to(d).as_posix()
            for rule in self._rules_in(d):
                if rule.matches(rel, is_dir):
                    ignored = not rule.negated
        return ignored

    def _dir_ignored(self, directory: Path) -> bool:
        cached = self._dir_cache.get(directory)
        if cached is None:
            if directory == self.root:
                cached = False
            elif directory.name in ALWAYS_IGNORED and directory.parent == self.root:
                cached = True
            else:
                cached = self._dir_ignored(directory.parent) or self._decide(directory, True)
            if len(self._dir_cache) > 100_000:
                self._dir_cache.clear()
            self._dir_cache[directory] = cached
        return cached

    def is_ignored(self, path: str | Path, is_dir: bool | None = None) -> bool:
        """Whether ``path`` is ignored. Paths outside the root are never ignored here.

        ``is_dir`` defaults to asking the file system (a deleted path counts
        as a file).
        """
        p = Path(path)
        if not p.is_absolute():
            p = self.root / p
        if p == self.root:
            return False
        if self.root not in p.parents:
            return False
        if self._dir_ignored(p.parent):
            return True
        if p.parent == self.root and p.name in ALWAYS_IGNORED:
            return True
        if is_dir is None:
            is_dir = p.is_dir()
        return self._decide(p, is_dir)
