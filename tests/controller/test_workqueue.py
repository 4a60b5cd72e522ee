"""kdgen.controller.workqueue with a fake clock: dedup, delays, in-flight, per-key backoff."""

from __future__ import annotations

from kdgen.controller.workqueue import WorkQueue
from tests.controller.fakes import FakeClock


def test_a_key_added_many_times_is_taken_once_with_its_oldest_since() -> None:
    clock = FakeClock()
    queue = WorkQueue(monotonic=clock)
    queue.add("a")
    clock.advance(2)
    queue.add("a")
    queue.add("b")
    assert queue.take() == [("a", 1000.0), ("b", 1002.0)]
    assert queue.take() == []


def test_delayed_keys_wait_until_due_and_the_earlier_due_wins() -> None:
    clock = FakeClock()
    queue = WorkQueue(monotonic=clock)
    queue.add("a", delay=5)
    assert queue.take() == []
    queue.add("a", delay=1)
    clock.advance(1)
    assert [k for k, _ in queue.take()] == ["a"]


def test_a_key_added_while_in_flight_comes_back_only_after_done() -> None:
    clock = FakeClock()
    queue = WorkQueue(monotonic=clock)
    queue.add("a")
    assert [k for k, _ in queue.take()] == ["a"]
    queue.add("a")  # an event while a worker holds it
    assert queue.take() == []  # never two workers on one key
    assert len(queue) == 1
    queue.done("a")
    assert [k for k, _ in queue.take()] == ["a"]
    queue.done("a")
    assert queue.take() == []


def test_limit_takes_the_earliest_due_first() -> None:
    clock = FakeClock()
    queue = WorkQueue(monotonic=clock)
    queue.add("late", delay=0.5)
    queue.add("early")
    clock.advance(1)
    assert [k for k, _ in queue.take(limit=1)] == ["early"]


def test_per_key_backoff_doubles_to_the_cap_and_forget_resets_it() -> None:
    clock = FakeClock()
    queue = WorkQueue(monotonic=clock, backoff_base=0.5, backoff_max=4.0)
    delays = []
    for _ in range(6):
        delays.append(queue.add_failed("a"))
        clock.advance(10)
        queue.take()
        queue.done("a")
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert queue.failures("a") == 6
    assert queue.add_failed("b") == 0.5  # per key
    queue.forget("a")
    assert queue.add_failed("a") == 0.5


def test_failed_key_is_not_due_before_its_backoff() -> None:
    clock = FakeClock()
    queue = WorkQueue(monotonic=clock)
    queue.add_failed("a", since=990.0)
    clock.advance(0.4)
    assert queue.take() == []
    clock.advance(0.2)
    assert queue.take() == [("a", 990.0)]
