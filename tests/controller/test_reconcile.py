"""kdgen.controller.reconcile against the fake client: the request budget, the 409 loop, fences.

Kuscia's ``refreshPartyDeploymentStatuses`` and ``handleError`` (``pkg/controllers/
kusciadeployment``) are what ``compute_status`` ports (tests/test_status.py checks that); here
the question is which requests are made and what is written.
"""

from __future__ import annotations

import io
from typing import Any, cast

from kdgen.controller import reconcile
from kdgen.controller.reconcile import Observation, SyncOptions, observe, sync_kd
from kdgen.model import LABEL_KUSCIA_DEPLOYMENT_NAME
from tests.controller.fakes import FakeClient, deployment, kd, pod

NOW = "2026-12-01T12:00:00Z"


def cluster(kds: int, namespaces: int, *, available: bool = True) -> FakeClient:
    """``kds`` two-party KDs over ``namespaces`` domain namespaces, each with its Deployments."""
    client = FakeClient()
    names = [f"d{i}" for i in range(namespaces)]
    client.namespaces.update(names)
    for i in range(kds):
        domains = [names[i % namespaces], names[(i + 1) % namespaces]]
        client.add_kd(kd(f"kd{i:04d}", domains))
        for domain in domains:
            client.deployments.append(deployment(domain, f"kd{i:04d}", available=int(available)))
    return client


def run(client: FakeClient, body: dict[str, Any], observation: Observation, **options: Any):
    sleeps: list[float] = []
    result = sync_kd(
        cast(Any, client),
        body,
        observation,
        SyncOptions(**options),
        out=io.StringIO(),
        now=lambda: NOW,
        sleep=sleeps.append,
        jitter=lambda: 0.5,
    )
    return result, sleeps


def test_observe_costs_one_namespace_list_one_deployment_list_and_no_pods_when_available() -> None:
    client = cluster(100, 10)
    kds, _ = client.list_kds("cross-domain")
    client.requests.clear()
    observation = observe(cast(Any, client), kds, SyncOptions())
    assert dict(client.requests) == {("LIST", "namespaces"): 1, ("LIST", "deployments"): 1}
    assert len(observation.deployments) == 200
    assert set(observation.namespaces) == {f"d{i}" for i in range(10)}
    assert observation.pods == {}


def test_cluster_wide_list_forbidden_falls_back_to_one_list_per_namespace() -> None:
    client = cluster(20, 4)
    client.forbidden.add(("LIST", "deployments@"))
    client.forbidden.add(("LIST", "deployments@d3"))
    kds, _ = client.list_kds("cross-domain")
    client.requests.clear()
    observation = observe(cast(Any, client), kds, SyncOptions())
    assert client.requests[("LIST", "deployments")] == 1 + 4
    assert observation.namespaces["d3"].kind == "forbidden"
    assert observation.namespaces["d0"].kind == "ok"


def test_pods_are_listed_at_most_once_per_namespace_and_only_where_needed() -> None:
    client = cluster(30, 3, available=False)
    client.pods = [pod("d1", "kd0000", "ImagePullBackOff")]  # d1 sorts last: its reason wins
    kds, _ = client.list_kds("cross-domain")
    client.requests.clear()
    observation = observe(cast(Any, client), kds, SyncOptions())
    assert client.requests[("LIST", "pods")] == 3
    assert len(client.pod_selectors) == 3
    first = client.pod_selectors[0]
    assert first.startswith(f"{LABEL_KUSCIA_DEPLOYMENT_NAME} in (kd0000,")

    # Syncing every KD from that observation lists no more pods.
    client.requests.clear()
    results = [run(client, body, observation)[0] for body in kds]
    assert client.requests[("LIST", "pods")] == 0
    assert client.requests[("PATCH", "kusciadeployments/status")] == 30
    assert {r.outcome for r in results} == {"patched"}
    status = client.kds[("cross-domain", "kd0000")]["status"]
    assert status["phase"] == "Progressing"
    assert status["reason"].endswith("reason: ImagePullBackOff")


def test_unchanged_kd_sends_nothing() -> None:
    client = cluster(1, 2)
    kds, _ = client.list_kds("cross-domain")
    observation = observe(cast(Any, client), kds, SyncOptions())
    first, _ = run(client, kds[0], observation)
    assert first.outcome == "patched"
    again, _ = client.list_kds("cross-domain")
    client.requests.clear()
    second, _ = run(client, again[0], observation)
    assert (second.outcome, second.wrote) == ("unchanged", False)
    assert dict(client.requests) == {}


def test_conflict_rereads_after_a_jittered_backoff_then_writes() -> None:
    client = cluster(1, 2)
    client.conflicts = 2
    kds, _ = client.list_kds("cross-domain")
    observation = observe(cast(Any, client), kds, SyncOptions())
    result, sleeps = run(client, kds[0], observation)
    assert result.outcome == "patched"
    base = reconcile.CONFLICT_BACKOFF
    assert sleeps == [base * 1.5, base * 2 * 1.5]  # doubled per conflict, jitter 0.5
    assert client.requests[("GET", "kusciadeployments")] == 2
    assert client.requests[("PATCH", "kusciadeployments/status")] == 3


def test_conflict_storm_gives_up_after_the_retries() -> None:
    client = cluster(1, 2)
    client.conflicts = 100
    kds, _ = client.list_kds("cross-domain")
    observation = observe(cast(Any, client), kds, SyncOptions())
    result, sleeps = run(client, kds[0], observation, conflict_retries=3)
    assert (result.outcome, result.detail) == (
        "failed",
        "status changed by another writer 4 times in a row",
    )
    assert len(sleeps) == 3
    assert client.requests[("PATCH", "kusciadeployments/status")] == 4


def test_kd_deleted_mid_pass_is_gone() -> None:
    client = cluster(1, 2)
    kds, _ = client.list_kds("cross-domain")
    observation = observe(cast(Any, client), kds, SyncOptions())
    del client.kds[("cross-domain", "kd0000")]
    result, _ = run(client, kds[0], observation)
    assert result.outcome == "gone"


def test_fenced_writer_writes_nothing() -> None:
    client = cluster(1, 2)
    kds, _ = client.list_kds("cross-domain")
    observation = observe(cast(Any, client), kds, SyncOptions())
    client.requests.clear()
    result = sync_kd(
        cast(Any, client), kds[0], observation, SyncOptions(), out=io.StringIO(),
        may_write=lambda: False, now=lambda: NOW,
    )  # fmt: skip
    assert (result.outcome, result.detail) == ("skipped", "not the leader")
    assert client.requests[("PATCH", "kusciadeployments/status")] == 0


def test_missing_namespace_is_kuscias_kit_info_failure() -> None:
    client = cluster(1, 2)
    client.namespaces.discard("d1")
    kds, _ = client.list_kds("cross-domain")
    observation = observe(cast(Any, client), kds, SyncOptions())
    result, _ = run(client, kds[0], observation)
    assert result.outcome == "problem"
    status = client.kds[("cross-domain", "kd0000")]["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "BuildPartyKitInfoFailed")
    assert status["message"] == (
        'failed to build domain d1 kit info, failed to get namespace d1, namespace "d1" not found'
    )


def test_dry_run_prints_and_writes_nothing() -> None:
    client = cluster(1, 2)
    kds, _ = client.list_kds("cross-domain")
    observation = observe(cast(Any, client), kds, SyncOptions())
    out = io.StringIO()
    result = sync_kd(
        cast(Any, client), kds[0], observation, SyncOptions(dry_run=True), out=out,
        now=lambda: NOW,
    )  # fmt: skip
    assert result.wrote
    assert '"action": "patch-status"' in out.getvalue()
    assert "status" not in client.kds[("cross-domain", "kd0000")]


def test_deployment_without_the_label_is_found_by_name() -> None:
    """Kuscia's ``refreshPartyDeploymentStatus`` gets ``<deployName>`` in ``<domainID>`` by name,
    whatever its labels: one made by hand or by an older generator counts."""
    client = cluster(1, 2)
    unlabelled = client.deployments[1]
    del unlabelled["metadata"]["labels"]
    kds, _ = client.list_kds("cross-domain")
    client.requests.clear()
    observation = observe(cast(Any, client), kds, SyncOptions())
    assert sorted(d["metadata"]["namespace"] for d in observation.deployments) == ["d0", "d1"]
    # only the Deployment the labelled list lacked costs a GET
    assert client.requests[("GET", "deployments")] == 1
    result, _ = run(client, kds[0], observation)
    assert result.outcome == "patched"
    status = client.kds[("cross-domain", "kd0000")]["status"]
    assert (status["phase"], status["availableParties"]) == ("Available", 2)


def test_a_deployment_that_is_really_gone_costs_one_get_and_stays_missing() -> None:
    client = cluster(1, 2)
    del client.deployments[1]
    kds, _ = client.list_kds("cross-domain")
    client.requests.clear()
    observation = observe(cast(Any, client), kds, SyncOptions())
    assert [d["metadata"]["namespace"] for d in observation.deployments] == ["d0"]
    assert client.requests[("GET", "deployments")] == 1
