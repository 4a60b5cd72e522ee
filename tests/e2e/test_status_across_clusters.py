"""status-sync over two real control planes: one per domain, the KD in the first.

As in a two-organisation deployment, alice's Deployment runs in the home cluster (which holds
the KD) and bob's in bob's own cluster. Kuscia's controller would learn bob's state through its
interconnection (a KusciaDeploymentSummary, spec §10) and apply its phase rules over all
parties (``refreshPartyDeploymentStatuses``, §9.2); ``kdgen status-sync --domain-kubeconfig``
reads bob's cluster itself. Without a way to see bob, the status names bob (reason
``PartnerNotObserved``) instead of staying Progressing without a word.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster, start_cluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "secretflow-serving"
KD = "secretflow-serving"


def run_kdgen(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "kdgen", *args], capture_output=True, text=True, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def namespaces(*names: str) -> str:
    return "".join(
        yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}) + "---\n"
        for n in names
    )


@pytest.fixture(scope="module")
def bob_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """A second control plane: bob's own cluster."""
    second = start_cluster()
    try:
        yield second
    finally:
        second.stop()
        shutil.rmtree(second.state_dir, ignore_errors=True)


class Scene:
    def __init__(self, home: Cluster, bob: Cluster, tag: str, tmp: Path) -> None:
        self.home, self.bob = home, bob
        self.kd_namespace = f"xc-kds-{tag}"
        self.alice, self.bobns = f"xc-alice-{tag}", f"xc-bob-{tag}"
        self.home_kubeconfig = home.write_kubeconfig(tmp / "home.kubeconfig")
        self.bob_kubeconfig = bob.write_kubeconfig(tmp / "bob.kubeconfig")

    def status(self) -> dict[str, Any]:
        out = self.home.kubectl("get", "kd", KD, "-n", self.kd_namespace, "-o", "json").stdout
        status: dict[str, Any] = json.loads(out).get("status") or {}
        return status

    def sync(self, *flags: str) -> subprocess.CompletedProcess[str]:
        return run_kdgen(
            "status-sync", "--once", "--kubeconfig", str(self.home_kubeconfig),
            "--kd-namespace", self.kd_namespace, *flags, check=False,
        )  # fmt: skip


@pytest.fixture
def scene(cluster: Cluster, bob_cluster: Cluster, tmp_path: Path) -> Iterator[Scene]:
    """The seed KD with parties alice (home cluster) and bob (bob's cluster), both Available."""
    made = Scene(cluster, bob_cluster, secrets.token_hex(3), tmp_path)
    source = tmp_path / "src"
    source.mkdir()
    for file in EXAMPLE.glob("*.yaml"):
        text = file.read_text().replace("domainID: alice", f"domainID: {made.alice}")
        text = text.replace("domainID: bob", f"domainID: {made.bobns}")
        text = text.replace("initiator: alice", f"initiator: {made.alice}")
        (source / file.name).write_text(text)
    for target in (cluster, bob_cluster):
        target.kubectl("apply", "--server-side", "-k", str(REPO / "deploy" / "crds"))
        target.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s",
            "crd/kusciadeployments.kuscia.secretflow",
        )  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=namespaces(made.kd_namespace, made.alice))
    bob_cluster.kubectl("apply", "-f", "-", input=namespaces(made.bobns))
    stream = run_kdgen("generate", "--profile", "plain", str(source))
    objects = [
        d
        for d in yaml.safe_load_all(stream.stdout)
        if d and d["kind"] in ("Deployment", "Service", "ConfigMap")
    ]
    kd = yaml.safe_load((source / "secretflow-serving.yaml").read_text())
    kd["metadata"]["namespace"] = made.kd_namespace
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(kd))
    for target, namespace in ((cluster, made.alice), (bob_cluster, made.bobns)):
        mine = [o for o in objects if o["metadata"]["namespace"] == namespace]
        target.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(mine))
        target.kubectl("rollout", "status", f"deployment/{KD}", "-n", namespace, "--timeout=120s")
    yield made
    cluster.kubectl("delete", "namespace", made.kd_namespace, made.alice, "--wait=false")
    bob_cluster.kubectl("delete", "namespace", made.bobns, "--wait=false")


def test_each_domain_read_from_its_own_cluster_makes_the_kd_available(scene: Scene) -> None:
    result = scene.sync("--domain-kubeconfig", f"{scene.bobns}={scene.bob_kubeconfig}")
    assert result.returncode == 0, result.stderr
    status = scene.status()
    assert (status["phase"], status["availableParties"], status["totalParties"]) == (
        "Available",
        2,
        2,
    )
    entries = status["partyDeploymentStatuses"]
    assert set(entries) == {scene.alice, scene.bobns}
    assert entries[scene.bobns][KD]["availableReplicas"] == 1
    assert "reason" not in status


def test_a_partner_seen_from_nowhere_is_named(scene: Scene) -> None:
    """``--partner-domain`` alone: bob counts in totalParties but cannot be read."""
    result = scene.sync("--partner-domain", scene.bobns)
    assert result.returncode == 0, result.stderr
    status = scene.status()
    assert (status["availableParties"], status["totalParties"]) == (1, 2)
    assert status["reason"] == "PartnerNotObserved"
    assert status["message"] == (
        f"party {scene.bobns} is not observed: it is hosted by another cluster that "
        f"status-sync is not given (--domain-kubeconfig {scene.bobns}=PATH or "
        f"--domain-context {scene.bobns}=NAME)"
    )
    assert status.get("phase", "") == ""  # Kuscia leaves the phase as it was (§9.2 step 6)


def test_an_unreachable_partner_cluster_is_named_then_recovers(
    scene: Scene, tmp_path: Path
) -> None:
    broken = tmp_path / "bob-broken.kubeconfig"
    config = yaml.safe_load(scene.bob_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # nothing listens
    broken.write_text(yaml.safe_dump(config))

    result = scene.sync("--domain-kubeconfig", f"{scene.bobns}={broken}")

    assert result.returncode == 0, result.stderr
    status = scene.status()
    assert status["reason"] == "PartnerNotObserved"
    assert status["message"].startswith(
        f"party {scene.bobns} is not observed: cannot read the cluster of domain {scene.bobns}: "
    )
    assert status["availableParties"] == 1
    # bob's cluster back in view: Kuscia's rules over both clusters, the reason gone
    fixed = scene.sync("--domain-kubeconfig", f"{scene.bobns}={scene.bob_kubeconfig}")
    assert fixed.returncode == 0, fixed.stderr
    status = scene.status()
    assert (status["phase"], status["availableParties"]) == ("Available", 2)
    assert "reason" not in status
