"""kdgen's output applied to a real apiserver: every object accepted, plain Deployments Available.

Applies the Kuscia CRDs from deploy/crds, the seed's KD and AppImage, then server-side applies
``kdgen generate`` output for both profiles and both port modes. Only the plain profile can
become Available: the kuscia profile asks for ``kuscia-scheduler``, which a plain cluster lacks,
exactly as on a cluster without Kuscia.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "secretflow-serving"
DOMAINS = ("alice", "bob")
SELECTOR = "kuscia.secretflow/kd-name=secretflow-serving"


def kdgen(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "kdgen", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def namespaces(*names: str) -> str:
    return "".join(
        yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}) + "---\n"
        for n in names
    )


@pytest.fixture(scope="module")
def kuscia(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster with Kuscia's CRDs, the namespaces and the seed's KD and AppImage."""
    cluster.kubectl("apply", "--server-side", "-k", str(REPO / "deploy" / "crds"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/kusciadeployments.kuscia.secretflow", "crd/appimages.kuscia.secretflow",
    )  # fmt: skip
    cluster.kubectl("apply", "--server-side", "-f", "-", input=namespaces("cross-domain", *DOMAINS))
    cluster.kubectl("apply", "--server-side", "-f", str(EXAMPLE))
    yield cluster
    for domain in DOMAINS:
        cluster.kubectl(
            "delete", "deployment,service,configmap", "-n", domain, "-l", SELECTOR,
            "--wait=true", "--timeout=60s",
        )  # fmt: skip


def test_kd_and_appimage_are_stored_as_written(kuscia: Cluster) -> None:
    out = kuscia.kubectl("get", "kd", "secretflow-serving", "-n", "cross-domain", "-o", "json")
    kd = json.loads(out.stdout)
    assert [p["domainID"] for p in kd["spec"]["parties"]] == ["alice", "bob"]
    image = json.loads(
        kuscia.kubectl("get", "aimg", "secretflow-serving-image", "-o", "json").stdout
    )
    ports = image["spec"]["deployTemplates"][0]["spec"]["containers"][0]["ports"]
    # The apiserver applied the CRD's defaults the generator reproduces offline.
    assert [(p["name"], p["protocol"], p["scope"]) for p in ports] == [
        ("service", "HTTP", "Cluster"),
        ("internal", "HTTP", "Domain"),
        ("brpc-builtin", "HTTP", "Domain"),
    ]


def test_client_dry_run_accepts_the_whole_stream(kuscia: Cluster) -> None:
    stream = kdgen("generate", str(EXAMPLE))
    result = kuscia.kubectl("apply", "--dry-run=client", "-f", "-", input=stream)
    # The AppImage and the KD come first (issue 9), then the 10 objects made from them.
    assert result.stdout.count("(dry run)") == 12
    first = [line.split(" ")[0] for line in result.stdout.splitlines()[:2]]
    assert first == [
        "appimage.kuscia.secretflow/secretflow-serving-image",
        "kusciadeployment.kuscia.secretflow/secretflow-serving",
    ]


@pytest.mark.parametrize("ports", ["declared", "allocated"])
@pytest.mark.parametrize("profile", ["kuscia", "plain"])
def test_server_side_apply_accepts_every_object(kuscia: Cluster, profile: str, ports: str) -> None:
    stream = kdgen("generate", "--profile", profile, "--ports", ports, str(EXAMPLE))
    expected = sorted(
        f"{d['kind'].lower()}/{d['metadata']['name']}"
        for d in yaml.safe_load_all(stream)
        if d["metadata"].get("namespace") == "alice"
    )
    kuscia.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=kdgen-e2e",
        "--validate=strict", "-f", "-", input=stream,
    )  # fmt: skip
    # The stream's KD and AppImage applied under the strict schema check, beside the objects.
    shown = kuscia.kubectl(
        "get", "kd", "secretflow-serving", "-n", "cross-domain", "--show-managed-fields",
        "-o", "json",
    )  # fmt: skip
    managers = {f["manager"] for f in json.loads(shown.stdout)["metadata"]["managedFields"]}
    assert "kdgen-e2e" in managers
    for domain in DOMAINS:
        listed = kuscia.kubectl(
            "get", "deployment,service,configmap", "-n", domain, "-l", SELECTOR, "-o", "name"
        )
        assert sorted(listed.stdout.split()) == sorted(
            name.replace("deployment/", "deployment.apps/") for name in expected
        )
    live = _get(kuscia, "service", "secretflow-serving-service", "alice")
    generated = next(
        d for d in yaml.safe_load_all(stream)
        if d["kind"] == "Service" and d["metadata"].get("namespace") == "alice"
        and d["metadata"]["name"] == "secretflow-serving-service"
    )  # fmt: skip
    assert live["spec"]["ports"][0]["port"] == generated["spec"]["ports"][0]["port"]
    assert live["spec"]["clusterIP"] == "None"
    if profile == "plain":
        for domain in DOMAINS:
            kuscia.kubectl(
                "rollout", "status", "deployment/secretflow-serving", "-n", domain, "--timeout=120s"
            )
            deployment = _get(kuscia, "deployment", "secretflow-serving", domain)
            conditions = {c["type"]: c["status"] for c in deployment["status"]["conditions"]}
            assert conditions["Available"] == "True"
            assert deployment["status"]["availableReplicas"] == 1


def _get(cluster: Cluster, kind: str, name: str, namespace: str) -> Any:
    return json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)
