"""kdgen.status against spec §9: tables over observed-state fixtures, whole values compared."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdgen.errors import Problem
from kdgen.status import (
    compute_status,
    diagnose_pods,
    diagnosis_targets,
    party_status,
    status_patch,
    validate_kd,
)

OBSERVED = Path(__file__).parent / "fixtures" / "observed"
NOW = "2026-11-25T09:00:00Z"
EARLIER = "2026-11-25T08:00:00Z"
CREATED = "2023-09-19T08:22:11Z"


def load(name: str) -> Any:
    return yaml.safe_load((OBSERVED / name).read_text())


def items(name: str) -> list[dict[str, Any]]:
    return list(load(name)["items"])


def kd(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = load("kd-secretflow-serving.yaml")
    obj["spec"].update(spec)
    if status is not None:
        obj["status"] = status
    return obj


def deployment(namespace: str, **status: int) -> dict[str, Any]:
    """A bare observed Deployment named like the seed's, with the given status counters."""
    return {
        "metadata": {
            "name": "secretflow-serving",
            "namespace": namespace,
            "creationTimestamp": CREATED,
        },
        "spec": {"selector": {"matchLabels": {"app": "secretflow-serving"}}},
        "status": status,
    }


def entry(phase: str, replicas: int = 1, available: int = 1, **extra: Any) -> dict[str, Any]:
    """A stored party status entry as Kuscia writes it."""
    value: dict[str, Any] = {
        "phase": phase,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": available,
        "unavailableReplicas": replicas - available,
        "creationTimestamp": CREATED,
    }
    value.update(extra)
    return value


def seed_entry(domain: str) -> dict[str, Any]:
    found = [d for d in items("secretflow-serving.yaml") if d["metadata"]["namespace"] == domain]
    return party_status(found[0], "")


def rollout(alice: int, bob: int) -> list[dict[str, Any]]:
    """The two-replica fixture with ``alice``/``bob`` available replicas."""
    deployments = items("rollout-two-replicas.yaml")
    for dep, available in zip(deployments, (alice, bob), strict=True):
        dep["status"]["availableReplicas"] = available
        dep["status"]["unavailableReplicas"] = 2 - available
    return deployments


# --- §9.1: one party's status from its Deployment ------------------------------------------


@pytest.mark.parametrize(
    ("counters", "role", "want"),
    [
        pytest.param(
            {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
            "",
            {
                "phase": "Available",
                "replicas": 1,
                "updatedReplicas": 1,
                "availableReplicas": 1,
                "unavailableReplicas": 0,
                "creationTimestamp": CREATED,
            },
            id="all-available",
        ),
        pytest.param(
            {"replicas": 2, "availableReplicas": 1, "unavailableReplicas": 1},
            "server",
            {
                "phase": "PartialAvailable",
                "role": "server",
                "replicas": 2,
                "updatedReplicas": 0,
                "availableReplicas": 1,
                "unavailableReplicas": 1,
                "creationTimestamp": CREATED,
            },
            id="partial-with-role",
        ),
        pytest.param(
            {"replicas": 2, "readyReplicas": 2, "unavailableReplicas": 2},
            "",
            {
                "phase": "Progressing",
                "replicas": 2,
                "updatedReplicas": 0,
                "availableReplicas": 0,
                "unavailableReplicas": 2,
                "creationTimestamp": CREATED,
            },
            id="ready-but-not-available-is-progressing",
        ),
        pytest.param(
            {},
            "",
            {
                "phase": "Progressing",
                "replicas": 0,
                "updatedReplicas": 0,
                "availableReplicas": 0,
                "unavailableReplicas": 0,
                "creationTimestamp": CREATED,
            },
            id="zero-replicas-is-progressing",
        ),
        pytest.param(
            {"replicas": 3, "availableReplicas": 3, "updatedReplicas": 1},
            "",
            {
                "phase": "Available",
                "replicas": 3,
                "updatedReplicas": 1,
                "availableReplicas": 3,
                "unavailableReplicas": 0,
                "creationTimestamp": CREATED,
            },
            id="available-above-spec-during-surge",
        ),
    ],
)
def test_party_status(counters: dict[str, int], role: str, want: dict[str, Any]) -> None:
    assert party_status(deployment("alice", **counters), role) == want


@pytest.mark.parametrize(
    ("fixture", "want_phase", "want_counters"),
    [
        pytest.param(
            "surge.yaml",
            "PartialAvailable",
            (3, 1, 2, 1),
            id="surge-compares-status-replicas-not-spec",
        ),
        pytest.param(
            "scaled-to-zero.yaml",
            "Progressing",
            (0, 0, 0, 0),
            id="scaled-to-zero-omitted-counters",
        ),
    ],
)
def test_party_status_from_fixture(
    fixture: str, want_phase: str, want_counters: tuple[int, int, int, int]
) -> None:
    got = party_status(items(fixture)[0], "")
    counters = ("replicas", "updatedReplicas", "availableReplicas", "unavailableReplicas")
    assert (got["phase"], tuple(got[c] for c in counters)) == (want_phase, want_counters)


def test_party_status_copies_conditions_and_creation_time() -> None:
    alice = items("secretflow-serving.yaml")[0]
    got = party_status(alice, "")
    assert got["conditions"] == alice["status"]["conditions"]
    assert got["conditions"] is not alice["status"]["conditions"]
    assert got["creationTimestamp"] == alice["metadata"]["creationTimestamp"]


# --- the seed example ----------------------------------------------------------------------


def test_seed_example_has_the_seed_status() -> None:
    seed_status = {
        "phase": "Available",
        "totalParties": 2,
        "availableParties": 2,
        "lastReconcileTime": NOW,
        "partyDeploymentStatuses": {
            domain: {
                "secretflow-serving": {
                    "availableReplicas": 1,
                    "conditions": conditions,
                    "creationTimestamp": CREATED,
                    "phase": "Available",
                    "replicas": 1,
                    "unavailableReplicas": 0,
                    "updatedReplicas": 1,
                }
            }
            for domain, conditions in (
                ("alice", load("secretflow-serving.yaml")["items"][0]["status"]["conditions"]),
                ("bob", load("secretflow-serving.yaml")["items"][1]["status"]["conditions"]),
            )
        },
    }
    assert compute_status(kd(), items("secretflow-serving.yaml"), now=NOW) == seed_status


# --- §9.4: the phase table ------------------------------------------------------------------

PHASE_ROWS = [
    # (alice available, bob available, KD phase, availableParties), each of status.replicas 2
    (0, 0, "Progressing", 0),
    (1, 0, "Progressing", 1),
    (0, 1, "Progressing", 1),
    (0, 2, "Progressing", 1),
    (2, 0, "Progressing", 1),
    (1, 1, "PartialAvailable", 2),
    (2, 1, "PartialAvailable", 2),
    (1, 2, "PartialAvailable", 2),
    (2, 2, "Available", 2),
]
PHASE_TABLE = [pytest.param(*row, id=f"{row[0]}-{row[1]}") for row in PHASE_ROWS]


@pytest.mark.parametrize(("alice", "bob", "want_phase", "want_available"), PHASE_TABLE)
def test_phase_table_from_fresh_status(
    alice: int, bob: int, want_phase: str, want_available: int
) -> None:
    got = compute_status(kd(), rollout(alice, bob), now=NOW)
    assert (got["phase"], got["totalParties"], got["availableParties"]) == (
        want_phase,
        2,
        want_available,
    )


def test_phase_table_in_sequence_like_kuscias_test() -> None:
    """Kuscia's TestRefreshPartyDeploymentStatuses walks the rows carrying the status along."""
    current = kd()
    got = []
    for alice, bob, _, _ in PHASE_ROWS:
        current = {**current, "status": compute_status(current, rollout(alice, bob), now=NOW)}
        got.append((current["status"]["phase"], current["status"]["availableParties"]))
    assert got == [(phase, available) for _, _, phase, available in PHASE_ROWS]


# --- §9.2: rollup rules and quirks ----------------------------------------------------------


def both_available() -> dict[str, Any]:
    return {"alice": {"secretflow-serving": entry("Available")}}


@pytest.mark.parametrize(
    ("stored", "observed", "partners", "want"),
    [
        pytest.param(
            None,
            [deployment("alice", replicas=1, availableReplicas=1)],
            (),
            {"totalParties": 2, "availableParties": 1, "phase": "Progressing"},
            id="missing-deployment-counts-as-progressing",
        ),
        pytest.param(
            {
                "phase": "Available",
                "totalParties": 2,
                "availableParties": 2,
                "partyDeploymentStatuses": {
                    "alice": {"secretflow-serving": entry("Available")},
                    "bob": {"secretflow-serving": entry("Available")},
                },
            },
            [deployment("alice", replicas=1, availableReplicas=1)],
            (),
            {"totalParties": 2, "availableParties": 1, "phase": "Progressing"},
            id="missing-deployment-drops-out-of-the-available-count",
        ),
        pytest.param(
            {"phase": "Progressing", "totalParties": 3, "availableParties": 1},
            [
                deployment("alice", replicas=1, availableReplicas=1),
                deployment("bob", replicas=1, availableReplicas=1),
            ],
            (),
            {"totalParties": 3, "availableParties": 2, "phase": "Progressing"},
            id="sticky-total-never-recomputed-phase-unchanged",
        ),
        pytest.param(
            {"totalParties": 0, "availableParties": 0},
            [deployment("alice", replicas=1, availableReplicas=1)],
            (),
            {"totalParties": 2, "availableParties": 1, "phase": "Progressing"},
            id="zero-total-is-set-from-spec",
        ),
        pytest.param(
            None,
            [
                deployment("alice", replicas=1, availableReplicas=1),
                deployment("bob", replicas=1, availableReplicas=1),
            ],
            ("bob",),
            {"totalParties": 2, "availableParties": 1, "phase": None},
            id="partner-counted-in-total-but-its-deployment-not-read",
        ),
        pytest.param(
            {
                "phase": "Available",
                "totalParties": 2,
                "availableParties": 2,
                "partyDeploymentStatuses": {
                    "alice": {"secretflow-serving": entry("Available")},
                    "bob": {"secretflow-serving": entry("Available")},
                },
            },
            [
                deployment("alice", replicas=1, availableReplicas=1),
                deployment("bob", replicas=1, availableReplicas=1),
            ],
            ("bob",),
            {"totalParties": 2, "availableParties": 2, "phase": "Available"},
            id="partner-entry-from-summary-counted",
        ),
        pytest.param(
            {
                "phase": "Failed",
                "reason": "CreateServiceFailed",
                "message": "boom",
                "totalParties": 3,
            },
            [
                deployment("alice", replicas=1, availableReplicas=1),
                deployment("bob", replicas=1, availableReplicas=1),
            ],
            (),
            {"totalParties": 3, "availableParties": 2, "phase": "Failed"},
            id="failed-kept-when-no-rule-fires",
        ),
        pytest.param(
            {
                "totalParties": 1,
                "availableParties": 1,
                "partyDeploymentStatuses": {"alice": {"old-role": entry("Progressing")}},
            },
            [deployment("alice", replicas=1, availableReplicas=1)],
            (),
            {"totalParties": 1, "availableParties": 1, "phase": "Available"},
            id="available-rule-overrides-progressing-rule",
        ),
    ],
)
def test_rollup(
    stored: dict[str, Any] | None,
    observed: list[dict[str, Any]],
    partners: tuple[str, ...],
    want: dict[str, Any],
) -> None:
    got = compute_status(kd(stored), observed, now=NOW, partner_domains=partners)
    assert {key: got.get(key) for key in want} == want


def test_missing_deployment_drops_out() -> None:
    """kdgen's departure from §9.1 (Kuscia keeps the entry and re-creates the Deployment)."""
    stale = entry("Available", conditions=[{"type": "Available", "status": "True"}])
    stored = {
        "phase": "Available",
        "totalParties": 2,
        "availableParties": 2,
        "partyDeploymentStatuses": {
            "alice": {"secretflow-serving": seed_entry("alice")},
            "bob": {"secretflow-serving": stale},
        },
        "lastReconcileTime": EARLIER,
    }
    got = compute_status(kd(stored), items("secretflow-serving.yaml")[:1], now=NOW)
    not_found = "kd's deployment: secretflow-serving not found"
    assert got == {
        "phase": "Progressing",
        "reason": f"domainID: bob, reason: {not_found}",
        "message": not_found,
        "totalParties": 2,
        "availableParties": 1,
        "partyDeploymentStatuses": {"alice": {"secretflow-serving": seed_entry("alice")}},
        "lastReconcileTime": NOW,
    }
    patch = status_patch(stored, got)
    assert patch is not None
    assert patch["status"]["partyDeploymentStatuses"] == {"bob": None}


def test_missing_deployment_of_one_role_keeps_the_domains_other_entries() -> None:
    stored = {
        "totalParties": 2,
        "partyDeploymentStatuses": {
            "alice": {"secretflow-serving": seed_entry("alice"), "other": entry("Available")},
        },
    }
    got = compute_status(kd(stored), [], now=NOW)
    assert got["partyDeploymentStatuses"] == {"alice": {"other": entry("Available")}}
    assert (got["phase"], got["availableParties"]) == ("Progressing", 1)


def test_removed_party_entry_stays() -> None:
    stored = {
        "totalParties": 2,
        "availableParties": 2,
        "partyDeploymentStatuses": {
            "alice": {"secretflow-serving": seed_entry("alice")},
            "bob": {"secretflow-serving": seed_entry("bob")},
        },
    }
    only_alice = kd(stored, parties=[kd()["spec"]["parties"][0]])
    got = compute_status(only_alice, items("secretflow-serving.yaml"), now=NOW)
    assert sorted(got["partyDeploymentStatuses"]) == ["alice", "bob"]
    assert (got["totalParties"], got["availableParties"]) == (2, 2)


def test_role_names_the_deployment() -> None:
    server = {"domainID": "alice", "appImageRef": "img", "role": "server"}
    client = {"domainID": "bob", "appImageRef": "img", "role": "client"}
    observed = [
        deployment("alice", replicas=1, availableReplicas=1),
        deployment("bob", replicas=1, availableReplicas=1),
    ]
    for dep, name in zip(
        observed, ("secretflow-serving-server", "secretflow-serving-client"), strict=True
    ):
        dep["metadata"]["name"] = name
    got = compute_status(kd(parties=[server, client]), observed, now=NOW)
    assert {d: sorted(v) for d, v in got["partyDeploymentStatuses"].items()} == {
        "alice": ["secretflow-serving-server"],
        "bob": ["secretflow-serving-client"],
    }
    assert got["partyDeploymentStatuses"]["alice"]["secretflow-serving-server"]["role"] == "server"
    assert got["phase"] == "Available"


# --- §9.2 step 2 and 7: reason and message --------------------------------------------------

ALICE = ("alice", "secretflow-serving")
BOB = ("bob", "secretflow-serving")


@pytest.mark.parametrize(
    ("stored", "observed", "pods", "want"),
    [
        pytest.param(
            None,
            [
                deployment("alice", replicas=2, unavailableReplicas=2),
                deployment("bob", replicas=1, availableReplicas=1),
            ],
            {ALICE: "pods-waiting.yaml"},
            (
                "Progressing",
                "domainID: alice, reason: CrashLoopBackOff",
                "back-off 1m20s restarting failed container=serving",
            ),
            id="crashloop-reported",
        ),
        pytest.param(
            None,
            [deployment("alice", replicas=1), deployment("bob", replicas=1, availableReplicas=1)],
            {ALICE: "pods-terminated.yaml"},
            (
                "Progressing",
                "domainID: alice, reason: OOMKilled",
                "container used more than its 100Mi limit",
            ),
            id="terminated-wins-over-later-waiting",
        ),
        pytest.param(
            {"phase": "Progressing", "reason": "old", "message": "old"},
            [deployment("alice", replicas=1), deployment("bob", replicas=1, availableReplicas=1)],
            {ALICE: "pods-unschedulable.yaml"},
            ("Progressing", None, None),
            id="nothing-to-report-clears-reason-and-message",
        ),
        pytest.param(
            None,
            [deployment("alice", replicas=1), deployment("bob", replicas=1, availableReplicas=1)],
            {ALICE: None},
            (
                "Progressing",
                "domainID: alice, reason: kd's pods: secretflow-serving not found",
                "kd's pods: secretflow-serving not found",
            ),
            id="no-pods",
        ),
        pytest.param(
            None,
            [deployment("alice", replicas=1), deployment("bob", replicas=1, availableReplicas=1)],
            {},
            ("Progressing", None, None),
            id="pod-list-failed-gives-empty-reason",
        ),
        pytest.param(
            {
                "totalParties": 2,
                "availableParties": 1,
                "partyDeploymentStatuses": {
                    "bob": {"secretflow-serving": entry("Progressing", 1, 0)}
                },
            },
            [deployment("alice", replicas=1, availableReplicas=1)],
            {},
            (
                "Progressing",
                "domainID: bob, reason: kd's deployment: secretflow-serving not found",
                "kd's deployment: secretflow-serving not found",
            ),
            id="stale-progressing-entry-deployment-not-found",
        ),
        pytest.param(
            None,
            [deployment("alice", replicas=1), deployment("bob", replicas=1)],
            {ALICE: "pods-waiting.yaml", BOB: "pods-terminated.yaml"},
            (
                "Progressing",
                "domainID: bob, reason: OOMKilled",
                "container used more than its 100Mi limit",
            ),
            id="last-progressing-entry-wins-in-sorted-order",
        ),
        pytest.param(
            {"phase": "Progressing", "reason": "domainID: alice, reason: X", "message": "x"},
            items("secretflow-serving.yaml"),
            {},
            ("Available", None, None),
            id="cleared-when-phase-changes-to-available",
        ),
        pytest.param(
            {"phase": "Failed", "reason": "CreateServiceFailed", "message": "x"},
            rollout(1, 2),
            {},
            ("PartialAvailable", None, None),
            id="cleared-when-phase-changes-to-partial",
        ),
        pytest.param(
            {"phase": "Available", "reason": "stale", "message": "stale"},
            items("secretflow-serving.yaml"),
            {},
            ("Available", "stale", "stale"),
            id="kept-when-phase-stays-available",
        ),
    ],
)
def test_reason_and_message(
    stored: dict[str, Any] | None,
    observed: list[dict[str, Any]],
    pods: dict[tuple[str, str], str | None],
    want: tuple[str, str | None, str | None],
) -> None:
    listed = {key: items(name) if name else [] for key, name in pods.items()}
    got = compute_status(kd(stored), observed, now=NOW, pods=listed)
    assert (got.get("phase"), got.get("reason"), got.get("message")) == want


def test_partner_progressing_entry_gets_no_diagnostics() -> None:
    stored = {
        "phase": "Progressing",
        "reason": "from the summary",
        "message": "from the summary",
        "partyDeploymentStatuses": {"bob": {"secretflow-serving": entry("Progressing", 1, 0)}},
    }
    got = compute_status(
        kd(stored),
        [deployment("alice", replicas=1, availableReplicas=1)],
        now=NOW,
        partner_domains={"bob"},
    )
    assert (got["phase"], got["reason"], got["message"]) == (
        "Progressing",
        "from the summary",
        "from the summary",
    )


# --- §9.3: pod diagnostics ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("found", "pods", "want"),
    [
        pytest.param(
            None,
            None,
            ("kd's deployment: web not found", "kd's deployment: web not found"),
            id="deployment-not-found",
        ),
        pytest.param(
            {"spec": {"selector": {}}},
            [],
            (
                "kd's deployment: web labels selector is nil",
                "kd's deployment: web labels selector is nil",
            ),
            id="no-match-labels",
        ),
        pytest.param(
            {"spec": {"selector": {"matchLabels": {"a": "b"}}}},
            [],
            ("kd's pods: web not found", "kd's pods: web not found"),
            id="no-pods",
        ),
        pytest.param(
            {"spec": {"selector": {"matchLabels": {"a": "b"}}}},
            None,
            ("", ""),
            id="pod-list-failed",
        ),
        pytest.param(
            {"spec": {"selector": {"matchLabels": {"a": "b"}}}},
            "pods-waiting.yaml",
            ("CrashLoopBackOff", "back-off 1m20s restarting failed container=serving"),
            id="container-creating-skipped",
        ),
        pytest.param(
            {"spec": {"selector": {"matchLabels": {"a": "b"}}}},
            "pods-terminated.yaml",
            ("OOMKilled", "container used more than its 100Mi limit"),
            id="terminated-first",
        ),
        pytest.param(
            {"spec": {"selector": {"matchLabels": {"a": "b"}}}},
            "pods-unschedulable.yaml",
            ("", ""),
            id="no-container-statuses",
        ),
    ],
)
def test_diagnose_pods(
    found: dict[str, Any] | None, pods: str | list[Any] | None, want: tuple[str, str]
) -> None:
    listed = items(pods) if isinstance(pods, str) else pods
    assert diagnose_pods("web", found, listed) == want


@pytest.mark.parametrize(
    ("stored", "observed", "partners", "want"),
    [
        pytest.param(None, rollout(0, 2), (), [ALICE], id="progressing-self-party"),
        pytest.param(None, rollout(0, 0), ("bob",), [ALICE], id="partner-skipped"),
        pytest.param(None, rollout(2, 2), (), [], id="nothing-progressing"),
        pytest.param(
            {
                "partyDeploymentStatuses": {
                    "bob": {"secretflow-serving": entry("Progressing", 1, 0)}
                }
            },
            rollout(2, 2)[:1],
            (),
            [],
            id="stale-entry-without-deployment-needs-no-pods",
        ),
    ],
)
def test_diagnosis_targets(
    stored: dict[str, Any] | None,
    observed: list[dict[str, Any]],
    partners: tuple[str, ...],
    want: list[tuple[str, str]],
) -> None:
    assert diagnosis_targets(kd(stored), observed, partner_domains=partners) == want


# --- §9.5: the failure path -----------------------------------------------------------------

MISSING_NAMESPACE = Problem(
    'failed to build domain bob kit info, failed to get namespace bob, namespace "bob" not found',
    reason="BuildPartyKitInfoFailed",
)


@pytest.mark.parametrize(
    ("stored", "want"),
    [
        pytest.param(
            None,
            {
                "phase": "Failed",
                "reason": "BuildPartyKitInfoFailed",
                "message": MISSING_NAMESPACE.message,
                "totalParties": 2,
                "availableParties": 0,
                "lastReconcileTime": NOW,
            },
            id="no-entries-failed-survives",
        ),
        pytest.param(
            {
                "phase": "Available",
                "totalParties": 2,
                "availableParties": 2,
                "partyDeploymentStatuses": {
                    "alice": {"secretflow-serving": entry("Available")},
                    "bob": {"secretflow-serving": entry("Available")},
                },
            },
            {
                "phase": "Available",
                "totalParties": 2,
                "availableParties": 2,
                "partyDeploymentStatuses": {
                    "alice": {"secretflow-serving": entry("Available")},
                    "bob": {"secretflow-serving": entry("Available")},
                },
                "lastReconcileTime": NOW,
            },
            id="all-entries-available-overwrite-failed",
        ),
        pytest.param(
            {
                "phase": "Progressing",
                "totalParties": 2,
                "availableParties": 1,
                "partyDeploymentStatuses": {
                    "alice": {"secretflow-serving": entry("Available")},
                    "bob": {"secretflow-serving": entry("Progressing", 1, 0)},
                },
            },
            {
                "phase": "Progressing",
                "reason": "BuildPartyKitInfoFailed",
                "message": MISSING_NAMESPACE.message,
                "totalParties": 2,
                "availableParties": 1,
                "partyDeploymentStatuses": {
                    "alice": {"secretflow-serving": entry("Available")},
                    "bob": {"secretflow-serving": entry("Progressing", 1, 0)},
                },
                "lastReconcileTime": NOW,
            },
            id="progressing-entry-keeps-failed-reason",
        ),
    ],
)
def test_failure_path(stored: dict[str, Any] | None, want: dict[str, Any]) -> None:
    # The observed Deployments are ignored: the kit list is nil on this path.
    got = compute_status(kd(stored), rollout(0, 0), now=NOW, problem=MISSING_NAMESPACE)
    assert got == want


def test_empty_parties_reads_available_like_kuscia() -> None:
    """Quirk: total 0 == available 0, so the rollup turns ValidateFailed into Available."""
    empty = kd(parties=[])
    problem = validate_kd(empty)
    assert problem is not None
    assert compute_status(empty, [], now=NOW, problem=problem) == {
        "phase": "Available",
        "totalParties": 0,
        "availableParties": 0,
        "lastReconcileTime": NOW,
    }


def test_structural_problem_message_names_the_field() -> None:
    bad = kd(parties="alice")
    problem = validate_kd(bad)
    assert problem is not None
    stored = {"totalParties": 2, "availableParties": 0}
    got = compute_status(kd(stored, parties="alice"), [], now=NOW, problem=problem)
    assert (got["phase"], got["reason"], got["message"]) == (
        "Failed",
        "ValidateFailed",
        "spec.parties: parties must be a list",
    )


# --- validate_kd ----------------------------------------------------------------------------

PREFIX_RE = '"^[a-z]([-a-z0-9]{0,46}[a-z0-9])?$" '


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        pytest.param({}, None, id="seed-is-valid"),
        pytest.param(
            {"parties": []},
            ("", "parties can't be empty for kusciaDeployment secretflow-serving"),
            id="empty-parties",
        ),
        pytest.param(
            {"parties": [{"domainID": "alice", "serviceNamePrefix": "Bad_Prefix"}]},
            (
                "",
                'field "ServiceNamePrefix" is invalid, invalid value: "Bad_Prefix": '
                f"regex used for validation is {PREFIX_RE}",
            ),
            id="bad-service-name-prefix",
        ),
        pytest.param(
            {"parties": [{"domainID": "alice", "serviceNamePrefix": "ok\n"}]},
            (
                "",
                'field "ServiceNamePrefix" is invalid, invalid value: "ok\\n": '
                f"regex used for validation is {PREFIX_RE}",
            ),
            id="prefix-trailing-newline-rejected-like-go",
        ),
        pytest.param(
            {"initiator": "carol"},
            (
                "",
                "kusciaDeployment secretflow-serving initiator carol should be one of the parties",
            ),
            id="initiator-not-a-party",
        ),
        pytest.param(
            {"parties": {"alice": {}}},
            ("spec.parties", "parties must be a list"),
            id="parties-not-list",
        ),
        pytest.param(
            {"parties": [{"appImageRef": "x"}]},
            ("spec.parties[0].domainID", "domainID must be a non-empty string"),
            id="party-without-domain",
        ),
        pytest.param(
            {"parties": [{"domainID": "alice", "role": 3}]},
            ("spec.parties[0].role", "role must be a string"),
            id="role-not-string",
        ),
    ],
)
def test_validate_kd(spec: dict[str, Any], want: tuple[str, str] | None) -> None:
    problem = validate_kd(kd(**spec))
    got = None if problem is None else (problem.field, problem.message)
    assert got == want
    if problem is not None:
        assert (problem.reason, problem.resource) == (
            "ValidateFailed",
            "KusciaDeployment cross-domain/secretflow-serving",
        )


def test_validate_kd_without_spec() -> None:
    problem = validate_kd({"metadata": {"name": "x"}})
    assert problem is not None
    assert str(problem) == "KusciaDeployment x: spec: spec must be an object [ValidateFailed]"


# --- status_patch ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "want"),
    [
        pytest.param(
            {"phase": "Available", "totalParties": 2, "lastReconcileTime": EARLIER},
            {"phase": "Available", "totalParties": 2, "lastReconcileTime": NOW},
            None,
            id="only-last-reconcile-time-changes",
        ),
        pytest.param(
            {"phase": "Available", "totalParties": 2},
            {"phase": "Available", "totalParties": 2, "lastReconcileTime": NOW},
            None,
            id="no-stored-reconcile-time",
        ),
        pytest.param(
            None,
            {"totalParties": 2, "availableParties": 0, "lastReconcileTime": NOW},
            {"status": {"totalParties": 2, "availableParties": 0, "lastReconcileTime": NOW}},
            id="first-write",
        ),
        pytest.param(
            {"phase": "Progressing", "reason": "r", "message": "m", "totalParties": 2},
            {"phase": "Available", "totalParties": 2, "lastReconcileTime": NOW},
            {
                "status": {
                    "phase": "Available",
                    "reason": None,
                    "message": None,
                    "lastReconcileTime": NOW,
                }
            },
            id="cleared-keys-sent-as-null",
        ),
        pytest.param(
            {
                "partyDeploymentStatuses": {
                    "alice": {"d": entry("Available", conditions=[{"type": "Available"}])},
                    "bob": {"d": entry("Available")},
                }
            },
            {
                "partyDeploymentStatuses": {
                    "alice": {"d": entry("Progressing", 2, 1)},
                    "bob": {"d": entry("Available")},
                },
                "lastReconcileTime": NOW,
            },
            {
                "status": {
                    "partyDeploymentStatuses": {
                        "alice": {
                            "d": {
                                "phase": "Progressing",
                                "replicas": 2,
                                "updatedReplicas": 2,
                                "unavailableReplicas": 1,
                                "conditions": None,
                            }
                        }
                    },
                    "lastReconcileTime": NOW,
                }
            },
            id="nested-entry-diff-only",
        ),
        pytest.param(
            {
                "partyDeploymentStatuses": {
                    "alice": {"d": {"conditions": [{"type": "A"}, {"type": "B"}]}}
                }
            },
            {"partyDeploymentStatuses": {"alice": {"d": {"conditions": [{"type": "A"}]}}}},
            {
                "status": {
                    "partyDeploymentStatuses": {"alice": {"d": {"conditions": [{"type": "A"}]}}}
                }
            },
            id="lists-replaced-whole",
        ),
        pytest.param(
            {"partyDeploymentStatuses": "garbage", "extra": 1},
            {"partyDeploymentStatuses": {"alice": {}}},
            {"status": {"partyDeploymentStatuses": {"alice": {}}, "extra": None}},
            id="non-object-replaced-and-unknown-key-dropped",
        ),
    ],
)
def test_status_patch(
    old: dict[str, Any] | None, new: dict[str, Any], want: dict[str, Any] | None
) -> None:
    assert status_patch(old, new) == want


def test_second_pass_needs_no_patch() -> None:
    first = compute_status(kd(), items("secretflow-serving.yaml"), now=EARLIER)
    second = compute_status(kd(first), items("secretflow-serving.yaml"), now=NOW)
    assert status_patch(first, second) is None


def test_progressing_second_pass_needs_no_patch() -> None:
    """Kuscia rewrites status every pass while Progressing; kdgen writes only on change."""
    pods = {ALICE: items("pods-waiting.yaml")}
    first = compute_status(kd(), rollout(0, 2), now=EARLIER, pods=pods)
    second = compute_status(kd(first), rollout(0, 2), now=NOW, pods=pods)
    assert first["phase"] == "Progressing"
    assert status_patch(first, second) is None


def test_patch_applies_to_the_new_status() -> None:
    """Applying the merge patch (RFC 7386) to the old status gives the new status."""
    old = compute_status(kd(), rollout(2, 2), now=EARLIER)
    old["reason"] = "stale"
    new = compute_status(kd(old), rollout(1, 0), now=NOW)
    patch = status_patch(old, new)
    assert patch is not None
    assert merge_patch(old, patch["status"]) == new


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def test_inputs_are_not_modified() -> None:
    stored = compute_status(kd(), rollout(2, 1), now=EARLIER)
    obj = kd(stored)
    observed = rollout(0, 1)
    pods = {ALICE: items("pods-waiting.yaml")}
    before = copy.deepcopy((obj, observed, pods))
    got = compute_status(obj, observed, now=NOW, pods=pods)
    got["partyDeploymentStatuses"]["alice"]["secretflow-serving"]["conditions"].append({})
    assert (obj, observed, pods) == before


def test_kept_entries_are_copies_not_the_stored_ones() -> None:
    # An entry no self party refreshes (here a domain that is not a party) is kept as stored;
    # the status returned must still share nothing with the KD it was computed from.
    stored = compute_status(kd(), rollout(2, 1), now=EARLIER)
    kept = {"phase": "Available", "conditions": [{"type": "Available", "status": "True"}]}
    stored["partyDeploymentStatuses"]["elsewhere"] = {"old-deployment": kept}
    obj = kd(stored)
    before = copy.deepcopy(obj)
    got = compute_status(obj, rollout(2, 1), now=NOW)
    entry = got["partyDeploymentStatuses"]["elsewhere"]["old-deployment"]
    assert entry == kept
    entry["conditions"][0]["status"] = "False"
    entry["phase"] = "Failed"
    assert obj == before
