"""The job watchers' lease: its rules as pure functions, and the row on a real store."""

from __future__ import annotations

import subprocess
import sys

from pivot.events.store import EventStore
from pivot.jobs.config import Config
from pivot.jobs.host_lease import (
    HostLease,
    LeaseRow,
    Sighting,
    holder_trusts,
    may_take,
    observe,
    process_gone,
    process_token,
)
from pivot.jobs.runtime import start_watchers

from testkit.jobs_servers import store  # noqa: F401 - pytest fixture


def row(holder: str = "a", beat: int = 1, ttl: float = 10.0) -> LeaseRow:
    return LeaseRow(holder, 1, "h", "pivot watch", "tok", 0.0, beat, ttl)


def test_a_free_lease_is_taken() -> None:
    assert may_take(None, None, 0.0, holder_gone=False) == (True, "free")


def test_a_moving_beat_is_alive_and_a_still_one_expires_after_ttl_of_our_clock() -> None:
    seen = observe(row(beat=1), None, now=100.0)
    assert seen == Sighting("a", 1, 100.0)
    assert may_take(row(beat=1), seen, 109.9, holder_gone=False) == (False, "")
    assert may_take(row(beat=1), seen, 110.0, holder_gone=False) == (True, "expired")
    # Renewed meanwhile: the count starts again from when we saw it move.
    seen2 = observe(row(beat=2), seen, now=109.0)
    assert seen2 == Sighting("a", 2, 109.0)
    assert may_take(row(beat=2), seen2, 118.0, holder_gone=False) == (False, "")
    # A row we never saw before is never taken on its first look.
    assert may_take(row(beat=7), seen2, 500.0, holder_gone=False) == (False, "")


def test_a_gone_holder_is_replaced_at_once() -> None:
    assert may_take(row(), None, 0.0, holder_gone=True) == (True, "holder gone")


def test_the_holder_stops_trusting_its_lease_at_half_the_ttl() -> None:
    assert holder_trusts(100.0, 104.9, 10.0)
    assert not holder_trusts(100.0, 105.0, 10.0)
    assert not holder_trusts(None, 0.0, 10.0)


def test_process_tokens_tell_a_live_process_from_a_dead_or_reused_pid() -> None:
    assert not process_gone(process_token())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    token = process_token(child.pid)
    assert not process_gone(token)
    child.kill()  # a zombie until reaped: gone already
    assert _wait(lambda: process_gone(token))
    child.wait()
    assert process_gone(token)
    machine, pid, start = token.rsplit(":", 2)
    assert process_gone(f"{machine}:{pid}:{int(start) + 1}")  # same pid, another process
    # Another machine's process is never known to be gone: it expires instead.
    assert not process_gone(f"other-boot/1:{pid}:{start}")


def _wait(cond: object, tries: int = 200) -> bool:
    import time

    for _ in range(tries):
        if callable(cond) and cond():
            return True
        time.sleep(0.01)
    return False


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_holder_renews_the_other_waits_then_takes_an_expired_lease(store: EventStore) -> None:
    clock = Clock()
    a = HostLease(store.backend, ttl=10, command="a", clock=clock, gone=lambda _t: False)
    b = HostLease(store.backend, ttl=10, command="b", clock=clock, gone=lambda _t: False)
    first = a.try_acquire()
    assert first.acquired and first.reason == "free"
    held = b.try_acquire()
    assert not held.acquired and held.other is not None and held.other.command == "a"
    clock.now += 9
    assert a.renew() is True  # beat moves: b starts counting again
    assert not b.try_acquire().acquired
    clock.now += 9.5
    assert not b.try_acquire().acquired  # 9.5 s since the beat moved
    assert not a.trusted()  # a stopped trusting at 5 s without a renewal
    clock.now += 1
    took = b.try_acquire()
    assert took.acquired and took.reason == "expired" and took.other is not None
    assert took.other.holder == a.me.holder
    # The old holder finds out at its next renewal, and acts no more.
    assert a.renew() is False
    assert not a.trusted()
    assert b.trusted()
    b.release()
    assert b.read() is None
    assert a.try_acquire().acquired  # free again


def test_of_two_candidates_for_a_gone_holder_exactly_one_wins(store: EventStore) -> None:
    dead = HostLease(store.backend, gone=lambda _t: False)
    assert dead.try_acquire().acquired
    dead_token = dead.me.process
    fast = HostLease(store.backend, gone=lambda t: t == dead_token)

    def judged_then_overtaken(token: str) -> bool:
        # The slow candidate has read the dead holder's row; the fast one
        # takes the lease before the slow one writes.
        assert fast.try_acquire().acquired
        return token == dead_token

    slow = HostLease(store.backend, gone=judged_then_overtaken)
    attempt = slow.try_acquire()
    assert not attempt.acquired
    assert attempt.other is not None and attempt.other.holder == fast.me.holder
    current = slow.read()
    assert current is not None and current.holder == fast.me.holder


def test_a_second_runtime_on_one_store_stands_by_then_takes_over(store: EventStore) -> None:
    config = Config(lease_seconds=2)
    first = start_watchers(store, config, tick_seconds=3600, command="first")
    second = start_watchers(store, config, tick_seconds=3600, command="second")
    try:
        assert first.hosting and first.running
        assert not second.hosting
        assert not second.poll_now()  # standing by: nothing polled
        standby = [r.event for r in store.read(types=["watchers.standing_by"])]
        assert len(standby) == 1
        first.stop()
        assert second.wait_hosting(30)
        started = [r.event for r in store.read(types=["watchers.hosting_started"])]
        assert [getattr(e, "command", "") for e in started] == ["first", "second"]
        assert second.poll_now()
    finally:
        first.stop()
        second.stop()
    stopped = [r.event for r in store.read(types=["watchers.hosting_stopped"])]
    assert [getattr(e, "reason", "") for e in stopped] == ["stopped", "stopped"]


def test_a_host_whose_lease_lapsed_acts_no_more_then_starts_again_from_the_log(
    store: EventStore,
) -> None:
    from pivot.jobs.definition import parse_watchers
    from pivot.jobs.manage import add_watchers
    from pivot.jobs.runtime import WatcherRuntime

    watcher = "name: w\npattern: x\nactions: [{type: log_event, params: {message: m}}]\n"
    add_watchers(store, parse_watchers(watcher), "1", "nowhere")
    clock = Clock()
    lease = HostLease(store.backend, ttl=60, clock=clock)  # the keeper waits 12 s: we step it
    runtime = WatcherRuntime(store, Config(), lease, tick_seconds=3600, retry_delay=1)
    runtime.start()
    try:
        assert runtime.hosting
        assert runtime.poll_now()
        clock.now += 31  # no renewal for more than ttl / 2: the host may not decide
        add_watchers(store, parse_watchers(watcher), "2", "nowhere2")
        assert runtime.poll_now()
        failed = [getattr(r.event, "host", "") for r in store.read(types=["job.lookup_failed"])]
        assert failed == ["nowhere"]  # nowhere2's failure was refused by the fence
        runtime._step()  # the keeper's next look: renewed, and a fresh term from the log
        assert runtime.hosting
        assert runtime.poll_now()
    finally:
        runtime.stop()
    failed = [getattr(r.event, "host", "") for r in store.read(types=["job.lookup_failed"])]
    assert failed == ["nowhere", "nowhere2"]
    stopped = [
        getattr(r.event, "reason", "") for r in store.read(types=["watchers.hosting_stopped"])
    ]
    assert stopped[0].startswith("the lease lapsed") and stopped[1:] == ["stopped"]
    started = [
        getattr(r.event, "reason", "") for r in store.read(types=["watchers.hosting_started"])
    ]
    assert started == ["free", "still held"]
