"""kdgen.controller.leaderelection with a fake Lease API and a fake clock (client-go's model)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from kdgen.controller.leaderelection import ElectionOptions, LeaderElector
from kdgen.errors import ClusterError
from tests.controller.fakes import FakeClock

OPTIONS: dict[str, Any] = {"lease_duration": 15.0, "renew_deadline": 10.0, "retry_period": 2.0}


class FakeLeases:
    """One Lease with compare-and-swap on ``metadata.resourceVersion``."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ClusterError("connection refused")

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._check()
        return copy.deepcopy(self.lease)

    def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check()
        if self.lease is not None:
            raise ClusterError("already exists", status=409)
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    def replace_lease(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check()
        assert self.lease is not None
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise ClusterError("conflict", status=409)
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    @property
    def holder(self) -> str:
        return str(((self.lease or {}).get("spec") or {}).get("holderIdentity") or "")


def elector(leases: FakeLeases, clock: FakeClock, identity: str, events: list[str]):
    return LeaderElector(
        leases,
        ElectionOptions(identity=identity, **OPTIONS),
        on_started=lambda: events.append(f"{identity} started"),
        on_stopped=lambda: events.append(f"{identity} stopped"),
        monotonic=clock,
        wall=lambda: datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_first_replica_acquires_the_other_waits() -> None:
    leases, clock, events = FakeLeases(), FakeClock(), list[str]()
    a, b = elector(leases, clock, "a", events), elector(leases, clock, "b", events)
    a.step()
    b.step()
    assert (a.is_leader(), b.is_leader(), leases.holder) == (True, False, "a")
    assert events == ["a started"]
    assert leases.lease is not None
    assert leases.lease["spec"]["leaseTransitions"] == 0


def test_a_dead_leader_is_replaced_once_its_record_is_stale_by_our_own_clock() -> None:
    leases, clock, events = FakeLeases(), FakeClock(), list[str]()
    a, b = elector(leases, clock, "a", events), elector(leases, clock, "b", events)
    a.step()
    b.step()  # b observes a's record now
    clock.advance(14.9)
    b.step()
    assert not b.is_leader()  # not yet: 15 s have not passed since b saw the record change
    clock.advance(0.2)
    b.step()
    assert (b.is_leader(), leases.holder) == (True, "b")
    assert leases.lease is not None
    assert leases.lease["spec"]["leaseTransitions"] == 1
    # a comes back: it sees b's lease and stops leading without writing.
    a.step()
    assert not a.is_leader()
    assert events == ["a started", "b started", "a stopped"]


def test_renewing_leader_keeps_it() -> None:
    leases, clock, events = FakeLeases(), FakeClock(), list[str]()
    a, b = elector(leases, clock, "a", events), elector(leases, clock, "b", events)
    for _ in range(20):
        a.step()
        b.step()
        clock.advance(2.0)
    assert (a.is_leader(), b.is_leader(), leases.holder) == (True, False, "a")


def test_fence_closes_at_the_renew_deadline_when_the_apiserver_is_unreachable() -> None:
    leases, clock, events = FakeLeases(), FakeClock(), list[str]()
    a = elector(leases, clock, "a", events)
    a.step()
    leases.down = True
    clock.advance(9.9)
    assert a.is_leader()  # still within the renew deadline
    clock.advance(0.2)
    assert not a.is_leader()  # the fence closes by itself, before any other replica may lead
    a.step()
    assert events == ["a started", "a stopped"]


def test_release_hands_the_lease_over_at_once() -> None:
    leases, clock, events = FakeLeases(), FakeClock(), list[str]()
    a, b = elector(leases, clock, "a", events), elector(leases, clock, "b", events)
    a.step()
    b.step()
    a.release()
    assert leases.holder == ""
    assert not a.is_leader()
    b.step()  # an empty holder is free at once
    assert (b.is_leader(), leases.holder) == (True, "b")


def test_a_follower_does_not_release_someone_elses_lease() -> None:
    leases, clock, events = FakeLeases(), FakeClock(), list[str]()
    a, b = elector(leases, clock, "a", events), elector(leases, clock, "b", events)
    a.step()
    b.step()
    b.release()
    assert leases.holder == "a"
