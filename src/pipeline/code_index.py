"""What one project source file defines, hashed: the cacheable part of fingerprinting.

:func:`index_file` parses a file once and returns a :class:`FileIndex`: for
each function and class (by qualname) and each module-level constant, the
hash of its ``ast.dump`` with docstrings removed (comments, docstrings and
formatting never count) and the global names it uses; and where each
``from x import y`` name comes from. :class:`pivot.pipeline.fingerprint.Fingerprinter`
resolves those names in the live modules; ``.pivot/code-cache.json`` keeps
the index of each unchanged file (:meth:`FileIndex.to_dict`).
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FileIndex", "Piece", "hash_nodes", "index_file", "references", "strip_docstrings"]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (*_SCOPES, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]


def hash_nodes(nodes: Iterable[ast.AST]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for n in nodes:
        h.update(ast.dump(n, annotate_fields=False, include_attributes=False).encode())
    return h.hexdigest()


def references(nodes: Iterable[ast.AST]) -> list[tuple[str, ...]]:
    """Global names used by ``nodes``, with attribute chains (``utils.normalize``)."""
    local: set[str] = set()
    declared_global: set[str] = set()
    chains: list[tuple[str, ...]] = []
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Global):
                declared_global.update(node.names)
            elif isinstance(node, ast.arg):
                local.add(node.arg)
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                local.add(node.id)
            elif isinstance(node, ast.Attribute):
                parts: list[str] = [node.attr]
                base: ast.expr = node.value
                while isinstance(base, ast.Attribute):
                    parts.append(base.attr)
                    base = base.value
                if isinstance(base, ast.Name):
                    chains.append((base.id, *reversed(parts)))
            elif isinstance(node, ast.Name):
                chains.append((node.id,))
    # A name bound inside a function body is a local there, unless declared global;
    # treating it as global would only over-include, never miss, so this is safe.
    shadowed = local - declared_global
    return [c for c in dict.fromkeys(chains) if c[0] not in shadowed]


Piece = tuple[str, list[tuple[str, ...]]]  # normalised hash, global names it uses


@dataclass
class FileIndex:
    """What one source file defines, already hashed: the cacheable part of the work."""

    defs: dict[str, Piece] = field(default_factory=dict)  # qualname -> piece
    consts: dict[str, Piece] = field(default_factory=dict)  # module-level name -> piece
    imports: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # name -> from

    def to_dict(self) -> dict[str, Any]:
        return {"defs": self.defs, "consts": self.consts, "imports": self.imports}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileIndex:
        def pieces(raw: Mapping[str, Any]) -> dict[str, Piece]:
            return {k: (h, [tuple(c) for c in refs]) for k, (h, refs) in raw.items()}

        return cls(
            pieces(data["defs"]),
            pieces(data["consts"]),
            {k: (m, n, int(lv)) for k, (m, n, lv) in data["imports"].items()},
        )


def index_file(path: Path) -> FileIndex:
    tree = ast.parse(path.read_bytes(), filename=str(path))
    strip_docstrings(tree)
    defs: dict[str, ast.AST] = {}
    consts: dict[str, list[ast.stmt]] = {}
    imports: dict[str, tuple[str, str, int]] = {}

    def visit_defs(body: list[ast.stmt], prefix: str) -> None:
        for stmt in body:
            if isinstance(stmt, _SCOPES):
                qual = prefix + stmt.name
                defs.setdefault(qual, stmt)
                inner = qual + ".<locals>." if not isinstance(stmt, ast.ClassDef) else qual + "."
                visit_defs(stmt.body, inner)
            else:
                for sub in ("body", "orelse", "finalbody"):
                    children = getattr(stmt, sub, None)
                    if isinstance(children, list):
                        visit_defs([c for c in children if isinstance(c, ast.stmt)], prefix)
                for handler in getattr(stmt, "handlers", []) or []:
                    visit_defs(handler.body, prefix)

    def visit_top(body: list[ast.stmt]) -> None:
        for stmt in body:
            targets: list[ast.expr] = []
            if isinstance(stmt, ast.Assign):
                targets = list(stmt.targets)
            elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
                targets = [stmt.target]
            elif isinstance(stmt, ast.ImportFrom):
                for alias in stmt.names:
                    if alias.name != "*":
                        imports[alias.asname or alias.name] = (
                            stmt.module or "",
                            alias.name,
                            stmt.level,
                        )
            elif isinstance(stmt, ast.If | ast.Try | ast.With):
                visit_top(stmt.body)
                visit_top(getattr(stmt, "orelse", []))
                visit_top(getattr(stmt, "finalbody", []))
                for handler in getattr(stmt, "handlers", []):
                    visit_top(handler.body)
            for target in targets:
                for n in ast.walk(target):
                    if isinstance(n, ast.Name):
                        consts.setdefault(n.id, []).append(stmt)

    visit_defs(tree.body, "")
    visit_top(tree.body)
    return FileIndex(
        {q: (hash_nodes([n]), references([n])) for q, n in defs.items()},
        {k: (hash_nodes(v), references(v)) for k, v in consts.items()},
        imports,
    )
