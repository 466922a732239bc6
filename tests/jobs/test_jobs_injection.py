"""Captured text full of shell syntax reaches no shell: a corpus through run_command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pivot.events.watchers import ActionRequested, WatcherCreated
from pivot.jobs.actions import ActionError, ActionRunner, JobContext
from pivot.jobs.book import Book
from pivot.jobs.config import Config
from pivot.jobs.decide import Context, on_match
from pivot.jobs.definition import parse_watchers
from pivot.jobs.patterns import compile_pattern


def _corpus(canary: Path) -> list[str]:
    c = str(canary)
    return [
        f"; touch {c}",
        f"&& touch {c}",
        f"| touch {c}",
        f"$(touch {c})",
        f"`touch {c}`",
        f"'; touch {c}; echo '",
        f'"; touch {c}; echo "',
        f"\ntouch {c}",
        f"x > {c}",
        f"${{IFS}}touch${{IFS}}{c}",
        "$HOME ${PATH} $1 $0 $$",
        "* ? [a-z] ~root",
        f"a\\; touch {c}",
        "%s%n%x",
        "\x00nul",
    ]


def _runner(allow: tuple[str, ...]) -> ActionRunner:
    def no_host(host: str, coro: object, timeout: float) -> object:
        raise AssertionError("run_command never goes through a host transport")

    return ActionRunner(Config(run_command_allow=allow), {}, no_host)  # type: ignore[arg-type]


def _request(template: str, line: str) -> ActionRequested:
    text = (
        "name: inj\npattern: 'msg=(?P<text>.*)'\nactions:\n"
        f"  - type: run_command\n    params: {{command: {template!r}}}\n"
    )
    [d] = parse_watchers(text)
    book = Book()
    book.apply(WatcherCreated(watcher_id="w", name="inj", job_id="1", definition=d.to_dict()))
    m = compile_pattern(d.pattern).match_line(line.encode())
    assert m is not None
    [req] = [
        e
        for e in on_match(book.watchers["w"], m, Context(now=1.0, hostname="h"))
        if isinstance(e, ActionRequested)
    ]
    return req


@pytest.mark.parametrize("template", ["echo $1", "echo ${text}", "echo 'said:' $text", "echo $0"])
def test_shell_syntax_in_captures_is_passed_verbatim(tmp_path: Path, template: str) -> None:
    echo = shutil.which("echo")
    assert echo is not None
    runner = _runner(("echo",))
    canary = tmp_path / "pwned"
    for payload in _corpus(canary):
        clean = payload.replace("\n", " ").replace("\x00", "")
        req = _request(template, f"msg={clean}")
        out = runner.run(req, JobContext(host="local", job_id="1"))
        expected = f"msg={clean}" if template.endswith("$0") else clean
        assert out.detail.endswith(expected.strip()), (payload, out.detail)
        assert not canary.exists(), payload


def test_program_not_on_the_allowlist_is_refused(tmp_path: Path) -> None:
    runner = _runner(("echo",))
    req = _request("touch $1", f"msg={tmp_path / 'x'}")
    with pytest.raises(ActionError, match="'touch' is not allowed"):
        runner.run(req, JobContext(host="local", job_id="1"))
    assert not (tmp_path / "x").exists()


def test_captured_text_cannot_become_an_option() -> None:
    runner = _runner(("echo",))
    req = _request("echo $1", "msg=-e")
    with pytest.raises(ActionError, match="would be an option"):
        runner.run(req, JobContext(host="local", job_id="1"))


def test_failing_command_is_a_failure() -> None:
    runner = _runner(("false",))
    with pytest.raises(ActionError, match="exited 1"):
        runner.run(_request("false $1", "msg=x"), JobContext(host="local", job_id="1"))
