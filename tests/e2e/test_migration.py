"""Moving a running Kuscia deployment to GitOps, on the real control plane.

The cluster first gets what a Kuscia cluster holds for the seed KD (examples/secretflow-serving):

1. the KD and AppImage as a user applied them (``kubectl apply``, client-side);
2. what Kuscia's controller writes on its first pass (spec §2 step 7, §8): the KD annotations
   ``initiator``, ``self-cluster-as-initiator``, ``interconn-self-parties`` and
   ``allocated-ports`` (``computeExceptGeneratedAnnotations``, ``allocatePorts``);
3. what it creates on its second pass: ``tests/fixtures/migration/kuscia-controller-objects.yaml``
   (derived from ``generateService``, ``generateConfigMap``, ``generateDeployment``; its
   header says how), with the KD's real uid in the labels and selectors, POSTed under the
   controller's own field manager as its client does;
4. the status ``refreshPartyDeploymentStatuses`` writes (the status subresource).

Then the commands of README "Moving from Kuscia's controller to GitOps" run: export with
``kubectl get kd,appimage -o yaml``, ``kdgen import`` into source files, ``kdgen generate``,
server-side apply. The test asserts no error (no conflict, no immutable selector), no change to
any Deployment (same generation and pod template, so no new ReplicaSet and no restarted pod),
and the same Service ports; then that the same stream applies where the KD does not exist
(the apiserver gives it a new uid; the objects keep the uid they were made with).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "secretflow-serving"
KUSCIA_OBJECTS = REPO / "tests" / "fixtures" / "migration" / "kuscia-controller-objects.yaml"
KD = "secretflow-serving"
DOMAINS = ("alice", "bob")
SELECTOR = f"kuscia.secretflow/kd-name={KD}"
KUSCIA_MANAGER = "kuscia-controller"
ALLOCATED_PORTS = (
    '[{"domainID":"alice","namedPort":{"brpc-builtin":22294,"internal":22293,"service":22291}},'
    '{"domainID":"bob","namedPort":{"brpc-builtin":30213,"internal":30212,"service":30210}}]'
)


def kdgen(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "kdgen", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def get(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def delete_everything(cluster: Cluster) -> None:
    cluster.kubectl(
        "delete", "kd", KD, "-n", "cross-domain", "--ignore-not-found", "--wait=true",
        "--timeout=60s",
    )  # fmt: skip
    for domain in DOMAINS:
        cluster.kubectl(
            "delete", "deployment,replicaset,service,configmap", "-n", domain, "-l", SELECTOR,
            "--wait=true", "--timeout=60s",
        )  # fmt: skip


def replica_sets(cluster: Cluster, domain: str, owner_uid: str) -> list[str]:
    items = get(cluster, "replicaset", "-n", domain)["items"]
    return sorted(
        rs["metadata"]["name"]
        for rs in items
        if any(ref["uid"] == owner_uid for ref in rs["metadata"].get("ownerReferences", []))
    )


def snapshot(cluster: Cluster) -> dict[str, Any]:
    """Per domain: each Deployment's identity, generation, pod template and ReplicaSets; the
    Service ports."""
    state: dict[str, Any] = {}
    for domain in DOMAINS:
        deployment = get(cluster, "deployment", KD, "-n", domain)
        uid = deployment["metadata"]["uid"]
        services = get(cluster, "service", "-n", domain, "-l", SELECTOR)["items"]
        state[domain] = {
            "uid": uid,
            "generation": deployment["metadata"]["generation"],
            "selector": deployment["spec"]["selector"],
            "template": deployment["spec"]["template"],
            "replica_sets": replica_sets(cluster, domain, uid),
            "service_ports": {
                s["metadata"]["name"]: [(p["name"], p["port"]) for p in s["spec"]["ports"]]
                for s in services
            },
        }
    return state


@pytest.fixture
def kuscia_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster holding the seed KD and what Kuscia's controller made for it."""
    build_kuscia_state(cluster)
    yield cluster
    delete_everything(cluster)


def build_kuscia_state(cluster: Cluster) -> None:
    """Make the cluster hold what a Kuscia cluster holds for the seed KD (module docstring)."""
    cluster.kubectl("apply", "--server-side", "-k", str(REPO / "deploy" / "crds"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/kusciadeployments.kuscia.secretflow", "crd/appimages.kuscia.secretflow",
    )  # fmt: skip
    namespaces = "".join(
        yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}) + "---\n"
        for n in ("cross-domain", *DOMAINS)
    )
    cluster.kubectl("apply", "--server-side", "-f", "-", input=namespaces)
    delete_everything(cluster)
    # 1. the user's kubectl apply, before GitOps
    cluster.kubectl("apply", "-f", str(EXAMPLE))
    # 2. Kuscia's first pass: the KD's generated annotations (spec §8)
    cluster.kubectl(
        "annotate", "kd", KD, "-n", "cross-domain", f"--field-manager={KUSCIA_MANAGER}",
        "kuscia.secretflow/initiator=alice",
        "kuscia.secretflow/self-cluster-as-initiator=true",
        "kuscia.secretflow/interconn-self-parties=alice_bob",
        f"kuscia.secretflow/allocated-ports={ALLOCATED_PORTS}",
    )  # fmt: skip
    uid = get(cluster, "kd", KD, "-n", "cross-domain")["metadata"]["uid"]
    # 3. Kuscia's second pass: the objects, created (not applied) as its client does
    objects = KUSCIA_OBJECTS.read_text().replace("${KD_UID}", uid)
    cluster.kubectl("create", f"--field-manager={KUSCIA_MANAGER}", "-f", "-", input=objects)
    # 4. the status Kuscia writes once the Deployments report
    status = {
        "status": {
            "phase": "Progressing",
            "totalParties": 2,
            "availableParties": 0,
            "lastReconcileTime": "2026-11-20T08:38:02Z",
        }
    }
    cluster.kubectl(
        "patch", "kd", KD, "-n", "cross-domain", "--subresource=status", "--type=merge",
        f"--field-manager={KUSCIA_MANAGER}", "-p", json.dumps(status),
    )  # fmt: skip
    for domain in DOMAINS:  # the controller-manager makes each Deployment's ReplicaSet
        deployment_uid = get(cluster, "deployment", KD, "-n", domain)["metadata"]["uid"]
        deadline = time.monotonic() + 60
        while not replica_sets(cluster, domain, deployment_uid):
            assert time.monotonic() < deadline, f"no ReplicaSet for {domain}/{KD}"
            time.sleep(0.5)


def export_and_generate(cluster: Cluster, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """README's commands: export, import, generate. Returns the live KD export and the stream."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    export = cluster.kubectl(
        "get", "kd,appimage", "-n", "cross-domain", "-o", "yaml", "--show-managed-fields"
    ).stdout
    (tmp_path / "export.yaml").write_text(export)
    kdgen("import", str(tmp_path / "export.yaml"), "-o", str(tmp_path / "kuscia"))
    stream = kdgen("generate", str(tmp_path / "kuscia")).stdout
    exported = yaml.safe_load(export)
    [live_kd] = [item for item in exported["items"] if item["kind"] == "KusciaDeployment"]
    return live_kd, stream


def server_side_apply(cluster: Cluster, stream: str) -> subprocess.CompletedProcess[str]:
    """``kubectl apply --server-side`` as a GitOps engine does it, without forcing conflicts."""
    return cluster.kubectl(
        "apply", "--server-side", "--field-manager=kdgen", "-f", "-", input=stream, check=False
    )


def test_imported_sources_apply_over_kuscia_objects_without_touching_a_pod(
    kuscia_cluster: Cluster, tmp_path: Path
) -> None:
    before = snapshot(kuscia_cluster)
    live_kd, stream = export_and_generate(kuscia_cluster, tmp_path)
    # a live export, as the issue describes it
    assert {"uid", "resourceVersion", "managedFields"} <= set(live_kd["metadata"])
    assert live_kd["status"]["totalParties"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in live_kd["metadata"]["annotations"]

    diff = kuscia_cluster.kubectl(
        "diff", "--server-side", "--field-manager=kdgen", "-f", "-", input=stream, check=False
    )
    # README's review step: the only change is the KD gaining kdgen's record of its own uid.
    changed = [
        line
        for line in diff.stdout.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == [f"+    kdgen.kuscia.secretflow/kd-uid: {live_kd['metadata']['uid']}"], (
        diff.stdout + diff.stderr
    )
    assert diff.stdout.count("diff -u") == 1
    assert "KusciaDeployment.cross-domain.secretflow-serving" in diff.stdout.splitlines()[0]
    result = server_side_apply(kuscia_cluster, stream)

    assert result.returncode == 0, result.stderr
    applied = result.stdout.splitlines()
    assert len(applied) == 12  # AppImage, KD, and per domain a ConfigMap, 3 Services, a Deployment
    assert all(line.endswith("serverside-applied") for line in applied), applied
    after = snapshot(kuscia_cluster)
    assert after == before  # same generation, pod template, ReplicaSets and Service ports
    live_uid = live_kd["metadata"]["uid"]
    for domain in DOMAINS:
        assert after[domain]["selector"]["matchLabels"]["kuscia.secretflow/kd-uid"] == live_uid
    kd_now = get(kuscia_cluster, "kd", KD, "-n", "cross-domain", "--show-managed-fields")
    assert kd_now["metadata"]["uid"] == live_kd["metadata"]["uid"]
    assert kd_now["metadata"]["annotations"]["kuscia.secretflow/allocated-ports"] == ALLOCATED_PORTS
    assert kd_now["status"] == live_kd["status"]  # the status subresource is not the KD's spec
    managers = {m["manager"] for m in kd_now["metadata"]["managedFields"]}
    assert "kdgen" in managers


def test_the_same_sources_apply_where_the_kd_does_not_exist(
    kuscia_cluster: Cluster, tmp_path: Path
) -> None:
    """A new cluster, or a KD deleted on the way: the apiserver gives the KD a new uid, and
    the objects keep the one their selectors carry, also through a second export and import."""
    live_kd, stream = export_and_generate(kuscia_cluster, tmp_path / "first")
    before = snapshot(kuscia_cluster)
    kuscia_cluster.kubectl("delete", "kd", KD, "-n", "cross-domain", "--wait=true")
    # The export itself cannot be applied here (as kubectl prints it, without managedFields):
    # it names the old object's uid.
    raw = copy.deepcopy(live_kd)
    del raw["metadata"]["managedFields"]
    refused = server_side_apply(kuscia_cluster, yaml.safe_dump(raw))
    assert refused.returncode != 0
    assert "uid mismatch" in refused.stderr, refused.stderr

    result = server_side_apply(kuscia_cluster, stream)

    assert result.returncode == 0, result.stderr
    created = get(kuscia_cluster, "kd", KD, "-n", "cross-domain")
    assert created["metadata"]["uid"] != live_kd["metadata"]["uid"]
    assert snapshot(kuscia_cluster) == before
    # Exported again from here, the KD has the new uid, but the objects still need the old one.
    again_kd, again = export_and_generate(kuscia_cluster, tmp_path / "second")
    assert again_kd["metadata"]["uid"] == created["metadata"]["uid"]
    assert list(yaml.safe_load_all(again)) == list(yaml.safe_load_all(stream))
    assert server_side_apply(kuscia_cluster, again).returncode == 0
    assert snapshot(kuscia_cluster) == before
