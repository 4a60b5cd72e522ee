"""status-sync under faults on the real control plane (issue 11, item 6).

Each fault is followed by convergence: every KD's status matches its Deployments again, and
its ``spec`` is untouched (``metadata.generation`` unchanged). The 409 storm, the leader killed
while another replica waits, a KD deleted mid-pass and the apiserver restarted mid-watch are in
``test_status_sync.py`` (and the unit tests); here: etcd paused for 10 s under ``--watch``, a
slow apiserver (a latency proxy on 127.0.0.1) for ``--once`` and ``--watch``, and the apiserver
restarted in the middle of a ``--once`` pass.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_status_sync import (
    DEPLOYMENTS,
    KDS,
    Scenario,
    api,
    crds,
    create_namespace,
    deployment_manifest,
    eventually,
    kd_manifest,
    run_sync,
)
from tests.support.cluster import Cluster

__all__ = ["crds"]  # the CRD fixture, shared with test_status_sync.py


class LatencyProxy:
    """A TCP proxy on 127.0.0.1 that delays every chunk it forwards by ``delay`` seconds.

    TLS passes through untouched (the serving certificate is for 127.0.0.1 on any port).
    """

    def __init__(self, target_port: int, delay: float) -> None:
        self.delay = delay
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target), timeout=10)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def many(crds: Cluster) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """30 two-party KDs over 3 namespaces in a KD namespace of their own, all Available."""
    tag = secrets.token_hex(3)
    kd_namespace = f"e2e-faults-{tag}"
    domains = [f"e2e-f{i}-{tag}" for i in range(3)]
    for namespace in (kd_namespace, *domains):
        create_namespace(crds, namespace)
    triples = []
    for i in range(30):
        name, a, b = f"kd{i:02d}", domains[i % 3], domains[(i + 1) % 3]
        triples.append((name, a, b))
        api(
            crds,
            "POST",
            KDS.format(namespace=kd_namespace),
            kd_manifest(name, kd_namespace, [a, b]),
        )
        for domain in (a, b):
            manifest = deployment_manifest(name, domain, name, kd_namespace)
            api(crds, "POST", DEPLOYMENTS.format(namespace=domain), manifest)
    for name, a, b in triples:
        for domain in (a, b):
            Scenario(crds, kd_namespace, a, b, name=name).wait_available(domain, 1)
    yield kd_namespace, triples
    for namespace in (kd_namespace, *domains):
        crds.request("DELETE", f"/api/v1/namespaces/{namespace}")


def kds_of(cluster: Cluster, kd_namespace: str) -> dict[str, dict[str, Any]]:
    items = api(cluster, "GET", KDS.format(namespace=kd_namespace))["items"]
    return {kd["metadata"]["name"]: kd for kd in items}


def converged(cluster: Cluster, kd_namespace: str, triples: list[tuple[str, str, str]]) -> bool:
    """Every KD's entries show its Deployments' current available replicas, phase Available."""
    kds = kds_of(cluster, kd_namespace)
    for name, a, b in triples:
        status = kds[name].get("status") or {}
        if status.get("phase") != "Available":
            return False
        for domain in (a, b):
            live = api(cluster, "GET", DEPLOYMENTS.format(namespace=domain) + f"/{name}")
            entry = (status.get("partyDeploymentStatuses") or {}).get(domain, {}).get(name) or {}
            if entry.get("availableReplicas") != (live.get("status") or {}).get(
                "availableReplicas"
            ):
                return False
    return True


def generations(cluster: Cluster, kd_namespace: str) -> dict[str, tuple[int, Any]]:
    return {
        name: (kd["metadata"]["generation"], kd["spec"])
        for name, kd in kds_of(cluster, kd_namespace).items()
    }


def scale(cluster: Cluster, domain: str, name: str, replicas: int) -> None:
    api(
        cluster,
        "PATCH",
        DEPLOYMENTS.format(namespace=domain) + f"/{name}",
        {"spec": {"replicas": replicas}},
        content_type="application/merge-patch+json",
    )


@pytest.fixture
def watcher(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    logs: list[Any] = []

    def start(kubeconfig: Path, kd_namespace: str) -> subprocess.Popen[str]:
        log = (tmp_path / f"watch-{len(started)}.log").open("w")
        logs.append(log)
        argv = [sys.executable, "-m", "kdgen.sync_cli", f"--kubeconfig={kubeconfig}",
                f"--kd-namespace={kd_namespace}", "--watch", "--metrics-addr=",
                "--resync-period=600"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    for log in logs:
        log.close()


def test_etcd_paused_for_10s_under_watch(
    crds: Cluster, many: tuple[str, list[tuple[str, str, str]]], watcher: Any
) -> None:
    kd_namespace, triples = many
    before = generations(crds, kd_namespace)
    proc = watcher(crds.kubeconfig, kd_namespace)
    eventually(lambda: converged(crds, kd_namespace, triples), "first sync", 120)
    name, a, _ = triples[0]
    scale(crds, a, name, 2)
    etcd = crds.pids["etcd"]
    os.killpg(etcd, signal.SIGSTOP)
    try:
        time.sleep(10)
    finally:
        os.killpg(etcd, signal.SIGCONT)
    eventually(lambda: converged(crds, kd_namespace, triples), "convergence after etcd", 180)
    assert proc.poll() is None
    assert generations(crds, kd_namespace) == before


def test_slow_apiserver_once_and_watch(
    crds: Cluster,
    many: tuple[str, list[tuple[str, str, str]]],
    watcher: Any,
    tmp_path: Path,
) -> None:
    kd_namespace, triples = many
    before = generations(crds, kd_namespace)
    proxy = LatencyProxy(crds.ports.apiserver, delay=0.05)
    try:
        slow = crds.write_kubeconfig(tmp_path / "slow.kubeconfig")
        slow.write_text(slow.read_text().replace(crds.server, f"https://127.0.0.1:{proxy.port}"))
        result = run_sync(slow, f"--kd-namespace={kd_namespace}", "--once", timeout=300)
        assert result.returncode == 0, result.stderr
        assert "30 patched" in result.stderr
        assert converged(crds, kd_namespace, triples)
        proc = watcher(slow, kd_namespace)
        name, a, _ = triples[1]
        scale(crds, a, name, 2)
        eventually(lambda: converged(crds, kd_namespace, triples), "watch via slow proxy", 120)
        assert proc.poll() is None
    finally:
        proxy.close()
    assert generations(crds, kd_namespace) == before


def test_apiserver_restarted_mid_pass_then_converges(
    crds: Cluster, many: tuple[str, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    kd_namespace, triples = many
    before = generations(crds, kd_namespace)
    proxy = LatencyProxy(crds.ports.apiserver, delay=0.1)  # a pass long enough to interrupt
    try:
        slow = crds.write_kubeconfig(tmp_path / "slow.kubeconfig")
        slow.write_text(slow.read_text().replace(crds.server, f"https://127.0.0.1:{proxy.port}"))
        argv = [sys.executable, "-m", "kdgen.sync_cli", f"--kubeconfig={slow}",
                f"--kd-namespace={kd_namespace}", "--once", "--workers=1"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Wait for the first status write, then restart the apiserver under the pass.
        eventually(
            lambda: any("status" in kd for kd in kds_of(crds, kd_namespace).values()),
            "the pass to start writing",
            120,
        )
        crds.restart_apiserver(kill=True, downtime=1.0)
        _, stderr = proc.communicate(timeout=300)
        # A restarted apiserver answers 429 ("storage is (re)initializing") until its watch
        # cache for the KDs is ready; wait for that before reading them back.
        path = KDS.format(namespace=kd_namespace)
        eventually(lambda: crds.request("GET", path)[0] == 200, "the KD list to be served", 60)
        written = sum("status" in kd for kd in kds_of(crds, kd_namespace).values())
        if proc.returncode == 0:
            assert "30 patched" in stderr  # the pass outlived the restart (client retries)
        else:
            assert proc.returncode == 1
            assert "Traceback" not in stderr
            assert written < 30
    finally:
        proxy.close()
    again = run_sync(crds.kubeconfig, f"--kd-namespace={kd_namespace}", "--once")
    assert again.returncode == 0, again.stderr
    assert converged(crds, kd_namespace, triples)
    assert generations(crds, kd_namespace) == before
