"""What a watcher decides: firings, limits, rate limits, job end, restart."""

from __future__ import annotations

from pivot.events.base import Event
from pivot.events.watchers import (
    ActionInterrupted,
    ActionRequested,
    ActionSucceeded,
    ActionSuppressed,
    WatcherCreated,
    WatcherMatched,
    WatcherStateChanged,
)
from pivot.jobs.book import Book, WatcherState
from pivot.jobs.decide import (
    Context,
    on_job_end,
    on_manual,
    on_match,
    on_restart,
    on_timer,
    timer_due,
)
from pivot.jobs.definition import parse_watchers
from pivot.jobs.patterns import compile_pattern

BASE = """\
name: loss
pattern: "epoch (\\\\d+) loss=([0-9.]+)"
captures: [epoch, loss]
actions:
  - type: log_event
    params: {message: "job ${JOB_ID} epoch $1 loss $loss on ${HOSTNAME}"}
"""


def _book(yaml_text: str = BASE) -> tuple[Book, WatcherState]:
    [d] = parse_watchers(yaml_text)
    book = Book()
    book.apply(WatcherCreated(watcher_id="w", name=d.name, job_id="42", definition=d.to_dict()))
    return book, book.watchers["w"]


def _line(text: str, ws: WatcherState) -> object:
    m = compile_pattern(ws.definition.pattern).match_line(text.encode())
    assert m is not None
    return m


def _feed(book: Book, ws: WatcherState, lines: list[str], now: float = 1000.0) -> list[Event]:
    out: list[Event] = []
    for i, text in enumerate(lines):
        evs = on_match(ws, _line(text, ws), Context(now=now + i * 0.01, hostname="n1"))  # type: ignore[arg-type]
        book.apply_all(evs)
        out.extend(evs)
    return out


def _of(events: list[Event], cls: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, cls)]


OUTSIDE = BASE + "  - type: notify_webhook\n    params: {message: 'loss $loss'}\n"


def test_a_watcher_fires_on_every_match_by_default_as_in_ssync() -> None:
    book, ws = _book()
    events = _feed(book, ws, [f"epoch {i} loss=0.{i}" for i in range(1, 21)])
    assert len(_of(events, ActionRequested)) == 20
    assert ws.state == "active" and _of(events, WatcherStateChanged) == []


def test_a_match_fires_substituted_actions_then_triggered() -> None:
    book, ws = _book(BASE.replace("actions:", "max_triggers: 1\nactions:"))
    events = _feed(book, ws, ["epoch 3 loss=0.25"])
    [matched] = _of(events, WatcherMatched)
    assert matched.captures == {"epoch": "3", "loss": "0.25"} and matched.fired
    [req] = _of(events, ActionRequested)
    assert req.params == {"message": "job 42 epoch 3 loss 0.25 on n1"}
    assert req.correlation_id == matched.match_id
    assert ws.state == "triggered"
    assert _feed(book, ws, ["epoch 4 loss=0.1"]) == []


def test_max_triggers_two_with_five_matches_fires_exactly_twice() -> None:
    book, ws = _book(BASE.replace("actions:", "max_triggers: 2\nactions:"))
    events = _feed(book, ws, [f"epoch {i} loss=0.{i}" for i in range(5)])
    assert len(_of(events, ActionRequested)) == 2
    assert [e.new for e in _of(events, WatcherStateChanged)] == ["triggered"]


def test_condition_gates_the_actions() -> None:
    book, ws = _book(
        BASE.replace("actions:", 'condition: "float(loss) < 0.5"\nmax_triggers: 0\nactions:')
    )
    events = _feed(book, ws, ["epoch 1 loss=0.9", "epoch 2 loss=0.3"])
    assert [m.condition_result for m in _of(events, WatcherMatched)] == [False, True]
    assert len(_of(events, ActionRequested)) == 1


def test_condition_error_is_recorded_not_raised() -> None:
    book, ws = _book(
        BASE.replace("([0-9.]+)", "(\\\\S+)").replace(
            "actions:", 'condition: "float(loss) < 1"\nactions:'
        )
    )
    [m] = _of(_feed(book, ws, ["epoch 1 loss=abc"]), WatcherMatched)
    assert not m.condition_result and "failed" in m.condition_error


def test_hundred_matches_rate_limit_outside_actions_never_our_own_records() -> None:
    book, ws = _book(OUTSIDE)
    events = _feed(book, ws, [f"epoch {i} loss=0.1" for i in range(100)])
    requested = [r.action_type for r in _of(events, ActionRequested)]
    assert requested.count("log_event") == 100  # our own record: never suppressed
    assert requested.count("notify_webhook") == 10  # the outside world: 10 per minute
    suppressed = _of(events, ActionSuppressed)
    assert [s.action_type for s in suppressed] == ["notify_webhook"] * 90
    assert "rate limit" in suppressed[0].reason
    # A minute later the budget is back.
    later = _feed(book, ws, ["epoch 200 loss=0.1"], now=1061.0)
    assert [r.action_type for r in _of(later, ActionRequested)] == ["log_event", "notify_webhook"]


def test_a_firing_whose_only_actions_are_suppressed_does_not_count_as_a_trigger() -> None:
    head, _, _ = BASE.partition("  - type: log_event")
    only_outside = (
        head.replace("actions:", "rate_limit_per_minute: 1\nmax_triggers: 2\nactions:")
        + "  - type: notify_webhook\n    params: {message: 'loss $loss'}\n"
    )
    book, ws = _book(only_outside)
    events = _feed(book, ws, ["epoch 1 loss=1", "epoch 2 loss=2", "epoch 3 loss=3"])
    assert [m.fired for m in _of(events, WatcherMatched)] == [True, False, False]
    assert ws.state == "active" and ws.trigger_count == 1


def test_timer_mode_fires_with_cached_captures_and_is_rate_limited() -> None:
    book, ws = _book(
        BASE.replace(
            "actions:",
            "timer_mode_enabled: true\ntimer_interval_seconds: 1\n"
            "rate_limit_per_minute: 3\nactions:",
        ).replace("type: log_event", "type: notify_webhook")
    )
    _feed(book, ws, ["epoch 7 loss=0.5"])
    assert ws.state == "active"  # timer mode never becomes `triggered` by matches
    assert not timer_due(ws, 1000.5)
    requested, suppressed = 0, 0
    for t in range(1, 10):
        now = 1000.0 + t * 1.5
        assert timer_due(ws, now)
        evs = on_timer(ws, Context(now=now, hostname="n1"))
        book.apply_all(evs)
        requested += len(_of(evs, ActionRequested))
        suppressed += len(_of(evs, ActionSuppressed))
        for r in _of(evs, ActionRequested):
            assert r.params["message"] == "job 42 epoch 7 loss 0.5 on n1"
    assert (requested, suppressed) == (2, 7)  # 3 per minute, one used by the match


def test_now_is_the_decisions_own_time_so_replay_gives_the_same_value() -> None:
    book, ws = _book(BASE.replace("on ${HOSTNAME}", "at ${NOW}"))
    [req] = _of(_feed(book, ws, ["epoch 1 loss=0.5"], now=1_700_000_000.75), ActionRequested)
    assert req.params["message"] == "job 42 epoch 1 loss 0.5 at 1700000000"


JOB_END = BASE.replace(
    "actions:",
    "trigger_on_job_end: true\nactions:",
).replace('message: "job', 'message: "${JOB_STATE} job')


def test_job_end_keeps_the_capture_and_fires_once_on_failed() -> None:
    book, ws = _book(JOB_END)
    during = _feed(book, ws, ["epoch 9 loss=0.7"])
    assert _of(during, ActionRequested) == []  # job-end watchers only capture while running
    evs = on_job_end(ws, Context(now=2000.0, hostname="n1", job_state="failed"))
    book.apply_all(evs)
    [req] = _of(evs, ActionRequested)
    assert req.params["message"] == "failed job 42 epoch 9 loss 0.7 on n1"
    assert req.cause == "job_end"
    assert ws.state == "completed"
    assert on_job_end(ws, Context(now=2001.0, hostname="n1", job_state="failed")) == []


def test_job_end_cancelled_with_default_states_runs_nothing() -> None:
    _, ws = _book(JOB_END)
    evs = on_job_end(ws, Context(now=2000.0, hostname="n1", job_state="cancelled"))
    assert _of(evs, ActionRequested) == []
    assert [e.new for e in _of(evs, WatcherStateChanged)] == ["completed"]


def test_paused_watcher_ignores_matches_but_manual_trigger_works() -> None:
    book, ws = _book()
    ws.state = "paused"
    assert _feed(book, ws, ["epoch 1 loss=0.1"]) == []
    evs = on_manual(ws, Context(now=1.0, hostname="h"), _line("epoch 5 loss=0.2", ws))  # type: ignore[arg-type]
    assert len(_of(evs, ActionRequested)) == 1
    assert ws.state == "paused"


def test_run_command_is_split_before_substitution() -> None:
    text = (
        "name: r\npattern: 'msg=(.*)'\nactions:\n  - type: run_command\n"
        "    params: {command: \"notify-send 'loss is' $1 ${JOB_ID}\"}\n"
    )
    book, ws = _book(text)
    [req] = _of(_feed(book, ws, ["msg=a b; rm -rf / $(id) `x` && 'q"]), ActionRequested)
    assert req.params["argv"] == ["notify-send", "loss is", "a b; rm -rf / $(id) `x` && 'q", "42"]


def test_captured_option_is_refused() -> None:
    text = (
        "name: r\npattern: 'msg=(.*)'\nactions:\n"
        "  - type: run_command\n    params: {command: 'echo $1'}\n"
    )
    book, ws = _book(text)
    [req] = _of(_feed(book, ws, ["msg=--help"]), ActionRequested)
    # Refused for what this match captured: the match's error, not the watcher's.
    assert "would be an option" in req.params["refused"]
    assert "error" not in req.params


def test_restart_reports_interrupted_intents_and_retries_only_idempotent() -> None:
    book, ws = _book(BASE.replace("actions:", "actions:\n  - type: resubmit"))
    book.apply_all(_feed(book, ws, ["epoch 1 loss=0.1"]))
    reqs = list(ws.pending.values())
    assert {r.action_type for r in reqs} == {"resubmit", "log_event"}
    # log_event finished; resubmit was cut off.
    done = next(r for r in reqs if r.action_type == "log_event")
    book.apply(ActionSucceeded(watcher_id="w", action_id=done.action_id, action_type="log_event"))
    events, rerun = on_restart(book, 3000.0)
    [interrupted] = _of(events, ActionInterrupted)
    assert interrupted.action_type == "resubmit" and not interrupted.retried
    assert rerun == []
    book2, ws2 = _book()
    _feed(book2, ws2, ["epoch 1 loss=0.1"])
    events, rerun = on_restart(book2, 3000.0)
    assert [r.action_type for r in rerun] == ["log_event"]
    assert _of(events, ActionInterrupted)[0].retried
