"""Status across clusters: each domain's Deployments read from that domain's own cluster.

Kuscia's controller sees a partner's Deployments through its interconnection: the partner's
cluster writes them into a KusciaDeploymentSummary that is copied back into the KD
(``pkg/interconn/kuscia/deploysummary.go``, spec §10), and the KD becomes Available only when
every party of every cluster is (``refreshPartyDeploymentStatuses``, §9.2). status-sync reads
the partner cluster itself (``DomainClients``); when it cannot, the status names the partner.
"""

from __future__ import annotations

import io
from typing import Any, cast

from kdgen.controller.clusters import DomainClients
from kdgen.controller.reconcile import SyncOptions
from kdgen.controller.runner import run_once
from tests.controller.fakes import FakeClient, deployment, kd

HOME_ONLY = "alice"
PARTNER = "bob"


def two_clusters(*, bob_available: int = 1) -> tuple[FakeClient, FakeClient]:
    """The KD and alice's Deployment in the home cluster; bob's Deployment in bob's cluster."""
    home, remote = FakeClient(), FakeClient()
    home.namespaces.update({"alice", "bob"})  # bob's namespace in home is empty
    remote.namespaces.add("bob")
    home.add_kd(kd("serving", ["alice", "bob"]))
    home.deployments.append(deployment("alice", "serving"))
    remote.deployments.append(deployment("bob", "serving", available=bob_available))
    return home, remote


def sync(home: FakeClient, remote: FakeClient, **options: Any) -> dict[str, Any]:
    client = DomainClients(cast(Any, home), {PARTNER: cast(Any, remote)})
    run_once(cast(Any, client), SyncOptions(**options), out=io.StringIO())
    status: dict[str, Any] = home.kds[("cross-domain", "serving")]["status"]
    return status


def test_the_partner_cluster_is_read_and_the_kd_becomes_available() -> None:
    home, remote = two_clusters()
    status = sync(home, remote, remote_domains=frozenset({PARTNER}))
    assert (status["phase"], status["availableParties"], status["totalParties"]) == (
        "Available",
        2,
        2,
    )
    assert set(status["partyDeploymentStatuses"]) == {"alice", "bob"}
    # bob's namespace and Deployments were read in bob's cluster, the KD only at home
    assert remote.requests[("LIST", "deployments")] == 1
    assert remote.requests[("PATCH", "kusciadeployments/status")] == 0
    assert home.requests[("PATCH", "kusciadeployments/status")] == 1


def test_kuscias_phase_rules_apply_over_both_clusters() -> None:
    """§9.4: alice available and bob progressing is Progressing, wherever bob runs."""
    home, remote = two_clusters(bob_available=0)
    status = sync(home, remote, remote_domains=frozenset({PARTNER}))
    assert (status["phase"], status["availableParties"]) == ("Progressing", 1)
    assert status["partyDeploymentStatuses"]["bob"]["serving"]["phase"] == "Progressing"


def test_an_unreachable_partner_cluster_is_named_in_the_status() -> None:
    home, remote = two_clusters()
    remote.unreachable = True
    status = sync(home, remote, remote_domains=frozenset({PARTNER}))
    assert status["reason"] == "PartnerNotObserved"
    assert status["message"] == (
        "party bob is not observed: cannot read the cluster of domain bob: LIST deployments: "
        "connection refused"
    )
    assert status["availableParties"] == 1
    assert "phase" not in status  # Kuscia leaves the phase as it was (§9.2 step 6): none yet
    assert set(status["partyDeploymentStatuses"]) == {"alice"}


def test_a_partner_without_a_cluster_is_named_in_the_status() -> None:
    home = FakeClient()
    home.namespaces.add("alice")
    home.add_kd(kd("serving", ["alice", "bob"]))
    home.deployments.append(deployment("alice", "serving"))
    run_once(cast(Any, home), SyncOptions(partner_domains=frozenset({PARTNER})), out=io.StringIO())
    status = home.kds[("cross-domain", "serving")]["status"]
    assert (status["reason"], status["availableParties"], status["totalParties"]) == (
        "PartnerNotObserved",
        1,
        2,
    )
    assert status["message"] == (
        "party bob is not observed: it is hosted by another cluster that status-sync is not "
        "given (--domain-kubeconfig bob=PATH or --domain-context bob=NAME)"
    )


def test_the_reason_goes_once_the_partner_is_seen() -> None:
    home, remote = two_clusters()
    remote.unreachable = True
    sync(home, remote, remote_domains=frozenset({PARTNER}))
    remote.unreachable = False
    status = sync(home, remote, remote_domains=frozenset({PARTNER}))
    assert status["phase"] == "Available"
    assert "reason" not in status
    assert "message" not in status
