"""notify_email and notify_webhook against real servers on loopback; retries and disabling."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pivot.events.base import Event
from pivot.events.watchers import (
    ActionFailed,
    ActionRequested,
    ActionSucceeded,
    WatcherCreated,
    WatcherStateChanged,
)
from pivot.jobs.action_run import execute_batch
from pivot.jobs.actions import ActionRunner, JobContext
from pivot.jobs.batch import ActionBatch
from pivot.jobs.book import Book
from pivot.jobs.config import Config, SmtpConfig, WebhookConfig
from pivot.jobs.decide import Context, on_match
from pivot.jobs.definition import parse_watchers
from pivot.jobs.patterns import compile_pattern

from testkit.jobs_servers import Mailbox, smtp  # noqa: F401 - smtp: fixture


class _Hook:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []


@pytest.fixture
def webhook() -> Iterator[tuple[str, _Hook]]:
    hook = _Hook([])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            hook.bodies.append(json.loads(self.rfile.read(length)))
            status = hook.statuses.pop(0) if hook.statuses else 200
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", hook
    server.shutdown()
    server.server_close()


def _requests(yaml_text: str, line: str) -> tuple[list[ActionRequested], int]:
    [d] = parse_watchers(yaml_text)
    book = Book()
    book.apply(WatcherCreated(watcher_id="w", name=d.name, job_id="77", definition=d.to_dict()))
    m = compile_pattern(d.pattern).match_line(line.encode())
    assert m is not None
    events = on_match(book.watchers["w"], m, Context(now=1.0, hostname="node1"))
    return [e for e in events if isinstance(e, ActionRequested)], d.max_failures


def _runner(config: Config) -> ActionRunner:
    return ActionRunner(config, {}, lambda *_: (_ for _ in ()).throw(AssertionError()))


def test_email_is_sent_and_captured_text_cannot_add_headers(
    smtp: tuple[int, Mailbox],
) -> None:
    port, box = smtp
    config = Config(smtp=SmtpConfig(host="127.0.0.1", port=port, to=("ops@example.org",)))
    text = (
        "name: mail\npattern: 'ERROR (.*)'\nactions:\n  - type: notify_email\n"
        "    params: {subject: 'job ${JOB_ID}: $1', body: 'line: $0'}\n"
    )
    [req], _ = _requests(text, "ERROR disk full\rBcc: victim@example.org")
    out = _runner(config).run(req, JobContext(host="local", job_id="77"))
    assert out.detail == "mailed ops@example.org"
    [(rcpts, raw)] = box.messages
    assert rcpts == ["ops@example.org"]
    msg = message_from_bytes(raw)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "job 77: disk full Bcc: victim@example.org"


def test_webhook_posts_a_slack_body(webhook: tuple[str, _Hook]) -> None:
    url, hook = webhook
    text = (
        "name: hook\npattern: 'loss=(\\S+)'\nactions:\n  - type: notify_webhook\n"
        "    params: {message: '\"quoted\" loss $1 on ${HOSTNAME}'}\n"
    )
    [req], _ = _requests(text, 'loss=0.5"},"x":{"')
    out = _runner(Config(webhook=WebhookConfig(url=url))).run(req, JobContext("local", "77"))
    assert out.detail == "webhook answered HTTP 200"
    assert hook.bodies == [{"text": '"quoted" loss 0.5"},"x":{" on node1'}]


def test_ssync_notify_slack_posts_slacks_body_to_its_url(webhook: tuple[str, _Hook]) -> None:
    url, hook = webhook
    text = (
        "name: slack\npattern: 'Progress: (\\d+)%'\ncaptures: [progress]\nactions:\n"
        "  - type: notify_slack\n"
        f"    params: {{channel: '#alerts', url: '{url}', "
        "message: 'Job ${JOB_ID} is ${progress}% complete'}\n"
    )
    [req], _ = _requests(text, "Progress: 50%")
    out = _runner(Config()).run(req, JobContext("local", "77"))
    assert out.detail == "webhook answered HTTP 200"
    assert hook.bodies == [{"text": "Job 77 is 50% complete", "channel": "#alerts"}]


def test_ssync_message_is_the_mail_body_and_reason_is_recorded(smtp: tuple[int, Mailbox]) -> None:
    port, box = smtp
    config = Config(smtp=SmtpConfig(host="127.0.0.1", port=port, to=("ops@example.org",)))
    text = (
        "name: oom\npattern: '(CUDA out of memory)'\ncaptures: [error]\nactions:\n"
        "  - type: cancel_job\n    params: {reason: 'CUDA out of memory'}\n"
        "  - type: notify_email\n"
        "    params: {subject: 'Job ${JOB_ID} cancelled - CUDA OOM', message: 'Error: $error'}\n"
    )
    cancel, mail = _requests(text, "RuntimeError: CUDA out of memory.")[0]
    assert cancel.params == {"reason": "CUDA out of memory"}
    _runner(config).run(mail, JobContext("local", "77"))
    [(_, raw)] = box.messages
    msg = message_from_bytes(raw)
    assert msg["Subject"] == "Job 77 cancelled - CUDA OOM"
    assert str(msg.get_payload()).strip() == "Error: CUDA out of memory"


TWO_ACTIONS = (
    "name: two\npattern: 'boom'\nmax_failures: {mf}\nactions:\n"
    "  - type: log_event\n    params: {{message: first}}\n"
    "  - type: notify_webhook\n    params: {{message: second}}\n"
)


def _batch(reqs: list[ActionRequested], max_failures: int) -> ActionBatch:
    return ActionBatch(tuple(reqs), JobContext("local", "77"), max_failures, 0)


def test_failed_action_is_retried_without_repeating_earlier_ones(
    webhook: tuple[str, _Hook],
) -> None:
    url, hook = webhook
    hook.statuses = [500]
    reqs, mf = _requests(TWO_ACTIONS.format(mf=3), "boom")
    log: list[Event] = []
    failures: dict[str, int] = {}
    runner = _runner(Config(webhook=WebhookConfig(url=url)))
    retry = execute_batch(_batch(reqs, mf), runner, log.extend, failures, retry_delay=0.01)
    assert retry is not None and retry.delay == 0.01
    assert [r.action_type for r in retry.batch.requests] == ["notify_webhook"]
    assert retry.batch.requests[0].attempt == 2
    assert execute_batch(retry.batch, runner, log.extend, failures) is None
    kinds = [(type(e).__name__, getattr(e, "action_type", "")) for e in log]
    assert kinds == [
        ("ActionSucceeded", "log_event"),
        ("ActionFailed", "notify_webhook"),
        ("ActionRequested", "notify_webhook"),  # the retry's own intent
        ("ActionSucceeded", "notify_webhook"),
    ]
    assert len(hook.bodies) == 2 and failures == {"w": 0}


def test_max_failures_two_and_two_failures_disable(webhook: tuple[str, _Hook]) -> None:
    url, hook = webhook
    hook.statuses = [500, 503]
    reqs, mf = _requests(TWO_ACTIONS.format(mf=2), "boom")
    log: list[Event] = []
    failures: dict[str, int] = {}
    runner = _runner(Config(webhook=WebhookConfig(url=url)))
    retry = execute_batch(_batch(reqs, mf), runner, log.extend, failures, retry_delay=0.01)
    assert retry is not None
    assert execute_batch(retry.batch, runner, log.extend, failures) is None
    errors = [e.error for e in log if isinstance(e, ActionFailed)]
    assert errors == ["webhook answered HTTP 500", "webhook answered HTTP 503"]
    [disabled] = [e for e in log if isinstance(e, WatcherStateChanged)]
    assert disabled.new == "disabled"
    assert [type(e).__name__ for e in log].count("ActionSucceeded") == 1


def test_unreachable_webhook_is_a_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    reqs, mf = _requests(TWO_ACTIONS.format(mf=1), "boom")
    log: list[Event] = []
    runner = _runner(Config(webhook=WebhookConfig(url=f"http://127.0.0.1:{port}/")))
    assert execute_batch(_batch(reqs, mf), runner, log.extend, {}) is None
    [failed] = [e for e in log if isinstance(e, ActionFailed)]
    assert "unreachable" in failed.error
    assert isinstance(log[-1], WatcherStateChanged) and log[-1].new == "disabled"
    assert next(e for e in log if isinstance(e, ActionSucceeded)).action_type == "log_event"


MILESTONE = (
    "name: Accuracy Milestones\npattern: 'Val Accuracy: ([0-9.]+)'\ncaptures: [accuracy]\n"
    "max_triggers: 1\nmax_failures: 1\nactions:\n"
    "  - type: log_event\n    params: {message: 'reached $accuracy'}\n"
    "  - type: run_command\n    params: {command: 'cp best_model.pt milestones/'}\n"
    "  - type: pause_watcher\n"
)


def test_a_disabled_watchers_remaining_actions_are_closed_and_the_real_state_logged() -> None:
    from pivot.events.store import Recorded
    from pivot.events.watchers import ActionSuppressed, WatcherStateChanged
    from pivot.jobs.book import fold
    from pivot.projections.watcher_history import WATCHER_HISTORY

    [d] = parse_watchers(MILESTONE)
    book = Book()
    created = WatcherCreated(watcher_id="w", name=d.name, job_id="77", definition=d.to_dict())
    book.apply(created)
    ws = book.watchers["w"]
    m = compile_pattern(d.pattern).match_line(b"Val Accuracy: 0.96")
    assert m is not None
    decided = on_match(ws, m, Context(now=1.0, hostname="n"))
    book.apply_all(decided)
    assert ws.state == "triggered"
    reqs = [e for e in decided if isinstance(e, ActionRequested)]
    batch = ActionBatch(tuple(reqs), JobContext("local", "77"), 1, 0, watcher_state=ws.state)
    log: list[Event] = []
    # cp is not on the allowlist: the action fails, max_failures 1 disables the watcher.
    assert execute_batch(batch, _runner(Config()), log.extend, {}) is None
    changed = [e for e in log if isinstance(e, WatcherStateChanged)]
    assert [(c.old, c.new) for c in changed] == [("triggered", "disabled")]
    [closed] = [e for e in log if isinstance(e, ActionSuppressed)]
    assert (closed.action_type, closed.action_id) == ("pause_watcher", reqs[2].action_id)
    every = [created, *decided, *log]
    records = [Recorded(seq=i + 1, event=e) for i, e in enumerate(every)]
    assert fold(records).watchers["w"].pending == {}
    state = WATCHER_HISTORY.initial()
    for r in records:
        state = WATCHER_HISTORY.apply(state, r)
    results = [(a["type"], a["result"]) for a in state["watchers"]["w"]["actions"]]
    assert results == [
        ("log_event", "succeeded"),
        ("run_command", "failed"),
        ("pause_watcher", "suppressed"),
    ]
