"""deploy/status-sync renders what the docs promise (kubectl kustomize, no cluster needed).

The e2e suite applies every overlay with a server-side dry run; this checks the parts a test
cluster cannot take (the ServiceMonitor needs the Prometheus Operator's CRDs) and the
watch component's probes, Service and PodDisruptionBudget.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "status-sync"

pytestmark = pytest.mark.tools


def render(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is needed on PATH"
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in docs}


def test_watch_overlay_has_probes_service_and_pdb() -> None:
    docs = by_kind(render(DEPLOY / "overlays" / "watch"))
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pods = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service, pdb = docs["Service"], docs["PodDisruptionBudget"]
    assert service["spec"]["selector"].items() <= pods.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pods.items()
    assert pdb["spec"]["minAvailable"] == 1 < docs["Deployment"]["spec"]["replicas"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [
        p["name"] for p in container["ports"]
    ]


def test_servicemonitor_component_scrapes_the_watch_service(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "kdgen-system",
                "resources": [os.path.relpath(DEPLOY / "base", tmp_path)],
                "components": [
                    os.path.relpath(DEPLOY / "components" / name, tmp_path)
                    for name in ("watch", "servicemonitor")
                ],
            }
        )
    )
    docs = by_kind(render(tmp_path))
    monitor, service = docs["ServiceMonitor"], docs["Service"]
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [
        p["name"] for p in service["spec"]["ports"]
    ]
