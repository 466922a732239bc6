"""Code fingerprints: which project code a stage reaches, and its normalised hash.

Starting from the stage function, every global name it uses is resolved in its
module (the real, imported namespace, so ``from lib.utils import normalize``
and ``utils.normalize`` both find the function) and followed when it leads to
the project's own code:

* a function or class defined in a project file: its AST, then its names;
* a module-level constant of a project module: the statements that assign it,
  then their names (``from x import K`` is followed to ``x``'s assignment);
* anything else (the standard library, installed packages, builtins): ignored.

Each piece is hashed from ``ast.dump`` of its node with docstrings removed, so
comments, docstrings and formatting never count; the result is a mapping
``"lib/utils.py:normalize" -> hash`` whose keys name what changed in
``code changed: ...`` reasons. Parsing and hashing one file's pieces is
:mod:`pivot.pipeline.code_index`.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pivot.pipeline.code_index import (
    FileIndex,
    hash_nodes,
    index_file,
    references,
    strip_docstrings,
)
from pivot.pipeline.declare import Pipeline
from pivot.pipeline.hashing import racy, signature

__all__ = ["Fingerprinter", "combine"]

_CACHE_VERSION = 2  # 2: the signature holds ctime and inode too
_FUNCTIONS = (types.FunctionType, types.MethodType)


def combine(code: Mapping[str, str]) -> str:
    """One hash for a whole ``key -> hash`` mapping (order-independent)."""
    h = hashlib.blake2b(digest_size=16)
    for key in sorted(code):
        h.update(f"{key}={code[key]}\n".encode())
    return h.hexdigest()


class Fingerprinter:
    """Fingerprints stage functions of one project; caches per file and per piece.

    Create one per load: files are parsed once however many stages use them.
    ``cache`` holds per-file results of earlier loads (``rel -> entry``, as
    :attr:`updated` produces them, keyed by the file's size and mtime): an
    unchanged file is not parsed at all. The loader keeps it in
    ``.pivot/code-cache.json``; the namespaces that names resolve in are
    always the live, freshly imported ones, so only parsing is skipped.
    """

    def __init__(self, root: Path, cache: Mapping[str, Any] | None = None) -> None:
        self.root = root.resolve()
        self._cache = dict(cache or {})
        self.updated: dict[str, Any] = {}  # cache entries to write back
        self._files: dict[str, FileIndex | None] = {}
        self._rel: dict[str, str | None] = {}
        self._folders: dict[str, Path] = {}  # folder -> resolved
        # piece key -> (hash, module namespace for its references, references)
        self._pieces: dict[str, tuple[str, Mapping[str, Any], list[tuple[str, ...]]]] = {}
        # id of a namespace -> dotted name -> piece key: stages of one module share
        # most names (their helpers, Path, Dep...), and namespaces outlive a load.
        self._resolved: dict[int, dict[tuple[str, ...], str | None]] = {}
        self._reached: dict[str, dict[str, str]] = {}  # piece key -> what it reaches

    # -- which files belong to the project ------------------------------------

    def project_file(self, filename: str | None) -> str | None:
        """``filename`` relative to the root if it is project source, else None."""
        if not filename:
            return None
        cached = self._rel.get(filename, "")
        if cached != "":
            return cached
        rel: str | None = None
        try:
            p = self._resolve_file(filename)
            r = p.relative_to(self.root)
            parts = r.parts
            if (
                p.suffix == ".py"
                and "site-packages" not in parts
                and not any(part.startswith(".") for part in parts[:-1])
            ):
                rel = r.as_posix()
        except (ValueError, OSError):
            rel = None
        self._rel[filename] = rel
        return rel

    def _resolve_file(self, filename: str) -> Path:
        """``Path(filename).resolve()``, each folder resolved once: a loader that imported
        numpy and pandas asks about 600 files in a few dozen folders, and resolving each
        file's whole path was most of a reload's time."""
        # Plain strings and one lstat per file: Path objects per file were the cost.
        if ".." in filename or os.path.islink(filename):  # noqa: PTH114
            return Path(filename).resolve()  # what a folder's resolution cannot stand for
        head, name = os.path.split(os.path.abspath(filename))  # noqa: PTH100
        folder = self._folders.get(head)
        if folder is None:
            folder = self._folders[head] = Path(head).resolve()
        return folder / name

    def _index(self, rel: str) -> FileIndex | None:
        if rel in self._files:
            return self._files[rel]
        index: FileIndex | None = None
        try:
            st = (self.root / rel).stat()
            sig = list(signature(st))  # as JSON holds it
            cached = self._cache.get(rel)
            if cached and cached.get("sig") == sig and cached.get("v") == _CACHE_VERSION:
                index = FileIndex.from_dict(cached["index"])
            else:
                index = index_file(self.root / rel)
                if not racy(st):
                    entry = {"sig": sig, "v": _CACHE_VERSION, "index": index.to_dict()}
                    self._cache[rel] = self.updated[rel] = entry
        except (OSError, SyntaxError, ValueError, KeyError, TypeError):
            index = None
        self._files[rel] = index
        return index

    def _module_file(self, module: types.ModuleType | None) -> str | None:
        return self.project_file(getattr(module, "__file__", None)) if module else None

    # -- pieces -----------------------------------------------------------------

    def _def_piece(self, obj: Any) -> str | None:
        """Key of a project function/class, computing its piece if new."""
        if isinstance(obj, _FUNCTIONS):
            if isinstance(obj, types.MethodType):
                obj = obj.__func__
            if hasattr(obj, "__wrapped__"):  # what inspect.unwrap follows (a plain function: no)
                obj = inspect.unwrap(obj)
            filename = obj.__code__.co_filename
            namespace: Mapping[str, Any] = obj.__globals__
        elif isinstance(obj, type):
            module = sys.modules.get(obj.__module__)
            filename = getattr(module, "__file__", None) or ""
            namespace = vars(module) if module else {}
        else:
            return None
        rel = self.project_file(filename)
        if rel is None:
            return None
        qualname: str = obj.__qualname__
        key = f"{rel}:{qualname}"
        if key in self._pieces:
            return key
        idx = self._index(rel)
        piece = idx.defs.get(qualname) if idx else None
        if piece is None:
            # Defined dynamically (exec, a factory): fall back to its source text.
            try:
                src = inspect.getsource(obj)
                node = ast.parse(inspect.cleandoc(src) if src[:1].isspace() else src)
                strip_docstrings(node)
                piece = (hash_nodes([node]), references([node]))
            except (OSError, TypeError, SyntaxError):
                piece = ("unknown", [])
        self._pieces[key] = (piece[0], namespace, piece[1])
        return key

    def _const_piece(self, module: types.ModuleType, name: str, depth: int = 0) -> str | None:
        """Key of a module-level constant of a project module (following ``from x import``)."""
        rel = self._module_file(module)
        if rel is None or depth > 20:
            return None
        idx = self._index(rel)
        if idx is None:
            return None
        if name in idx.consts:
            key = f"{rel}:{name}"
            if key not in self._pieces:
                digest, refs = idx.consts[name]
                self._pieces[key] = (digest, vars(module), refs)
            return key
        if name in idx.imports:
            mod_name, orig, level = idx.imports[name]
            if level:
                package = module.__package__ or ""
                base = package.rsplit(".", level - 1)[0] if level > 1 else package
                mod_name = f"{base}.{mod_name}" if mod_name else base
            target = sys.modules.get(mod_name)
            if target is not None:
                value = getattr(target, orig, None)
                if isinstance(value, types.ModuleType):
                    return None
                return self._const_piece(target, orig, depth + 1)
        return None

    def _resolve(  # noqa: PLR0911 - each early return is one kind of name
        self, namespace: Mapping[str, Any], chain: tuple[str, ...]
    ) -> str | None:
        if chain[0] not in namespace:
            return None  # a builtin, or a local we could not see
        obj = namespace[chain[0]]
        owner_name = namespace.get("__name__")
        owner = sys.modules.get(owner_name) if isinstance(owner_name, str) else None
        attr = chain[0]
        for part in chain[1:]:
            if not isinstance(obj, types.ModuleType):
                break
            if self._module_file(obj) is None:
                return None  # an installed package or the standard library
            owner, attr = obj, part
            obj = getattr(obj, part, None)
        if isinstance(obj, types.ModuleType):
            return None  # a module on its own: only what is used from it counts
        if isinstance(obj, Pipeline):
            return None  # `@pipeline.stage` registers the stage; it is not its code
        key = self._def_piece(obj)
        if key is not None:
            return key
        if isinstance(obj, types.FunctionType | type):
            return None  # someone else's function or class
        if owner is None:
            return None
        return self._const_piece(owner, attr)

    def stage(self, func: Any) -> tuple[dict[str, str], tuple[str, ...]]:
        """Hashes of every piece of project code ``func`` reaches, and their files."""
        start = self._def_piece(func)
        if start is None:
            raise ValueError(f"{func!r} is not defined in a project source file")
        # What the stage reaches is its own piece and all that each piece it
        # names reaches: stages share their helpers, so each helper's reach is
        # walked once per load, not once per stage.
        seen = {start: self._pieces[start][0]}
        for found in self._named(start):
            if found not in seen:
                seen.update(self._reach(found))
        files = tuple(sorted({k.rsplit(":", 1)[0] for k in seen}))
        return dict(sorted(seen.items())), files

    def _named(self, key: str) -> list[str]:
        """The pieces that piece ``key`` names directly."""
        _, namespace, refs = self._pieces[key]
        memo = self._resolved.get(id(namespace))
        if memo is None:
            memo = self._resolved[id(namespace)] = {}
        out = []
        for chain in refs:
            if chain in memo:
                found = memo[chain]
            else:
                found = memo[chain] = self._resolve(namespace, chain)
            if found is not None:
                out.append(found)
        return out

    def _reach(self, start: str) -> dict[str, str]:
        """Every piece reachable from ``start`` (itself included) -> its hash; memoised."""
        done = self._reached.get(start)
        if done is not None:
            return done
        seen: dict[str, str] = {}
        stack = [start]
        while stack:
            key = stack.pop()
            if key in seen:
                continue
            seen[key] = self._pieces[key][0]
            stack.extend(k for k in self._named(key) if k not in seen)
        self._reached[start] = seen
        return seen
