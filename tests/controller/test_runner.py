"""kdgen.controller.runner against the fake client: the --once budget and the watch wiring."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from typing import Any, cast

from kdgen.controller.reconcile import SyncOptions
from kdgen.controller.reflector import Reflector
from kdgen.controller.runner import WatchController, WatchOptions, run_once
from kdgen.sync_cli import JsonLines
from tests.controller.fakes import FakeClient, FakeClock, deployment, kd
from tests.controller.test_reconcile import cluster


def test_once_full_pass_budget_and_concurrent_patches() -> None:
    client = cluster(200, 10)
    in_flight, peak = [0], [0]
    lock = threading.Lock()
    barrier_hit = threading.Event()

    def slow(namespace: str, name: str) -> None:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            if in_flight[0] >= 4:
                barrier_hit.set()
        barrier_hit.wait(0.05)  # hold the patch a moment so others overlap
        with lock:
            in_flight[0] -= 1

    client.on_patch.append(slow)
    report = run_once(cast(Any, client), SyncOptions(workers=4), out=io.StringIO())
    assert [r.name for r in report.results] == [f"kd{i:04d}" for i in range(200)]  # KD order
    assert {r.outcome for r in report.results} == {"patched"}
    assert report.is_ok
    assert 1 < peak[0] <= 4  # concurrent, and bounded by the pool
    assert dict(client.requests) == {
        ("LIST", "kusciadeployments"): 1,
        ("LIST", "namespaces"): 1,
        ("LIST", "deployments"): 1,
        ("PATCH", "kusciadeployments/status"): 200,
    }

    # The idle pass: 2 + 2 x namespaces requests at most (here 3: nothing to diagnose), 0 writes.
    client.requests.clear()
    again = run_once(cast(Any, client), SyncOptions(workers=4), out=io.StringIO())
    assert {r.outcome for r in again.results} == {"unchanged"}
    assert sum(client.requests.values()) == 3
    assert sum(client.requests.values()) <= 2 + 2 * 10


def test_dry_run_output_is_in_kd_order_whatever_the_workers() -> None:
    outs = []
    for workers in (1, 8):
        out = io.StringIO()
        run_once(cast(Any, cluster(30, 3)), SyncOptions(dry_run=True, workers=workers), out=out)
        outs.append(out.getvalue())
    # The patches carry the wall-clock reconcile time, which may tick between the two runs.
    stamp = re.compile(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"')
    assert stamp.sub('"<time>"', outs[0]) == stamp.sub('"<time>"', outs[1])
    assert outs[0].count('"action": "patch-status"') == 30


def controller(client: FakeClient, clock: FakeClock) -> WatchController:
    return WatchController(
        cast(Any, client),
        SyncOptions(),
        WatchOptions(metrics_addr=""),
        out=io.StringIO(),
        stop=threading.Event(),
        monotonic=clock,
    )


def test_deployment_events_queue_the_kd_that_expects_them() -> None:
    client, clock = FakeClient(), FakeClock()
    watch = controller(client, clock)
    watch._kd_changed(None, kd("serving", ["alice", "bob"]))
    watch._kd_changed(None, kd("other", ["carol"]))
    assert sorted(k for k, _ in watch.queue.take()) == ["other", "serving"]
    for key in ("other", "serving"):
        watch.queue.done(key)

    # Matched by name, as Kuscia does, even without the kd-name label.
    unlabelled = deployment("bob", "serving")
    unlabelled["metadata"]["labels"] = {}
    watch._deployment_changed(None, unlabelled)
    assert [k for k, _ in watch.queue.take()] == ["serving"]
    watch.queue.done("serving")

    watch._deployment_changed(None, deployment("zed", "nobody"))
    assert watch.queue.take() == []

    # A KD whose parties change stops owning its old Deployments.
    watch._kd_changed(kd("serving", ["alice", "bob"]), kd("serving", ["alice"]))
    watch.queue.take()
    watch.queue.done("serving")
    watch._deployment_changed(None, unlabelled)
    assert watch.queue.take() == []


def test_probes_follow_the_caches_and_the_heartbeat() -> None:
    client, clock = FakeClient(), FakeClock()
    watch = controller(client, clock)
    assert not watch.is_ready()
    watch.kds.synced.set()
    watch.namespaces.synced.set()
    assert watch.is_ready()
    assert not watch.is_healthy()  # the KD watch thread was never started


def test_json_log_lines() -> None:
    record = logging.LogRecord("kdgen.x", logging.WARNING, "f.py", 1, "hello %s", ("you",), None)
    line = JsonLines().format(record)
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "warning",
        "kdgen.x",
        "hello you",
    )
    assert "\n" not in line


def test_watch_reads_an_unlabelled_party_deployment_by_name() -> None:
    """The Deployment watch has the kd-name selector; a party Deployment without the label is
    read by name when its KD syncs, as Kuscia's refreshPartyDeploymentStatus finds it."""
    client, clock = FakeClient(), FakeClock()
    client.namespaces.update({"alice", "bob"})
    labelled, unlabelled = deployment("alice", "serving"), deployment("bob", "serving")
    unlabelled["metadata"]["labels"] = {}
    client.deployments.extend([labelled, unlabelled])
    watch = controller(client, clock)
    _listed(watch, client)
    observation = watch._observation(kd("serving", ["alice", "bob"]))
    assert observation is not None
    assert sorted(d["metadata"]["namespace"] for d in observation.deployments) == ["alice", "bob"]
    assert client.requests[("GET", "deployments")] == 1


class DeletedAfterOurPatch(FakeClient):
    """Someone deletes the KD right after our status patch; the watch delivers our write and
    the deletion before the worker gets the patch's answer back to the cache."""

    watch: WatchController

    def patch_kd_status(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        written = super().patch_kd_status(namespace, name, body)
        deleted = self.kds.pop((namespace, name))
        self._bump(deleted)
        self.watch.kds._apply({"type": "MODIFIED", "object": written})
        self.watch.kds._apply({"type": "DELETED", "object": deleted})
        return written


def test_a_kd_deleted_right_after_our_patch_does_not_come_back_into_the_cache() -> None:
    """The patch's answer must not re-insert a KD the watch has seen deleted meanwhile: that
    ghost would be synced (404) at every resync and keep --prune from cleaning up after it."""
    client, clock = DeletedAfterOurPatch(), FakeClock()
    client.namespaces.update({"alice", "bob"})
    client.deployments.extend([deployment("alice", "serving"), deployment("bob", "serving")])
    client.add_kd(kd("serving", ["alice", "bob"]))
    watch = controller(client, clock)
    client.watch = watch
    _listed(watch, client, kds=True)
    watch.queue.take()  # the KD queued by its first listing
    watch.queue.done("serving")
    watch._sync("serving", clock())
    assert client.requests[("PATCH", "kusciadeployments/status")] == 1  # it was written
    assert watch.kds.get(("cross-domain", "serving")) is None
    assert watch.kds.items() == []


def _listed(watch: WatchController, client: FakeClient, *, kds: bool = False) -> None:
    """Fill the controller's caches from ``client`` as a first listing would, without threads:
    the cluster-wide Deployments, the namespaces and (``kds``) the KDs, each marked synced."""
    watch._cluster_wide = Reflector(
        "deployments", lambda: client.list_deployments(""), lambda _: iter(()),
        stop=threading.Event(),
    )  # fmt: skip
    listings = [
        (watch._cluster_wide, client.list_deployments("")),
        (watch.namespaces, client.list_namespaces()),
    ]
    if kds:
        listings.append((watch.kds, client.list_kds("cross-domain")))
    for reflector, (items, _) in listings:
        reflector._replace(items)
        reflector._set_error(None)  # listed: synced
