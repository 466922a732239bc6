"""`--help` that reads like a mature tool's: names a reader knows, nothing cut.

pivot's app uses click's classic help layout (``rich_markup_mode=None``):
one line per option, long names never cut at 80 columns (a name too long
for its column gets a line of its own), text wrapped to the terminal. What
typer (0.2x) puts into that layout by default is type noise: ``<bool>``
after every flag argument, ``<list[str]>`` after ``STAGES...``,
``<int range>`` and ``[x>=1]``, and ``{file}`` for a required argument in
the usage line. :func:`install` replaces those with the conventions of
click, git and pip:

- arguments by their upper-case name (``FILE``, ``[STAGES]...``), no type;
- an option's value as its ``metavar`` when it has one (``--since TIME``),
  else ``N`` for integers, ``NUMBER``, ``TEXT``, ``PATH``, or the choices
  (``[tui|plain|json]``); flags show no value at all;
- no ``[x>=1]`` ranges (the help text says what a value means, and typer
  still checks the range);
- a command's summary in its group's list is its whole first sentence,
  wrapped, never cut off with ``...`` at 80 columns.

It touches typer internals (``typer.core``); if a typer release moves them,
:func:`install` does nothing and the help is only noisier.
"""

from __future__ import annotations

from typing import Any

__all__ = ["install", "value_label"]

_SUMMARY_LIMIT = 200  # characters: a first sentence, not a paragraph
_LABELS = {"int": "N", "int range": "N", "float": "NUMBER", "float range": "NUMBER"}


def value_label(typer_label: str) -> str:
    """The value shown after an option for typer's ``<label>`` (``<int range>`` -> ``N``)."""
    label = typer_label.strip("<>")
    if label in _LABELS:
        return _LABELS[label]
    if "|" in label:
        return f"[{label.removeprefix('list[').removesuffix(']')}]"
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    if label in ("str", "text"):
        return "TEXT"
    if label in ("path", "file", "directory", "dir"):
        return "PATH"
    return label.upper()


def install() -> None:
    """Patch typer's help rendering as described in the module doc (idempotent)."""
    try:
        from typer._click.core import Command
        from typer.core import TyperArgument, TyperOption, _TyperParameter
    except ImportError:  # pragma: no cover - another typer layout
        return
    if getattr(_TyperParameter, "_pivot_help_format", False):
        return
    if not all(
        hasattr(TyperArgument, name)
        for name in ("_usage_display_name", "_rich_display_name", "display_type")
    ):  # pragma: no cover - another typer layout
        return

    def argument_name(self: Any) -> str:
        return str(self.metavar) if self.metavar is not None else str(self.name).upper()

    def usage_name(self: Any) -> str:
        name = argument_name(self)
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def help_name(self: Any) -> str:
        return argument_name(self) + ("..." if self.nargs != 1 else "")

    def argument_type(self: Any, ctx: Any) -> str | None:
        del ctx
        return None  # the upper-case name says what it is

    def option_type(self: Any, ctx: Any) -> str | None:
        if self.metavar is not None:
            return str(self.metavar)
        return value_label(self.display_type(ctx))

    def no_range(self: Any) -> str | None:
        del self
        return None

    whole_summary = Command.get_short_help_str

    def summary(self: Any, limit: int = 45) -> str:
        del limit
        return whole_summary(self, limit=_SUMMARY_LIMIT)

    patches: tuple[tuple[type, str, Any], ...] = (
        (Command, "get_short_help_str", summary),
        (TyperArgument, "_usage_display_name", usage_name),
        (TyperArgument, "_rich_display_name", help_name),
        (TyperArgument, "display_type_rich", argument_type),
        (TyperOption, "display_type_rich", option_type),
        (TyperArgument, "_get_number_range_help_str", no_range),
        (TyperOption, "_get_number_range_help_str", no_range),
        (_TyperParameter, "_pivot_help_format", True),
    )
    for cls, name, value in patches:
        setattr(cls, name, value)
