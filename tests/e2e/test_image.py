"""The status-sync image, built with podman and run against the test control plane (item 7).

``scripts/build-image`` builds ``deploy/status-sync/Dockerfile`` on a local Debian bookworm
base (``BASE_IMAGE``); the container then runs as in a pod: read-only root filesystem, uid
65532, a ServiceAccount token, the CA and the namespace mounted at
``/var/run/secrets/kubernetes.io/serviceaccount``, and ``KUBERNETES_SERVICE_HOST``/``PORT``
pointing at the apiserver (host network, 127.0.0.1), so the in-cluster configuration is what
the client loads. ``--once`` must sync a KD and ``--watch`` must follow a scale change; every
container is removed afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_status_sync import (
    SYNC_ACCOUNT,
    SYNC_NAMESPACE,
    Scenario,
    crds,
    eventually,
    rbac,
    scenario,
)
from tests.support.cluster import Cluster

__all__ = ["crds", "rbac", "scenario"]  # fixtures shared with test_status_sync.py

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def image() -> tuple[str, dict[str, str]]:
    done = subprocess.run(
        [str(REPO / "scripts" / "build-image")], capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stderr[-4000:]
    conf_line, name = done.stdout.strip().splitlines()[-2:]
    env = {**os.environ, "CONTAINERS_CONF": conf_line.split("=", 1)[1]}
    return name, env


@pytest.fixture
def service_account_dir(rbac: Cluster, tmp_path: Path) -> Path:
    """What the kubelet mounts for a pod's ServiceAccount: token, ca.crt, namespace."""
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    token = rbac.service_account_token(SYNC_NAMESPACE, SYNC_ACCOUNT, create=False)
    (directory / "token").write_text(token)
    shutil.copy(rbac.ca_file, directory / "ca.crt")
    (directory / "namespace").write_text(SYNC_NAMESPACE)
    for f in directory.iterdir():
        f.chmod(0o644)
    directory.chmod(0o755)
    tmp_path.chmod(0o755)
    return directory


@pytest.fixture
def containers(image: tuple[str, dict[str, str]]) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    _, env = image
    for name in names:
        subprocess.run(["podman", "rm", "-f", "-t", "2", name], env=env, capture_output=True)


def podman_run(
    image: tuple[str, dict[str, str]],
    cluster: Cluster,
    service_account: Path,
    name: str,
    *args: str,
    detach: bool = False,
) -> subprocess.CompletedProcess[str]:
    tag, env = image
    argv = [
        "podman", "--runtime", "runc", "--cgroup-manager=cgroupfs", "run",
        "--name", name, "--read-only", "--user", "65532:65532", "--network", "host",
        "--tmpfs", "/tmp",
        "-v", f"{service_account}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
        "-e", "KUBERNETES_SERVICE_HOST=127.0.0.1",
        "-e", f"KUBERNETES_SERVICE_PORT={cluster.ports.apiserver}",
        *(["-d"] if detach else ["--rm"]),
        tag, *args,
    ]  # fmt: skip
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def test_image_runs_once_and_watch_as_in_a_pod(
    image: tuple[str, dict[str, str]],
    scenario: Scenario,
    service_account_dir: Path,
    containers: list[str],
) -> None:
    tag, env = image
    user = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Config.User}}", tag],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert user.stdout.strip() == "65532:65532"

    once = f"kdgen-once-{secrets.token_hex(3)}"
    containers.append(once)
    done = podman_run(
        image, scenario.cluster, service_account_dir, once,
        "--once", f"--kd-namespace={scenario.kd_namespace}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 patched" in done.stderr
    assert scenario.status()["phase"] == "Available"

    watch = f"kdgen-watch-{secrets.token_hex(3)}"
    containers.append(watch)
    started = podman_run(
        image, scenario.cluster, service_account_dir, watch,
        "--watch", f"--kd-namespace={scenario.kd_namespace}", "--metrics-addr=",
        detach=True,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    scenario.patch_deployment(scenario.alice, {"spec": {"replicas": 2}})
    scenario.wait_available(scenario.alice, 2)
    eventually(
        lambda: scenario.entry(scenario.alice).get("availableReplicas") == 2,
        "the containerised --watch to follow the scale",
        60,
    )
    state = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Running}}", watch],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert state.stdout.strip() == "true"
