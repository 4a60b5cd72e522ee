"""status-sync against the real control plane: seed status, quirks, the 409 race, RBAC, the CLI.

Every status-sync run is a real process (``python -m kdgen.sync_cli``); only the 409 race
drives ``kdgen.controller`` in-process, to put a second writer exactly between the read and the
patch. The faults (restarts, the 409 storm, deleted KDs, leader failover, etcd paused, a slow
apiserver) are in ``test_faults.py``, which uses this module's helpers and fixtures. Scenario
tests get their own KD namespace and party namespaces and pass ``--kd-namespace``, so they never
see each other's KDs. kwok makes every scheduled pod ready; a nodeSelector that matches no node
keeps new pods Pending.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from kdgen.controller.client import Client
from kdgen.model import LABEL_DEPLOYMENT_NAME, LABEL_KUSCIA_DEPLOYMENT_NAME, LABEL_OWNER_NAMESPACE
from tests.support.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "secretflow-serving"
DEPLOY = REPO / "deploy" / "status-sync"
KDS = "/apis/kuscia.secretflow/v1alpha1/namespaces/{namespace}/kusciadeployments"
DEPLOYMENTS = "/apis/apps/v1/namespaces/{namespace}/deployments"
SYNC_NAMESPACE = "kdgen-system"
SYNC_ACCOUNT = "kdgen-status-sync"
MERGE = "application/merge-patch+json"
NO_NODE = {"kdgen.e2e/no-such-node": "true"}
T = TypeVar("T")


# --- helpers ----------------------------------------------------------------------------------


def api(cluster: Cluster, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    code, obj = cluster.request(method, path, body, **kwargs)
    assert 200 <= code < 300, (method, path, code, obj)
    return obj


def eventually(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def run_sync(
    kubeconfig: Path, *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kdgen.sync_cli", f"--kubeconfig={kubeconfig}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def metric(text: str, sample: str) -> float:
    """The value of one sample line, e.g. ``kdgen_status_sync_patches_total``; 0 if absent."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


def json_stream(text: str) -> list[Any]:
    decoder, objects, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        obj, at = decoder.raw_decode(text, at)
        objects.append(obj)
    return objects


@dataclass
class Scenario:
    """A KD ``serving`` in its own namespace with parties alice and bob, each a Deployment."""

    cluster: Cluster
    kd_namespace: str
    alice: str
    bob: str
    name: str = "serving"

    @property
    def kd_path(self) -> str:
        return KDS.format(namespace=self.kd_namespace) + f"/{self.name}"

    def kd(self) -> dict[str, Any]:
        return dict(api(self.cluster, "GET", self.kd_path))

    def status(self) -> dict[str, Any]:
        return dict(self.kd().get("status") or {})

    def version(self) -> str:
        return str(self.kd()["metadata"]["resourceVersion"])

    def sync(self, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        config = kubeconfig or self.cluster.kubeconfig
        return run_sync(config, f"--kd-namespace={self.kd_namespace}", *args)

    def deployment_path(self, domain: str, name: str | None = None) -> str:
        return DEPLOYMENTS.format(namespace=domain) + f"/{name or self.name}"

    def deployment(self, domain: str) -> dict[str, Any]:
        return dict(api(self.cluster, "GET", self.deployment_path(domain)))

    def create_deployment(self, domain: str, replicas: int = 1, kd_name: str = "") -> None:
        body = deployment_manifest(self.name, domain, kd_name or self.name, self.kd_namespace)
        body["spec"]["replicas"] = replicas
        api(self.cluster, "POST", DEPLOYMENTS.format(namespace=domain), body)

    def patch_deployment(self, domain: str, patch: dict[str, Any]) -> None:
        api(self.cluster, "PATCH", self.deployment_path(domain), patch, content_type=MERGE)

    def wait_available(self, domain: str, replicas: int) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            dep = self.deployment(domain)
            status = dep.get("status") or {}
            done = (
                status.get("observedGeneration") == dep["metadata"]["generation"]
                and status.get("availableReplicas", 0) == replicas
                and status.get("replicas", 0) == replicas
                and status.get("updatedReplicas", 0) == replicas
            )
            return dep if done else None

        return eventually(settled, f"deployment {domain}/{self.name} with {replicas} available")

    def entry(self, domain: str) -> dict[str, Any]:
        return dict(
            self.status().get("partyDeploymentStatuses", {}).get(domain, {}).get(self.name) or {}
        )


def deployment_manifest(name: str, namespace: str, kd_name: str, owner: str) -> dict[str, Any]:
    labels = {LABEL_KUSCIA_DEPLOYMENT_NAME: kd_name, LABEL_DEPLOYMENT_NAME: name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels, LABEL_OWNER_NAMESPACE: owner},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
        },
    }


def kd_manifest(
    name: str, namespace: str, domains: list[str], initiator: str = ""
) -> dict[str, Any]:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "KusciaDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "initiator": initiator or domains[0],
            "inputConfig": "{}",
            "parties": [
                {"appImageRef": "secretflow-serving-image", "domainID": d} for d in domains
            ],
        },
    }


def create_namespace(cluster: Cluster, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    code, obj = cluster.request("POST", "/api/v1/namespaces", body)
    assert code in (201, 409), obj


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> Cluster:
    cluster.kubectl("apply", "--server-side", "-k", str(REPO / "deploy" / "crds"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/kusciadeployments.kuscia.secretflow", "crd/appimages.kuscia.secretflow",
    )  # fmt: skip
    return cluster


@pytest.fixture
def scenario(crds: Cluster) -> Iterator[Scenario]:
    tag = secrets.token_hex(3)
    made = Scenario(crds, f"e2e-kd-{tag}", f"e2e-alice-{tag}", f"e2e-bob-{tag}")
    for namespace in (made.kd_namespace, made.alice, made.bob):
        create_namespace(crds, namespace)
    api(crds, "POST", KDS.format(namespace=made.kd_namespace), kd_manifest(
        made.name, made.kd_namespace, [made.alice, made.bob]
    ))  # fmt: skip
    for domain in (made.alice, made.bob):
        made.create_deployment(domain)
    for domain in (made.alice, made.bob):
        made.wait_available(domain, 1)
    yield made
    for namespace in (made.kd_namespace, made.alice, made.bob):
        crds.request("DELETE", f"/api/v1/namespaces/{namespace}")


@pytest.fixture(scope="module")
def rbac(crds: Cluster) -> Cluster:
    """The status-sync ServiceAccount with the base ClusterRole and the watch Lease Role."""
    crds.kubectl("apply", "-k", str(DEPLOY / "base"))
    for manifest in ("role.yaml", "rolebinding.yaml"):
        crds.kubectl(
            "apply", "-n", SYNC_NAMESPACE, "-f", str(DEPLOY / "components" / "watch" / manifest)
        )
    return crds


def service_account_kubeconfig(cluster: Cluster, path: Path) -> tuple[Path, str]:
    """A kubeconfig authenticating as the status-sync ServiceAccount (TokenRequest); its token."""
    token = cluster.service_account_token(SYNC_NAMESPACE, SYNC_ACCOUNT, create=False)
    return cluster.write_kubeconfig(path, token=token), token


# --- the seed example -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed(crds: Cluster) -> Cluster:
    """The seed's KD and AppImage plus ``kdgen generate --profile plain``, all Available."""
    namespaces = "".join(
        yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}) + "---\n"
        for n in ("cross-domain", "alice", "bob")
    )
    crds.kubectl("apply", "--server-side", "-f", "-", input=namespaces)
    # A fresh KD: status from earlier runs (sticky totals!) must not leak into these tests.
    crds.kubectl("delete", "kd", "--all", "-n", "cross-domain", "--wait=true")
    crds.kubectl("apply", "--server-side", "-f", str(EXAMPLE))
    generated = subprocess.run(
        [sys.executable, "-m", "kdgen", "generate", "--profile", "plain", str(EXAMPLE)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    crds.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=kdgen-e2e", "-f", "-",
        input=generated,
    )  # fmt: skip
    for domain in ("alice", "bob"):
        crds.kubectl(
            "rollout", "status", "deployment/secretflow-serving", "-n", domain, "--timeout=120s"
        )
    return crds


def get_seed_kd(cluster: Cluster) -> dict[str, Any]:
    return dict(api(cluster, "GET", KDS.format(namespace="cross-domain") + "/secretflow-serving"))


def test_seed_example_gets_the_seed_status(seed: Cluster) -> None:
    before = get_seed_kd(seed)
    result = run_sync(seed.kubeconfig, "--once")
    assert result.returncode == 0, result.stderr
    table = seed.kubectl("get", "kd", "secretflow-serving", "-n", "cross-domain").stdout.split("\n")
    assert table[0].split() == ["NAME", "TOTALPARTIES", "AVAILABLEPARTIES", "PHASE", "AGE"]
    assert table[1].split()[:4] == ["secretflow-serving", "2", "2", "Available"]

    after = get_seed_kd(seed)
    status = after["status"]
    assert sorted(status) == [
        "availableParties",
        "lastReconcileTime",
        "partyDeploymentStatuses",
        "phase",
        "totalParties",
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", status["lastReconcileTime"])
    assert sorted(status["partyDeploymentStatuses"]) == ["alice", "bob"]
    for domain in ("alice", "bob"):
        entries = status["partyDeploymentStatuses"][domain]
        assert sorted(entries) == ["secretflow-serving"]
        entry = entries["secretflow-serving"]
        assert sorted(entry) == [
            "availableReplicas",
            "conditions",
            "creationTimestamp",
            "phase",
            "replicas",
            "unavailableReplicas",
            "updatedReplicas",
        ]
        live = api(seed, "GET", DEPLOYMENTS.format(namespace=domain) + "/secretflow-serving")
        assert entry["conditions"] == live["status"]["conditions"]
        assert {c["type"] for c in entry["conditions"]} == {"Available", "Progressing"}
        assert entry["creationTimestamp"] == live["metadata"]["creationTimestamp"]
        assert (entry["phase"], entry["replicas"], entry["availableReplicas"]) == (
            "Available",
            1,
            1,
        )
        assert (entry["updatedReplicas"], entry["unavailableReplicas"]) == (1, 0)
    # status-sync never writes spec or metadata.
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["metadata"].get("labels") == before["metadata"].get("labels")
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
    managed = [m for m in after["metadata"]["managedFields"] if m["manager"] == "kdgen-status-sync"]
    assert [m.get("subresource") for m in managed] == ["status"]


def test_second_once_pass_sends_zero_writes(seed: Cluster) -> None:
    first = run_sync(seed.kubeconfig, "--once")
    assert first.returncode == 0, first.stderr
    version = get_seed_kd(seed)["metadata"]["resourceVersion"]
    second = run_sync(seed.kubeconfig, "--once")
    assert second.returncode == 0, second.stderr
    assert "1 unchanged" in second.stderr
    assert get_seed_kd(seed)["metadata"]["resourceVersion"] == version


# --- §9 semantics on a live cluster -----------------------------------------------------------


def test_scaling_beyond_what_can_be_ready(scenario: Scenario) -> None:
    assert scenario.sync("--once").returncode == 0
    assert scenario.status()["phase"] == "Available"

    # Three replicas whose new pods cannot be scheduled: the old pod stays available.
    scenario.patch_deployment(
        scenario.alice, {"spec": {"replicas": 3, "template": {"spec": {"nodeSelector": NO_NODE}}}}
    )

    def partial() -> dict[str, Any] | None:
        result = scenario.sync("--once")
        assert result.returncode == 0, result.stderr
        status = scenario.status()
        return status if status.get("phase") == "PartialAvailable" else None

    status = eventually(partial, "PartialAvailable")
    entry = status["partyDeploymentStatuses"][scenario.alice][scenario.name]
    live = scenario.deployment(scenario.alice)["status"]
    assert entry["phase"] == "PartialAvailable"
    assert 0 < entry["availableReplicas"] < entry["replicas"]
    # The phase compares against status.replicas (old and new pods), not spec.replicas.
    assert (entry["replicas"], entry["availableReplicas"]) == (
        live["replicas"],
        live["availableReplicas"],
    )
    assert (status["totalParties"], status["availableParties"]) == (2, 2)

    # Recreate drops the old pod too: nothing of alice is available any more.
    scenario.patch_deployment(
        scenario.alice, {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}}
    )

    def progressing() -> dict[str, Any] | None:
        assert scenario.sync("--once").returncode == 0
        status = scenario.status()
        return status if status.get("phase") == "Progressing" else None

    status = eventually(progressing, "Progressing")
    entry = status["partyDeploymentStatuses"][scenario.alice][scenario.name]
    assert (entry["phase"], entry["availableReplicas"]) == ("Progressing", 0)
    assert (status["totalParties"], status["availableParties"]) == (2, 1)
    # Pending pods have no container statuses, so Kuscia's pod diagnostics report nothing.
    assert "reason" not in status
    assert "message" not in status


def test_deleted_deployment_drops_the_party_out(scenario: Scenario) -> None:
    assert scenario.sync("--once").returncode == 0
    before = scenario.status()
    assert (before["phase"], before["availableParties"]) == ("Available", 2)

    api(scenario.cluster, "DELETE", scenario.deployment_path(scenario.bob))
    eventually(
        lambda: scenario.cluster.request("GET", scenario.deployment_path(scenario.bob))[0] == 404,
        "bob's Deployment to be gone",
    )
    result = scenario.sync("--once")
    assert result.returncode == 0, result.stderr
    # Kuscia would keep bob's stale entry (§9.1) and re-create the Deployment; nothing
    # re-creates it here, so bob drops out and counts as Progressing with Kuscia's diagnosis.
    after = scenario.status()
    assert after["partyDeploymentStatuses"] == {
        scenario.alice: before["partyDeploymentStatuses"][scenario.alice]
    }
    assert (after["phase"], after["totalParties"], after["availableParties"]) == (
        "Progressing",
        2,
        1,
    )
    not_found = f"kd's deployment: {scenario.name} not found"
    assert after["reason"] == f"domainID: {scenario.bob}, reason: {not_found}"
    assert after["message"] == not_found

    scenario.create_deployment(scenario.bob)
    recreated = scenario.wait_available(scenario.bob, 1)
    assert scenario.sync("--once").returncode == 0
    entry = scenario.entry(scenario.bob)
    assert entry["creationTimestamp"] == recreated["metadata"]["creationTimestamp"]
    back = scenario.status()
    assert (back["phase"], back["availableParties"]) == ("Available", 2)
    assert "reason" not in back
    assert "message" not in back


def test_problems_are_reported_per_kd_and_the_others_still_sync(scenario: Scenario) -> None:
    nowhere = f"e2e-nowhere-{secrets.token_hex(3)}"
    kds = KDS.format(namespace=scenario.kd_namespace)
    api(scenario.cluster, "POST", kds, kd_manifest("lost", scenario.kd_namespace, [nowhere]))
    api(scenario.cluster, "POST", kds, kd_manifest(
        "invalid", scenario.kd_namespace, [scenario.alice], initiator="carol"
    ))  # fmt: skip

    result = scenario.sync("--once")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    prefix = f"KusciaDeployment {scenario.kd_namespace}"
    assert lines == [
        f"{prefix}/invalid: problem: kusciaDeployment invalid initiator carol should be one"
        " of the parties",
        f"{prefix}/lost: problem: failed to build domain {nowhere} kit info, failed to get"
        f' namespace {nowhere}, namespace "{nowhere}" not found',
        "status-sync: 3 KusciaDeployments: 1 patched, 2 problem",
    ]
    assert scenario.status()["phase"] == "Available"
    lost = api(scenario.cluster, "GET", f"{kds}/lost")["status"]
    assert (lost["phase"], lost["reason"], lost["totalParties"]) == (
        "Failed",
        "BuildPartyKitInfoFailed",
        1,
    )
    invalid = api(scenario.cluster, "GET", f"{kds}/invalid")["status"]
    assert (invalid["phase"], invalid["reason"]) == ("Failed", "ValidateFailed")


def test_forbidden_namespace_is_reported_for_its_kd(scenario: Scenario, tmp_path: Path) -> None:
    cluster, account = scenario.cluster, "limited"
    role = f"kdgen-e2e-limited-{scenario.kd_namespace}"
    rules = [
        {"apiGroups": ["kuscia.secretflow"], "resources": ["kusciadeployments"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["kuscia.secretflow"], "resources": ["kusciadeployments/status"],
         "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    ]  # fmt: skip
    subject = {"kind": "ServiceAccount", "name": account, "namespace": scenario.kd_namespace}
    rbac_api = "/apis/rbac.authorization.k8s.io/v1"
    api(cluster, "POST", f"{rbac_api}/clusterroles", {"metadata": {"name": role}, "rules": rules})
    api(cluster, "POST", f"{rbac_api}/clusterrolebindings", {
        "metadata": {"name": role}, "subjects": [subject],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
    })  # fmt: skip
    try:
        # Deployments may be read in alice's namespace only.
        api(cluster, "POST", f"{rbac_api}/namespaces/{scenario.alice}/roles", {
            "metadata": {"name": "read-deployments"},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"],
                       "verbs": ["list", "watch"]}],
        })  # fmt: skip
        api(cluster, "POST", f"{rbac_api}/namespaces/{scenario.alice}/rolebindings", {
            "metadata": {"name": "read-deployments"}, "subjects": [subject],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "read-deployments"},
        })  # fmt: skip
        token = cluster.service_account_token(scenario.kd_namespace, account)
        kubeconfig = cluster.write_kubeconfig(tmp_path / "limited.kubeconfig", token=token)
        result = scenario.sync("--once", kubeconfig=kubeconfig)
    finally:
        cluster.request("DELETE", f"{rbac_api}/clusterrolebindings/{role}")
        cluster.request("DELETE", f"{rbac_api}/clusterroles/{role}")
    assert result.returncode == 1
    status = scenario.status()
    assert (status["phase"], status["reason"]) == ("Failed", "ListDeploymentsFailed")
    assert status["message"].startswith(
        f"failed to list deployments in namespace {scenario.bob}, deployments.apps is forbidden:"
    )
    assert "partyDeploymentStatuses" not in status  # no entry is refreshed on the failure path


def test_dry_run_prints_the_patch_and_writes_nothing(scenario: Scenario) -> None:
    version = scenario.version()
    result = scenario.sync("--once", "--dry-run")
    assert result.returncode == 0, result.stderr
    records = json_stream(result.stdout)
    assert [(r["action"], r["resource"]) for r in records] == [
        ("patch-status", f"KusciaDeployment {scenario.kd_namespace}/{scenario.name}")
    ]
    patch = records[0]["patch"]["status"]
    assert (patch["phase"], patch["totalParties"], patch["availableParties"]) == (
        "Available",
        2,
        2,
    )
    assert scenario.version() == version
    assert "status" not in scenario.kd()


def test_prune_deletes_only_objects_of_vanished_kds(scenario: Scenario) -> None:
    cluster, owner = scenario.cluster, scenario.kd_namespace
    labels = {LABEL_KUSCIA_DEPLOYMENT_NAME: "vanished", LABEL_OWNER_NAMESPACE: owner}
    objects = {
        f"/api/v1/namespaces/{scenario.alice}/services": {
            "metadata": {"name": "vanished-service", "labels": labels},
            "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]},
        },
        f"/api/v1/namespaces/{scenario.alice}/configmaps": {
            "metadata": {"name": "vanished-configtemplate", "labels": labels},
            "data": {"a": "b"},
        },
        DEPLOYMENTS.format(namespace=scenario.bob): deployment_manifest(
            "vanished", scenario.bob, "vanished", owner
        ),
    }
    paths = []
    for collection, body in objects.items():
        api(cluster, "POST", collection, body)
        paths.append(f"{collection}/{body['metadata']['name']}")

    dry = scenario.sync("--once", "--prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    deletes = [r["resource"] for r in json_stream(dry.stdout) if r["action"] == "delete"]
    assert sorted(deletes) == sorted([
        f"Service {scenario.alice}/vanished-service",
        f"ConfigMap {scenario.alice}/vanished-configtemplate",
        f"Deployment {scenario.bob}/vanished",
    ])  # fmt: skip
    assert all(cluster.request("GET", path)[0] == 200 for path in paths)

    result = scenario.sync("--once", "--prune")
    assert result.returncode == 0, result.stderr
    assert "pruned 3 objects" in result.stderr
    assert [cluster.request("GET", path)[0] for path in paths] == [404, 404, 404]
    # The live KD's own Deployments carry the same owner label and are kept.
    for domain in (scenario.alice, scenario.bob):
        assert cluster.request("GET", scenario.deployment_path(domain))[0] == 200


def test_prune_leaves_gitops_managed_objects_alone(scenario: Scenario) -> None:
    """Issue 9 item 2: Argo CD's and Flux's objects, and owned ones, survive --prune."""
    cluster, owner = scenario.cluster, scenario.kd_namespace
    labels = {LABEL_KUSCIA_DEPLOYMENT_NAME: "vanished", LABEL_OWNER_NAMESPACE: owner}
    configmaps = f"/api/v1/namespaces/{scenario.alice}/configmaps"
    holder = api(cluster, "POST", configmaps, {"metadata": {"name": "holder"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "holder",
                 "uid": holder["metadata"]["uid"]}  # fmt: skip
    managed: dict[str, dict[str, Any]] = {
        "argo-label": {"labels": {**labels, "app.kubernetes.io/instance": "serving"}},
        "argo-annotation": {
            "labels": labels,
            "annotations": {"argocd.argoproj.io/tracking-id": "serving:/ConfigMap:x/argo"},
        },
        "flux": {"labels": {**labels, "kustomize.toolkit.fluxcd.io/name": "serving-alice"}},
        "owned": {"labels": labels, "ownerReferences": [reference]},
    }
    for name, metadata in managed.items():
        api(cluster, "POST", configmaps, {"metadata": {"name": name, **metadata}})
    api(cluster, "POST", configmaps, {"metadata": {"name": "plain", "labels": labels}})
    path = f"{configmaps}/{{}}".format

    result = scenario.sync("--once", "--prune")
    assert result.returncode == 0, result.stderr
    assert "pruned 1 objects" in result.stderr
    assert "kept 4 objects" in result.stderr
    assert cluster.request("GET", path("plain"))[0] == 404
    assert [cluster.request("GET", path(name))[0] for name in managed] == [200] * 4

    told = scenario.sync("--once", "--prune", "--prune-gitops-managed")
    assert told.returncode == 0, told.stderr
    assert "pruned 4 objects" in told.stderr
    assert [cluster.request("GET", path(name))[0] for name in managed] == [404] * 4
    assert cluster.request("GET", path("holder"))[0] == 200  # not labelled: never a candidate


def test_prune_refuses_when_no_kd_exists_but_labelled_objects_do(crds: Cluster) -> None:
    """An empty KD namespace (wrong context or --kd-namespace) must not delete anything."""
    tag = secrets.token_hex(3)
    empty, domain = f"e2e-empty-{tag}", f"e2e-domain-{tag}"
    for namespace in (empty, domain):
        create_namespace(crds, namespace)
    try:
        labels = {LABEL_KUSCIA_DEPLOYMENT_NAME: "serving", LABEL_OWNER_NAMESPACE: empty}
        api(crds, "POST", DEPLOYMENTS.format(namespace=domain),
            deployment_manifest("serving", domain, "serving", empty))  # fmt: skip
        service = f"/api/v1/namespaces/{domain}/services"
        api(crds, "POST", service, {
            "metadata": {"name": "serving-http", "labels": labels},
            "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]},
        })  # fmt: skip
        result = run_sync(crds.kubeconfig, f"--kd-namespace={empty}", "--once", "--prune")
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith(
            f"prune: refusing to prune: no KusciaDeployment in namespace {empty}, but 2 objects"
            " are labelled for one (wrong context or --kd-namespace?)"
        )
        assert lines[1:] == ["status-sync: 0 KusciaDeployments: none"]
        assert crds.request("GET", DEPLOYMENTS.format(namespace=domain) + "/serving")[0] == 200
        assert crds.request("GET", f"{service}/serving-http")[0] == 200
    finally:
        for namespace in (empty, domain):
            crds.request("DELETE", f"/api/v1/namespaces/{namespace}")


def apiserver_requests(cluster: Cluster) -> dict[tuple[str, str, str], float]:
    """The apiserver's own ``apiserver_request_total``, summed by (verb, resource, subresource)."""
    code, text = cluster.request("GET", "/metrics")
    assert code == 200
    totals: dict[tuple[str, str, str], float] = {}
    for line in str(text).splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, _, value = line.rpartition(" ")
        labels = dict(re.findall(r'(\w+)="([^"]*)"', labels_text))
        key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def request_delta(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, int]:
    # The apiserver's counters are cluster-wide. A GET of a namespace is never status-sync's
    # (its client has no such call: it LISTs namespaces), but the namespace controller sends
    # them while it finalises namespaces that earlier tests deleted, so they are left out.
    assert not hasattr(Client, "get_namespace")
    watched = {"kusciadeployments", "deployments", "pods", "namespaces"}
    return {
        key: int(after[key] - before.get(key, 0.0))
        for key in after
        if key[1] in watched
        and key[0] != "WATCH"
        and key[:2] != ("GET", "namespaces")
        and after[key] - before.get(key, 0.0) > 0
    }


def test_request_budget_counted_by_the_apiserver(crds: Cluster) -> None:
    """Issue 11 item 1: a full pass patches each KD once; an idle pass costs 3 requests."""
    tag = secrets.token_hex(3)
    kd_namespace, domains = f"e2e-budget-{tag}", [f"e2e-b{i}-{tag}" for i in range(3)]
    for namespace in (kd_namespace, *domains):
        create_namespace(crds, namespace)
    try:
        for i in range(6):
            parties = [domains[i % 3], domains[(i + 1) % 3]]
            api(crds, "POST", KDS.format(namespace=kd_namespace),
                kd_manifest(f"kd{i}", kd_namespace, parties))  # fmt: skip
            for domain in parties:
                body = deployment_manifest(f"kd{i}", domain, f"kd{i}", kd_namespace)
                api(crds, "POST", DEPLOYMENTS.format(namespace=domain), body)
        for i in range(6):
            for domain in (domains[i % 3], domains[(i + 1) % 3]):
                Scenario(crds, kd_namespace, "", "", name=f"kd{i}").wait_available(domain, 1)

        # The namespace controller LISTs what it deletes: let earlier tests' clean-up finish.
        def settled() -> bool:
            items = api(crds, "GET", "/api/v1/namespaces")["items"]
            return all(n.get("status", {}).get("phase") != "Terminating" for n in items)

        eventually(settled, "no namespace Terminating", 180)
        before = apiserver_requests(crds)
        full = run_sync(crds.kubeconfig, f"--kd-namespace={kd_namespace}", "--once")
        assert full.returncode == 0, full.stderr
        assert "6 patched" in full.stderr
        middle = apiserver_requests(crds)
        idle = run_sync(crds.kubeconfig, f"--kd-namespace={kd_namespace}", "--once")
        assert idle.returncode == 0, idle.stderr
        assert "6 unchanged" in idle.stderr
        after = apiserver_requests(crds)

        assert request_delta(before, middle) == {
            ("LIST", "kusciadeployments", ""): 1,
            ("LIST", "namespaces", ""): 1,
            ("LIST", "deployments", ""): 1,  # one cluster-wide LIST for three namespaces
            ("PATCH", "kusciadeployments", "status"): 6,
        }
        idle_requests = request_delta(middle, after)
        assert idle_requests == {
            ("LIST", "kusciadeployments", ""): 1,
            ("LIST", "namespaces", ""): 1,
            ("LIST", "deployments", ""): 1,
        }
        assert sum(idle_requests.values()) <= 2 + 2 * len(domains)
    finally:
        for namespace in (kd_namespace, *domains):
            crds.request("DELETE", f"/api/v1/namespaces/{namespace}")


# --- 409: another writer between read and patch -----------------------------------------------


def test_conflict_with_another_writer_is_reread_and_retried(scenario: Scenario) -> None:
    from kdgen.controller import client, reconcile, runner

    cluster = scenario.cluster
    attempts: list[int] = []

    class RacingCluster(client.Client):
        """Lets another writer change the status right before each of our first patches."""

        def __init__(self, api_client: Any, races: int) -> None:
            super().__init__(api_client)
            self.races = races

        def patch_kd_status(
            self, namespace: str, name: str, body: dict[str, Any]
        ) -> dict[str, Any]:
            attempts.append(len(attempts))
            if len(attempts) <= self.races:
                other = {"status": {"totalParties": 7, "message": f"other writer {len(attempts)}",
                                    "availableParties": 0}}  # fmt: skip
                api(cluster, "PATCH", scenario.kd_path + "/status", other, content_type=MERGE)
            return super().patch_kd_status(namespace, name, body)

    options = reconcile.SyncOptions(kd_namespace=scenario.kd_namespace, conflict_retries=3)
    with cluster.api_client() as client:
        report = runner.run_once(RacingCluster(client, races=1), options, out=io.StringIO())
    assert [r.outcome for r in report.results] == ["patched"]
    assert len(attempts) == 2  # the first patch got 409, the re-read second one went through
    status = scenario.status()
    # Recomputed from the re-read KD: its sticky totalParties 7 stays, so no rule fires and the
    # phase stays empty with the other writer's message; availableParties is ours again.
    assert (status["totalParties"], status["availableParties"]) == (7, 2)
    assert status["message"] == "other writer 1"
    assert "phase" not in status

    # Make a write necessary again, then let the other writer win every time. The stale message
    # makes the other writer's first patch ("other writer 1" again) a real change: an identical
    # merge patch would not bump the resourceVersion, and ours would not conflict.
    stale = {"status": {"availableParties": 0, "message": "stale"}}
    api(cluster, "PATCH", scenario.kd_path + "/status", stale, content_type=MERGE)
    attempts.clear()
    with cluster.api_client() as client:
        report = runner.run_once(RacingCluster(client, races=99), options, out=io.StringIO())
    assert [(r.outcome, r.detail) for r in report.results] == [
        ("failed", "status changed by another writer 4 times in a row")
    ]
    assert len(attempts) == 4
    assert not report.is_ok


# --- RBAC: the ClusterRole is enough, and no more ---------------------------------------------


def test_service_account_token_syncs_but_cannot_change_deployments(
    scenario: Scenario, rbac: Cluster, tmp_path: Path
) -> None:
    kubeconfig, token = service_account_kubeconfig(rbac, tmp_path / "sa.kubeconfig")
    result = scenario.sync("--once", kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    assert scenario.status()["phase"] == "Available"

    path = scenario.deployment_path(scenario.alice)
    scale = {"spec": {"replicas": 5}}
    assert rbac.request("PATCH", path, scale, content_type=MERGE, token=token)[0] == 403
    live = scenario.deployment(scenario.alice)
    assert rbac.request("PUT", path, live, token=token)[0] == 403
    assert rbac.request("DELETE", path, token=token)[0] == 403
    spec_patch = {"spec": {"inputConfig": '{"x":1}'}}
    assert (
        rbac.request("PATCH", scenario.kd_path, spec_patch, content_type=MERGE, token=token)[0]
        == 403
    )
    scaled = rbac.kubectl(
        "scale", "deployment", scenario.name, "-n", scenario.alice, "--replicas=2",
        kubeconfig=kubeconfig, check=False,
    )  # fmt: skip
    assert scaled.returncode != 0
    assert "forbidden" in scaled.stderr
    assert scenario.deployment(scenario.alice)["spec"]["replicas"] == 1


@pytest.mark.parametrize("overlay", ["cronjob", "watch", "prune"])
def test_deploy_overlays_pass_server_side_dry_run(rbac: Cluster, overlay: str) -> None:
    rendered = rbac.kubectl("kustomize", str(DEPLOY / "overlays" / overlay)).stdout
    result = rbac.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert result.returncode == 0, result.stderr


# --- the command line -------------------------------------------------------------------------


def test_unreachable_cluster_is_one_line_exit_1(tmp_path: Path, crds: Cluster) -> None:
    port = free_port()  # nothing listens there
    config = crds.write_kubeconfig(tmp_path / "dead.kubeconfig", token="x")
    config.write_text(config.read_text().replace(crds.server, f"https://127.0.0.1:{port}"))
    result = run_sync(config, "--once")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: list kusciadeployments in namespace cross-domain: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(crds: Cluster) -> None:
    result = run_sync(crds.kubeconfig, "--once", "--leader-election")
    assert result.returncode == 2
    assert "--leader-election needs --watch" in result.stderr
    env = {**os.environ, "KUBECONFIG": str(crds.kubeconfig)}
    shown = subprocess.run(
        [sys.executable, "-m", "kdgen", "status-sync", "--help"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert shown.returncode == 0
    assert "--once / --watch" in shown.stdout
