"""Keep pydantic out of a command's start-up when no argument needs it.

typer (0.2x) coerces every parameter through a pydantic ``TypeAdapter``; the
first one imports pydantic (about 130 ms, more than the rest of a short
command such as ``pivot stats``). Most of pivot's arguments are strings, and
a string from argv needs no coercion. :func:`install` makes each parameter's
runtime coercion lazy: a missing value (typer handles ``None`` itself), a
``str`` for a ``str`` parameter and strings for a ``list[str]`` are returned
as they are, decimal digits for an ``int`` (within its ``min``/``max``) are
converted and an int (a default) is kept; anything else (paths, choices,
floats, custom parsers, and every bad value, so the messages stay typer's)
goes to typer's own coercion, built on first use exactly as before.

It touches typer internals (``typer.core._TyperParameter.get_runtime_param``);
if a typer release moves them, :func:`install` does nothing and commands are
only slower.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any

__all__ = ["install"]

_DIGITS = re.compile(r"-?[0-9]{1,18}")


def _plain(annotation: Any) -> Any:
    """``X`` for ``X | None`` / ``Optional[X]``; anything else unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


_NOT_SIMPLE = object()


def _simple(annotation: Any, info: Any, value: Any) -> Any:
    """``value`` as typer's coercion would return it, or :data:`_NOT_SIMPLE` to ask typer.

    Only the cases with one obvious answer: a ``str``, strings for a
    ``list[str]``, decimal digits for an ``int`` within its ``min``/``max``.
    Anything doubtful (and every error, so messages stay typer's) is typer's.
    """
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return _NOT_SIMPLE
    base = _plain(annotation)
    if base is str and isinstance(value, str):
        return value
    strings = typing.get_origin(base) is list and typing.get_args(base) == (str,)
    if strings and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    # An int as it is: an option's default (`pivot run`'s --slurm-jobs 100)
    # reaches here on every call that does not give the option.
    if base is int and (
        type(value) is int or (isinstance(value, str) and _DIGITS.fullmatch(value))
    ):
        number = int(value)
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        if (low is None or number >= low) and (high is None or number <= high):
            return number
    return _NOT_SIMPLE


def install() -> None:
    """Make typer's per-parameter coercion lazy (idempotent; see the module doc)."""
    try:
        from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
        from typer.core import _TyperParameter
    except ImportError:  # pragma: no cover - another typer layout: stay correct, be slower
        return
    if getattr(_TyperParameter, "_pivot_lazy_coercion", False):
        return

    @dataclass(frozen=True)
    class Deferred(RuntimeParam):
        descriptor: TypeDescriptor

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            simple = _simple(self.annotation, self.parameter_info, value)
            if simple is not _NOT_SIMPLE:
                return simple
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            d = self.type_descriptor
            self._runtime_param = Deferred(
                parameter_info=d.parameter_info, annotation=d.annotation, descriptor=d
            )
        return self._runtime_param

    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]
    _TyperParameter._pivot_lazy_coercion = True  # type: ignore[attr-defined]
