"""The pure parts of `pivot ui`: binding rules, the token check, messages, request parsing."""

from __future__ import annotations

import pytest

from pivot.events.pipeline import StageFailed
from pivot.events.store import Recorded
from pivot.events.watchers import WatcherCreated, WatcherMatched, WatcherStateChanged
from pivot.jobs.book import Book
from pivot.ui.api_watchers import parse_new_watcher
from pivot.ui.auth import BindError, check_bind, is_loopback, token_ok
from pivot.ui.errors import ApiError
from pivot.ui.messages import messages_for


def test_loopback_needs_no_token_anything_else_does() -> None:
    for host in ("127.0.0.1", "127.5.5.5", "::1", "[::1]", "localhost"):
        assert is_loopback(host)
        check_bind(host, "")
    for host in ("0.0.0.0", "::", "192.168.1.4", "example.org"):
        assert not is_loopback(host)
        with pytest.raises(BindError, match="without a token"):
            check_bind(host, "")
        check_bind(host, "t0ken")


def test_the_token_comes_as_a_bearer_header_or_a_subprotocol() -> None:
    assert token_ok("abc", {"authorization": "Bearer abc"}, [])
    assert token_ok("abc", {"authorization": "bearer  abc"}, [])
    assert token_ok("abc", {}, ["pivot", "bearer.abc"])
    assert not token_ok("abc", {"authorization": "Bearer abcd"}, [])
    assert not token_ok("abc", {"authorization": "abc"}, [])
    assert not token_ok("abc", {}, ["pivot", "bearer.ab"])
    assert not token_ok("abc", {}, [])


def test_a_watcher_event_and_its_state_change_carry_the_job() -> None:
    book = Book()
    created = WatcherCreated(watcher_id="w1", name="n", job_id="42", host="local",
                             definition={"name": "n", "pattern": "x", "actions": [
                                 {"type": "cancel_job"}]})  # fmt: skip
    book.apply(created)
    [event, state] = messages_for(Recorded(1, created), book)
    assert event["type"] == "watcher_event" and event["job_id"] == "42"
    assert state == {"type": "watcher_state_change", "channel": "watchers", "seq": 1,
                     "job_id": "42", "watcher_id": "w1", "state": "active"}  # fmt: skip
    matched = WatcherMatched(watcher_id="w1", match_id="m", line="<script>x</script>",
                             captures={"a": "1"})  # fmt: skip
    [m] = messages_for(Recorded(2, matched), book)
    assert m["event"]["matched_text"] == "<script>x</script>"  # text, escaped by the page
    assert m["event"]["captured_vars"] == {"a": "1"} and m["event"]["hostname"] == "local"
    changed = WatcherStateChanged(watcher_id="w1", old="active", new="triggered")
    assert messages_for(Recorded(3, changed), book)[1]["state"] == "triggered"
    [stage] = messages_for(Recorded(4, StageFailed(stage="train", error="boom")), book)
    assert (stage["channel"], stage["stage"], stage["state"]) == ("pipeline", "train", "failed")


def test_a_create_request_names_what_is_missing() -> None:
    assert parse_new_watcher({"job_id": 12, "name": "n", "trigger_job_states": ["failed"]}) == (
        "12", "local", {"name": "n", "job_end_states": ["failed"]})  # fmt: skip
    for body, field in (([], "body"), ({}, "job_id"), ({"job_id": True}, "job_id"),
                        ({"job_id": "1;id"}, "job_id"), ({"job_id": "1", "hostname": 3},
                                                         "hostname")):  # fmt: skip
        with pytest.raises(ApiError) as err:
            parse_new_watcher(body)
        assert err.value.field == field and 400 <= err.value.status < 500


def test_requests_from_other_sites_or_rebound_names_are_refused() -> None:
    from pivot.ui.auth import allowed_hosts_for, same_origin

    local = allowed_hosts_for("127.0.0.1")
    assert same_origin({"host": "127.0.0.1:8765"}, local) is None  # curl, scripts
    assert same_origin({"host": "localhost:8765", "origin": "http://localhost:8765"}, local) is None
    assert same_origin({"host": "[::1]:8765"}, local) is None
    assert same_origin({"host": "[::1]"}, local) is None  # port 80: no port in Host
    assert same_origin({"host": "localhost"}, local) is None
    assert "cross-origin" in str(
        same_origin({"host": "127.0.0.1:8765", "origin": "https://evil.example"}, local)
    )
    assert same_origin({"host": "127.0.0.1:8765", "origin": "null"}, local) is not None
    assert "not this server" in str(same_origin({"host": "evil.example:8765"}, local))
    anywhere = allowed_hosts_for("0.0.0.0")  # a token guards it; any name reaches it
    assert anywhere == frozenset()
    assert same_origin({"host": "box.lan:8765", "origin": "http://box.lan:8765"}, anywhere) is None
    assert same_origin({"host": "box.lan:8765", "origin": "http://evil.example"}, anywhere)
