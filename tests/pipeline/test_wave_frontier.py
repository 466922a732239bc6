"""The wave's frontier: which stages may start, which are skipped, looking only at what changed."""

from __future__ import annotations

from pivot.pipeline.wave_frontier import Frontier

# a -> b -> d, a -> c, e alone
UPS = {"a": [], "b": ["a"], "c": ["a"], "d": ["b"], "e": []}
ORDER = ["a", "b", "c", "d", "e"]


def _ready(f: Frontier) -> list[str]:
    names = []
    while (name := f.next_ready()) is not None:
        names.append(name)
    f.put_back(names)
    return names


def test_stages_without_upstream_are_ready_first_in_plan_order() -> None:
    f = Frontier(ORDER, UPS)
    assert f.settle({}) == []
    assert _ready(f) == ["a", "e"]


def test_a_stage_is_ready_once_all_its_upstream_succeeded() -> None:
    f = Frontier(ORDER, UPS)
    f.started("a")
    f.started("e")
    status = {"a": "succeeded"}
    assert f.settle(status) == []
    assert _ready(f) == ["b", "c"]
    f.started("b")
    assert _ready(f) == ["c"]  # b started: no longer offered
    status["b"] = "running?"  # a status that is neither success nor an end
    assert f.settle(status) == []
    assert _ready(f) == ["c"]


def test_downstream_of_a_failure_is_skipped_in_plan_order_naming_the_first_bad_upstream() -> None:
    f = Frontier(ORDER, UPS)
    f.started("a")
    assert f.settle({"a": "failed"}) == [
        ("b", "upstream failed: a"),
        ("c", "upstream failed: a"),
        ("d", "upstream failed: b"),  # a skip's own downstream follows it
    ]
    assert list(f.pending) == ["e"]
    assert _ready(f) == ["e"]


def test_a_cancelled_upstream_is_named_as_cancelled() -> None:
    f = Frontier(ORDER, UPS)
    f.started("a")
    status = {"e": "succeeded", "a": "succeeded"}
    f.settle(status)
    f.started("b")
    status["b"] = "cancelled"
    assert f.settle(status) == [("d", "upstream cancelled: b")]
    assert f.settle(status) == []  # nothing new: nothing looked at again


def test_retried_stages_are_pending_and_ready_again() -> None:
    f = Frontier(ORDER, UPS)
    f.started("a")
    f.started("e")
    f.retry(["e", "a"])
    assert list(f.pending) == ORDER
    assert _ready(f) == ["a", "e"]


def test_drain_empties_pending_in_plan_order() -> None:
    f = Frontier(ORDER, UPS)
    f.started("c")
    assert f.drain() == ["a", "b", "d", "e"]
    assert not f.pending
    assert f.next_ready() is None


class _Counting(Frontier):
    looked = 0

    def _newly_ended(self, status: dict[str, str]) -> list[str]:
        new = super()._newly_ended(status)
        self.looked += len(new)
        return new


def test_ten_thousand_independent_stages_cost_one_look_each() -> None:
    # Counted, not timed: each settle looks only at the statuses set since the last one.
    names = [f"s{i}" for i in range(10_000)]
    f = _Counting(names, {n: [] for n in names})
    status: dict[str, str] = {}
    while (name := f.next_ready()) is not None:
        f.started(name)
        status[name] = "succeeded"
        f.settle(status)
    assert len(status) == 10_000
    assert f.looked == 10_000
