"""Outside text is shown literally: rich markup is not interpreted, control bytes are defanged."""

from __future__ import annotations

from rich.console import Console

from pivot.terminal import plain, printable


def render(text: object) -> str:
    console = Console(width=200, color_system=None, force_terminal=False)
    with console.capture() as cap:
        console.print(plain(text))
    return cap.get()


def test_markup_is_shown_not_interpreted() -> None:
    assert render("[/]") == "[/]\n"
    assert render("[bold]x[/bold] [link=http://evil]y[/link]") == (
        "[bold]x[/bold] [link=http://evil]y[/link]\n"
    )


def test_terminal_escapes_are_made_visible() -> None:
    assert printable("a\x1b]8;;http://evil\x07b") == "a\\x1b]8;;http://evil\\x07b"
    assert printable("\x9b2J") == "\\x9b2J"
    assert printable("tab\tand\nnewline stay") == "tab\tand\nnewline stay"
    assert "\x1b" not in render("\x1b[2J")
