"""status-sync under faults on the real control plane (issue 11, item 6).

Each fault is followed by convergence: every KD's status matches its Deployments again (each
party entry's replica counters equal the live Deployment's, ``availableParties`` and ``phase``
as expected per KD), and its ``spec`` is untouched (``metadata.generation`` unchanged). The
faults: etcd paused for 10 s under ``--watch``; a slow apiserver (a latency proxy on 127.0.0.1)
for ``--once`` and ``--watch``; the apiserver restarted in the middle of a ``--once`` pass and
under ``--watch``; a competing writer causing a 409 storm under ``--once`` and ``--watch``; KDs
deleted in the middle of a ``--once`` pass and of a ``--watch`` sync; the leader killed
(SIGKILL) while another replica waits. The exact 409 race (a write between our read and our
patch) is in ``test_status_sync.py``; the unit tests (``tests/controller``) cover the same
paths at the fake-client boundary.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_status_sync import (
    DEPLOYMENTS,
    KDS,
    MERGE,
    NO_NODE,
    SYNC_ACCOUNT,
    SYNC_NAMESPACE,
    Scenario,
    api,
    crds,
    create_namespace,
    deployment_manifest,
    eventually,
    free_port,
    kd_manifest,
    metric,
    rbac,
    run_sync,
    scrape,
    service_account_kubeconfig,
)
from tests.support.cluster import Cluster

__all__ = ["crds", "rbac"]  # module fixtures, shared with test_status_sync.py

Triples = list[tuple[str, str, str]]
"""``(KD name, first party's domain, second party's)``; each Deployment is named as its KD."""


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
        self._lock = threading.Lock()
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
            with self._lock:  # close() may have run while this connection was being made
                if self._stop.is_set():
                    client.close()
                    upstream.close()
                    return
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
        """Stop accepting and close every socket, including one accepted while closing."""
        with self._lock:
            self._stop.set()
            sockets, self._sockets = self._sockets, []
        self._listener.close()
        for sock in sockets:
            sock.close()
        self._thread.join(timeout=10)


@pytest.fixture
def many(crds: Cluster) -> Iterator[tuple[str, Triples]]:
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


COUNTERS = ("replicas", "updatedReplicas", "availableReplicas", "unavailableReplicas")


def mismatches(
    cluster: Cluster,
    kd_namespace: str,
    triples: Triples,
    expected: Mapping[str, tuple[str, int]] | None = None,
) -> list[str]:
    """How the KDs' statuses differ from their live Deployments; empty once converged.

    Each KD must have ``expected[name]`` (default ``("Available", 2)``) as ``(phase,
    availableParties)``, ``totalParties`` 2, no ``reason`` or ``message`` when available, and
    one entry per party whose four replica counters equal its Deployment's ``status``.
    """
    lists = {"": KDS.format(namespace=kd_namespace)}
    lists.update(
        (domain, DEPLOYMENTS.format(namespace=domain))
        for domain in sorted({d for _, a, b in triples for d in (a, b)})
    )
    items: dict[str, list[dict[str, Any]]] = {}
    for key, path in lists.items():
        # A restarted apiserver answers 429 until its watch cache for the resource is ready.
        code, body = cluster.request("GET", path)
        if code != 200:
            return [f"GET {path}: {code}"]
        items[key] = body["items"]
    kds = {kd["metadata"]["name"]: kd for kd in items.pop("")}
    live = {
        (domain, dep["metadata"]["name"]): dep.get("status") or {}
        for domain, deployments in items.items()
        for dep in deployments
    }
    wrong = []
    for name, a, b in triples:
        status = (kds.get(name) or {}).get("status") or {}
        phase, available = (expected or {}).get(name, ("Available", 2))
        got = (status.get("phase"), status.get("availableParties"), status.get("totalParties"))
        if got != (phase, available, 2):
            wrong.append(f"{name}: (phase, availableParties, totalParties) {got}")
        if phase in ("Available", "PartialAvailable") and (
            "reason" in status or "message" in status
        ):
            wrong.append(
                f"{name}: reason/message left: {status.get('reason')!r} {status.get('message')!r}"
            )
        entries = status.get("partyDeploymentStatuses") or {}
        if sorted(entries) != sorted({a, b}):
            wrong.append(f"{name}: entries for {sorted(entries)}")
        for domain in (a, b):
            entry = (entries.get(domain) or {}).get(name) or {}
            want = live.get((domain, name), {})
            if any(entry.get(c, 0) != want.get(c, 0) for c in COUNTERS):
                wrong.append(f"{name}: {domain} entry {entry} vs live {want}")
    return wrong


def converged(
    cluster: Cluster,
    kd_namespace: str,
    triples: Triples,
    expected: Mapping[str, tuple[str, int]] | None = None,
) -> bool:
    """``mismatches`` is empty."""
    return not mismatches(cluster, kd_namespace, triples, expected)


def wait_converged(
    cluster: Cluster,
    kd_namespace: str,
    triples: Triples,
    what: str,
    timeout: float,
    expected: Mapping[str, tuple[str, int]] | None = None,
) -> None:
    """Wait until ``converged``; on timeout, fail naming what still differs."""
    try:
        eventually(lambda: converged(cluster, kd_namespace, triples, expected), what, timeout)
    except AssertionError as err:
        left = mismatches(cluster, kd_namespace, triples, expected)
        raise AssertionError(f"{err}: {left[:5]}") from None


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
    """Start ``status-sync --watch`` processes (log in ``<tmp>/<name>.log``); kill the rest."""
    started: list[subprocess.Popen[str]] = []
    logs: list[Any] = []

    def start(
        kubeconfig: Path, kd_namespace: str, *extra: str, name: str = ""
    ) -> subprocess.Popen[str]:
        log = (tmp_path / f"{name or f'watch-{len(started)}'}.log").open("w")
        logs.append(log)
        metrics = () if any(a.startswith("--metrics-addr") for a in extra) else ("--metrics-addr=",)
        argv = [sys.executable, "-m", "kdgen.sync_cli", f"--kubeconfig={kubeconfig}",
                f"--kd-namespace={kd_namespace}", "--watch", "--resync-period=600",
                *metrics, *extra]  # fmt: skip
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


def slow_kubeconfig(cluster: Cluster, proxy: LatencyProxy, path: Path) -> Path:
    """An admin kubeconfig that reaches the apiserver through ``proxy``."""
    slow = cluster.write_kubeconfig(path)
    slow.write_text(slow.read_text().replace(cluster.server, f"https://127.0.0.1:{proxy.port}"))
    return slow


def apiserver_count(cluster: Cluster, **labels: str) -> float:
    """The apiserver's own ``apiserver_request_total``, summed over samples with ``labels``."""
    code, text = cluster.request("GET", "/metrics")
    assert code == 200
    total = 0.0
    for line in str(text).splitlines():
        if line.startswith("apiserver_request_total{"):
            sample, _, value = line.rpartition(" ")
            if all(f'{key}="{want}"' in sample for key, want in labels.items()):
                total += float(value)
    return total


STATUS_CONFLICTS = {
    "verb": "PATCH",
    "resource": "kusciadeployments",
    "subresource": "status",
    "code": "409",
}
"""The 409 answers to KD status patches: only status-sync sends them with a precondition."""


class Storm:
    """Another writer: rewrites every KD's status and an annotation, round after round.

    Each round PATCHes, for every KD in turn, ``/status`` with phase ``Failed``,
    ``availableParties`` 0 and a message naming the round, then the KD's metadata with an
    annotation ``e2e.kdgen/storm`` of the round number (neither touches ``spec``, so
    ``metadata.generation`` must stay). Its patches carry no precondition and always win;
    every status-sync patch whose read they overtake gets a 409. One keep-alive connection
    per storm, so a round is fast. ``stop`` lets the round in progress finish.
    """

    ANNOTATION = "e2e.kdgen/storm"

    def __init__(self, cluster: Cluster, kd_namespace: str, names: list[str]) -> None:
        self._cluster, self._names = cluster, names
        self._base = KDS.format(namespace=kd_namespace)
        self.rounds = 0
        self.codes: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Storm:
        self._thread.start()
        return self

    def _run(self) -> None:
        context = ssl.create_default_context(cafile=str(self._cluster.ca_file))
        port = int(self._cluster.server.rsplit(":", 1)[1])
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        headers = {
            "Authorization": f"Bearer {self._cluster.admin_token}",
            "Content-Type": MERGE,
            "Accept": "application/json",
        }
        try:
            while not self._stop.is_set():
                self.rounds += 1
                status = {"phase": "Failed", "availableParties": 0,
                          "message": f"storm round {self.rounds}"}  # fmt: skip
                note = {"metadata": {"annotations": {self.ANNOTATION: str(self.rounds)}}}
                for name in self._names:
                    for path, body in ((f"/{name}/status", {"status": status}), (f"/{name}", note)):
                        try:
                            connection.request(
                                "PATCH", self._base + path, json.dumps(body), headers
                            )
                            response = connection.getresponse()
                            response.read()
                            code = response.status
                        except (OSError, http.client.HTTPException):
                            connection.close()  # reconnects on the next request
                            code = 0
                        self.codes[code] = self.codes.get(code, 0) + 1
        finally:
            connection.close()

    def stop(self) -> int:
        """Stop after the round in progress; return the number of the last round."""
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive()
        return self.rounds

    def wait_rounds(self, count: int, timeout: float = 60) -> None:
        """Wait until ``count`` more rounds have started."""
        target = self.rounds + count
        eventually(lambda: self.rounds >= target, f"{count} storm rounds", timeout)


def test_etcd_paused_for_10s_under_watch(
    crds: Cluster, many: tuple[str, Triples], watcher: Any
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
    many: tuple[str, Triples],
    watcher: Any,
    tmp_path: Path,
) -> None:
    kd_namespace, triples = many
    before = generations(crds, kd_namespace)
    proxy = LatencyProxy(crds.ports.apiserver, delay=0.05)
    try:
        slow = slow_kubeconfig(crds, proxy, tmp_path / "slow.kubeconfig")
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
    crds: Cluster, many: tuple[str, Triples], tmp_path: Path
) -> None:
    kd_namespace, triples = many
    before = generations(crds, kd_namespace)
    proxy = LatencyProxy(crds.ports.apiserver, delay=0.1)  # a pass long enough to interrupt
    try:
        slow = slow_kubeconfig(crds, proxy, tmp_path / "slow.kubeconfig")
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


# --- a competing writer: a 409 storm ----------------------------------------------------------


def assert_storm_state(cluster: Cluster, kd_namespace: str, last_round: int) -> None:
    """Every KD shows the storm's last round: the state status-sync has to repair."""
    for name, kd in kds_of(cluster, kd_namespace).items():
        status = kd.get("status") or {}
        got = (status.get("phase"), status.get("availableParties"), status.get("message"))
        assert got == ("Failed", 0, f"storm round {last_round}"), (name, status)
        assert kd["metadata"]["annotations"][Storm.ANNOTATION] == str(last_round)


def test_409_storm_under_once_then_converges(crds: Cluster, many: tuple[str, Triples]) -> None:
    kd_namespace, triples = many
    before = generations(crds, kd_namespace)
    first = run_sync(crds.kubeconfig, f"--kd-namespace={kd_namespace}", "--once")
    assert first.returncode == 0, first.stderr
    assert converged(crds, kd_namespace, triples)
    conflicts = apiserver_count(crds, **STATUS_CONFLICTS)

    storm = Storm(crds, kd_namespace, [name for name, _, _ in triples]).start()
    try:
        storm.wait_rounds(1)
        stormy = run_sync(crds.kubeconfig, f"--kd-namespace={kd_namespace}", "--once")
        # A round that starts after the pass ended rewrites every KD once more.
        storm.wait_rounds(2)
    finally:
        last = storm.stop()
    assert set(storm.codes) == {200}, storm.codes
    assert storm.codes[200] >= 2 * 30 * 2, storm.codes
    assert "Traceback" not in stormy.stderr
    lines = stormy.stderr.strip().splitlines()
    # Every KD is patched after its 409s were re-read, or gives up after 6 tries in a row.
    for line in lines[:-1]:
        assert line.endswith(": failed: status changed by another writer 6 times in a row"), line
    assert stormy.returncode == (1 if len(lines) > 1 else 0), stormy.stderr
    assert apiserver_count(crds, **STATUS_CONFLICTS) > conflicts  # the storm really conflicted
    assert_storm_state(crds, kd_namespace, last)

    after = run_sync(crds.kubeconfig, f"--kd-namespace={kd_namespace}", "--once")
    assert after.returncode == 0, after.stderr
    assert after.stderr.strip().splitlines()[-1] == "status-sync: 30 KusciaDeployments: 30 patched"
    assert mismatches(crds, kd_namespace, triples) == []
    assert generations(crds, kd_namespace) == before
    for kd in kds_of(crds, kd_namespace).values():  # status-sync never writes metadata
        assert kd["metadata"]["annotations"][Storm.ANNOTATION] == str(last)


def test_409_storm_under_watch_then_converges(
    crds: Cluster, many: tuple[str, Triples], watcher: Any, tmp_path: Path
) -> None:
    kd_namespace, triples = many
    before = generations(crds, kd_namespace)
    proc = watcher(crds.kubeconfig, kd_namespace, name="watch")
    wait_converged(crds, kd_namespace, triples, "first sync", 120)
    conflicts = apiserver_count(crds, **STATUS_CONFLICTS)

    storm = Storm(crds, kd_namespace, [name for name, _, _ in triples]).start()
    try:
        storm.wait_rounds(2)
        name, a, _ = triples[3]
        scale(crds, a, name, 2)  # a real change in the middle of the storm
        Scenario(crds, kd_namespace, a, "", name=name).wait_available(a, 2)
        storm.wait_rounds(1)
    finally:
        last = storm.stop()
    assert set(storm.codes) == {200}, storm.codes
    assert storm.codes[200] >= 3 * 30 * 2, storm.codes
    wait_converged(crds, kd_namespace, triples, "convergence after the storm", 120)
    log = (tmp_path / "watch.log").read_text()
    assert proc.poll() is None, log
    assert "Traceback" not in log
    assert apiserver_count(crds, **STATUS_CONFLICTS) > conflicts
    entry = kds_of(crds, kd_namespace)[name]["status"]["partyDeploymentStatuses"][a][name]
    assert (entry["replicas"], entry["availableReplicas"]) == (2, 2)
    assert generations(crds, kd_namespace) == before
    for kd in kds_of(crds, kd_namespace).values():
        assert kd["metadata"]["annotations"][Storm.ANNOTATION] == str(last)


# --- KDs deleted while status-sync works on them ----------------------------------------------


def delete_kds(cluster: Cluster, kd_namespace: str, names: list[str]) -> None:
    for name in names:
        api(cluster, "DELETE", KDS.format(namespace=kd_namespace) + f"/{name}")


def assert_deleted(cluster: Cluster, kd_namespace: str, names: list[str]) -> None:
    for name in names:
        code, _ = cluster.request("GET", KDS.format(namespace=kd_namespace) + f"/{name}")
        assert code == 404, name


def test_kds_deleted_mid_pass_and_mid_watch(
    crds: Cluster, many: tuple[str, Triples], watcher: Any, tmp_path: Path
) -> None:
    kd_namespace, triples = many
    before = generations(crds, kd_namespace)
    proxy = LatencyProxy(crds.ports.apiserver, delay=0.1)  # a pass long enough to cut into
    try:
        slow = slow_kubeconfig(crds, proxy, tmp_path / "slow.kubeconfig")
        argv = [sys.executable, "-m", "kdgen.sync_cli", f"--kubeconfig={slow}",
                f"--kd-namespace={kd_namespace}", "--once", "--workers=1"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            eventually(
                lambda: any("status" in kd for kd in kds_of(crds, kd_namespace).values()),
                "the pass to start writing",
                120,
            )
            # One worker patches in name order, a patch at least 0.2 s through the proxy:
            # the last ten are still to come.
            gone = [name for name, _, _ in triples[20:]]
            delete_kds(crds, kd_namespace, gone[::-1])
            _, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert stderr.strip().splitlines() == [
            "status-sync: 30 KusciaDeployments: 20 patched, 10 gone"
        ]
        rest = triples[:20]
        assert mismatches(crds, kd_namespace, rest) == []
        assert_deleted(crds, kd_namespace, gone)

        # --watch: every remaining KD needs a patch; delete five while the first sync runs.
        wrong = {"status": {"phase": "Failed", "availableParties": 0, "message": "stale"}}
        for name, _, _ in rest:
            path = KDS.format(namespace=kd_namespace) + f"/{name}/status"
            api(crds, "PATCH", path, wrong, content_type=MERGE)
        watch = watcher(slow, kd_namespace, "--workers=1", name="watch")
        eventually(
            lambda: any(
                (kd.get("status") or {}).get("phase") == "Available"
                for kd in kds_of(crds, kd_namespace).values()
            ),
            "the watch to start writing",
            120,
        )
        more = [name for name, _, _ in rest[15:]]
        delete_kds(crds, kd_namespace, more)
        kept = rest[:15]
        wait_converged(crds, kd_namespace, kept, "the watch to sync the rest", 120)
        log = (tmp_path / "watch.log").read_text()
        assert watch.poll() is None, log
        assert "Traceback" not in log
    finally:
        proxy.close()
    again = run_sync(crds.kubeconfig, f"--kd-namespace={kd_namespace}", "--once")
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip().splitlines() == ["status-sync: 15 KusciaDeployments: 15 unchanged"]
    assert_deleted(crds, kd_namespace, gone + more)  # nothing re-created them
    assert sorted(kds_of(crds, kd_namespace)) == sorted(name for name, _, _ in kept)
    assert generations(crds, kd_namespace) == {name: before[name] for name, _, _ in kept}


# --- the apiserver restarted under --watch ----------------------------------------------------


def test_apiserver_restarted_mid_watch_then_converges(
    crds: Cluster, many: tuple[str, Triples], watcher: Any, tmp_path: Path
) -> None:
    kd_namespace, triples = many
    before = generations(crds, kd_namespace)
    port = free_port()
    proc = watcher(crds.kubeconfig, kd_namespace, f"--metrics-addr=127.0.0.1:{port}", name="watch")
    wait_converged(crds, kd_namespace, triples, "first sync", 120)
    assert scrape(port, "/healthz") == (200, "ok\n")

    # Within about a second of a Deployment's status changing, its KD follows.
    (first, a0, _), (second, a1, _), (third, a2, _), (fourth, _, b3) = triples[:4]
    scale(crds, a0, first, 2)
    Scenario(crds, kd_namespace, a0, "", name=first).wait_available(a0, 2)
    seen = time.monotonic()
    wait_converged(crds, kd_namespace, triples, "the KD to follow", 5)
    assert time.monotonic() - seen < 2.0
    metrics = scrape(port)[1]
    count = metric(metrics, "kdgen_status_sync_lag_seconds_count")
    assert count >= 30
    assert metric(metrics, 'kdgen_status_sync_lag_seconds_bucket{le="1.0"}') >= 1

    crds.stop_apiserver(kill=True)  # a crash: the watches break without a GOAWAY
    time.sleep(2.0)
    crds.start_apiserver()
    # Changes while the watches are still reconnecting (the apiserver answers 429 until its
    # watch caches are ready): new pods that cannot be scheduled beside the old one, and a
    # party scaled to zero (Progressing for ever, a quirk Kuscia has too).
    unschedulable = {"spec": {"replicas": 3, "template": {"spec": {"nodeSelector": NO_NODE}}}}
    path = DEPLOYMENTS.format(namespace=a1) + f"/{second}"
    eventually(lambda: crds.request("PATCH", path, unschedulable, content_type=MERGE)[0] == 200,
               "the apiserver to take a Deployment change", 60)  # fmt: skip
    scale(crds, b3, fourth, 0)
    expected = {second: ("PartialAvailable", 2), fourth: ("Progressing", 1)}
    wait_converged(crds, kd_namespace, triples, "convergence after the restart", 120, expected)
    # A change once the watches are back.
    scale(crds, a2, third, 2)
    Scenario(crds, kd_namespace, a2, "", name=third).wait_available(a2, 2)
    wait_converged(crds, kd_namespace, triples, "a change after the restart", 60, expected)

    status, metrics = scrape(port)
    assert status == 200
    assert metric(metrics, 'kdgen_status_sync_errors_total{kind="watch"}') >= 1
    assert scrape(port, "/healthz") == (200, "ok\n")
    assert proc.poll() is None, (tmp_path / "watch.log").read_text()
    assert generations(crds, kd_namespace) == before
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


# --- the leader killed while another replica waits --------------------------------------------


def lease(cluster: Cluster) -> dict[str, Any]:
    path = f"/apis/coordination.k8s.io/v1/namespaces/{SYNC_NAMESPACE}/leases/{SYNC_ACCOUNT}"
    code, obj = cluster.request("GET", path)
    return dict(obj) if code == 200 else {}


def test_leader_killed_while_a_replica_waits_then_converges(
    rbac: Cluster, many: tuple[str, Triples], watcher: Any, tmp_path: Path
) -> None:
    kd_namespace, triples = many
    before = generations(rbac, kd_namespace)
    rbac.request(
        "DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{SYNC_NAMESPACE}/leases/{SYNC_ACCOUNT}"
    )
    kubeconfig, _ = service_account_kubeconfig(rbac, tmp_path / "sa.kubeconfig")
    election = [
        "--leader-election",
        f"--lease-namespace={SYNC_NAMESPACE}",
        f"--lease-name={SYNC_ACCOUNT}",
        "--lease-duration=4",
        "--renew-deadline=3",
        "--retry-period=0.5",
    ]
    ports = {"replica-a": free_port(), "replica-b": free_port()}
    replicas = {
        name: watcher(
            kubeconfig,
            kd_namespace,
            *election,
            f"--identity={name}",
            f"--metrics-addr=127.0.0.1:{port}",
            name=name,
        )
        for name, port in ports.items()
    }
    leader = eventually(
        lambda: lease(rbac).get("spec", {}).get("holderIdentity") or None, "a leader"
    )
    follower = next(name for name in replicas if name != leader)
    wait_converged(rbac, kd_namespace, triples, "the leader's first sync", 120)
    leader_metrics = scrape(ports[leader])[1]
    follower_metrics = scrape(ports[follower])[1]
    assert metric(leader_metrics, "kdgen_status_sync_leader") == 1
    assert metric(leader_metrics, "kdgen_status_sync_patches_total") >= 30
    assert metric(follower_metrics, "kdgen_status_sync_leader") == 0
    assert metric(follower_metrics, "kdgen_status_sync_patches_total") == 0
    transitions = lease(rbac)["spec"].get("leaseTransitions", 0)

    replicas[leader].kill()  # SIGKILL: no chance to release the lease
    killed = time.monotonic()
    # Changes while no leader is alive.
    (first, _, b0), (second, a1, _) = triples[:2]
    scale(rbac, b0, first, 2)
    scale(rbac, a1, second, 0)
    Scenario(rbac, kd_namespace, "", b0, name=first).wait_available(b0, 2)
    expected = {second: ("Progressing", 1)}
    wait_converged(rbac, kd_namespace, triples, "the changes made with no leader", 30, expected)
    took_over = time.monotonic() - killed
    spec = lease(rbac)["spec"]
    assert spec["holderIdentity"] == follower
    assert spec["leaseTransitions"] == transitions + 1
    assert took_over < 4 + 6, f"takeover took {took_over:.1f}s"
    follower_metrics = scrape(ports[follower])[1]
    assert metric(follower_metrics, "kdgen_status_sync_leader") == 1
    assert metric(follower_metrics, "kdgen_status_sync_patches_total") >= 2

    # The new leader follows later changes too.
    scale(rbac, a1, second, 1)
    Scenario(rbac, kd_namespace, a1, "", name=second).wait_available(a1, 1)
    wait_converged(rbac, kd_namespace, triples, "a change under the new leader", 30)
    assert generations(rbac, kd_namespace) == before

    # A graceful stop releases the lease at once.
    replicas[follower].send_signal(signal.SIGTERM)
    assert replicas[follower].wait(timeout=20) == 0, (tmp_path / f"{follower}.log").read_text()
    assert lease(rbac)["spec"].get("holderIdentity") in (None, "")
