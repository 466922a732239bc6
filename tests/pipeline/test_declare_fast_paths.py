"""The shortcuts declaring a stage takes (10,000 stages load in a fraction of the
time) say exactly what the general code they skip would say."""

# No `from __future__ import annotations` here: the stage functions below need
# their annotations as objects, as most pipeline files have them.

import inspect
import posixpath
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivot import Dep, Out, Pipeline
from pivot.pipeline import declare
from pivot.pipeline.declare import normalise_path
from pivot.pipeline.errors import PipelineError


def _normalise_slowly(path: str) -> str:
    """What normalise_path said before its shortcut: always through posixpath.normpath."""
    if not path.strip():
        raise ValueError("empty")
    p = path.replace("\\", "/")
    if p.startswith("/"):
        raise ValueError("absolute")
    norm = posixpath.normpath(p)
    if norm in {".", ".."} or norm.startswith("../"):
        raise ValueError("outside")
    if norm.split("/", 1)[0] in {".pivot", ".git"}:
        raise ValueError("reserved")
    return norm


@given(st.lists(st.sampled_from(["a", "b.csv", ".", "..", "", "...", ".x", "\\", "/", " "])))
def test_normalise_path_agrees_with_normpath_on_any_path(parts: list[str]) -> None:
    path = "/".join(parts)
    try:
        expected: str | None = _normalise_slowly(path)
    except ValueError:
        expected = None
    try:
        got: str | None = normalise_path(path)
    except ValueError:
        got = None
    assert got == expected, path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data/raw.csv", "data/raw.csv"),
        ("data/./raw.csv", "data/raw.csv"),
        ("data//raw.csv", "data/raw.csv"),
        ("data/raw/", "data/raw"),
        ("a/../b", "b"),
        ("data\\raw.csv", "data/raw.csv"),
        ("...", "..."),
        (".hidden/x", ".hidden/x"),
    ],
)
def test_normalise_path_examples(path: str, expected: str) -> None:
    assert normalise_path(path) == expected


@pytest.mark.parametrize(
    "bad", ["/etc/passwd", "../outside", ".", "..", "a/../..", ".pivot/x", ".git"]
)
def test_normalise_path_refuses_what_leaves_the_project(bad: str) -> None:
    with pytest.raises(ValueError, match=r"absolute|outside|inside"):
        normalise_path(bad)


def plain(
    raw: Annotated[Path, Dep("data/raw.csv")],
    out: Annotated[Path, Out("out/x.txt")],
    threshold: float = 0.5,
    *,
    name: str = "n",
    items: list = [],  # type: ignore[type-arg]  # a bare class: the shortcut
) -> None: ...


def positional_only(
    raw: Annotated[Path, Dep("a")], /, out: Annotated[Path, Out("b")], k: int = 1
) -> None: ...


def strings(raw: "Annotated[Path, Dep('a')]", out: Annotated[Path, Out("b")], n: "int" = 2) -> int:
    return n


def generic(out: Annotated[Path, Out("b")], xs: list[int] = [1]) -> None: ...


def unresolvable(out: Annotated["Nowhere", Out("b")]) -> None: ...  # type: ignore[name-defined]  # noqa: F821


def no_default(out: Annotated[Path, Out("b")], k: int, *, j: int) -> None: ...


def variadic(out: Annotated[Path, Out("b")], *args: Any, **kw: Any) -> None: ...


def _slow_parameters(func: Any) -> list[tuple[str, bool, Any]]:
    return [
        (a, p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD), p.default)
        for a, p in inspect.signature(func).parameters.items()
    ]


@pytest.mark.parametrize(
    "func", [plain, positional_only, strings, generic, no_default, variadic, len]
)
def test_parameters_read_from_the_code_are_what_inspect_says(func: Any) -> None:
    assert declare._parameters(func) == _slow_parameters(func)


@pytest.mark.parametrize("func", [plain, positional_only, strings, generic, no_default])
def test_hints_taken_as_they_are_match_get_type_hints_where_read(func: Any) -> None:
    fast = declare._hints(func)
    slow = typing.get_type_hints(func, include_extras=True)
    for arg in inspect.signature(func).parameters:
        assert declare._marker(fast.get(arg)) == declare._marker(slow.get(arg))
        assert declare._simple_type(fast.get(arg)) == declare._simple_type(slow.get(arg))


def test_an_unresolvable_forward_reference_is_still_an_error() -> None:
    with pytest.raises(PipelineError, match="cannot read its annotations"):
        Pipeline().stage(unresolvable)


def test_stages_declare_the_same_through_either_path() -> None:
    pipeline = Pipeline()
    for func in (plain, positional_only, strings, generic):
        pipeline.stage(func)
    decls = pipeline.stages
    assert decls["plain"].deps == {"raw": "data/raw.csv"}
    assert decls["plain"].outs == {"out": "out/x.txt"}
    assert decls["plain"].params == {"threshold": 0.5, "name": "n", "items": []}
    assert decls["plain"].param_types == {"threshold": float, "name": str, "items": list}
    assert decls["positional_only"].params == {"k": 1}
    assert decls["strings"].deps == {"raw": "a"}
    assert decls["strings"].param_types == {"n": int}
    assert decls["generic"].param_types == {"xs": list}


def test_missing_defaults_and_variadics_are_refused_as_before() -> None:
    with pytest.raises(PipelineError, match="param 'k' has no default"):
        Pipeline().stage(no_default)
    with pytest.raises(PipelineError, match=r"\*args/\*\*kwargs are not supported"):
        Pipeline().stage(variadic)


def test_the_shortcut_is_taken_for_object_annotations_only() -> None:
    assert declare._hints(plain) is plain.__annotations__
    assert declare._hints(positional_only) is positional_only.__annotations__
    assert declare._hints(strings) is not strings.__annotations__
    assert declare._hints(generic) is not generic.__annotations__
