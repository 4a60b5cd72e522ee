"""Benchmark: status-sync at scale on the real control plane (issue 11, item 8).

Run from the repository root: ``.venv/bin/python bench/status_sync.py`` (1,000 two-party KDs
over 10 domain namespaces, 2,000 Deployments, 100 watch changes), or ``--kds 20
--namespaces 2 --changes 10 --out DIR`` for the small run ``.ci/run`` does. It starts its own
control plane (``tests/support/cluster.py``: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok with enough fake nodes for every pod) and measures:

- a full ``--once`` pass where every KD needs a patch, and an idle pass right after it, timed
  in-process around ``run_once`` (start-up, i.e. interpreter, imports and kubeconfig, is
  measured separately as a ``--once`` CLI run against an empty KD namespace);
- the requests of each pass by verb and resource, from the apiserver's own
  ``apiserver_request_total``;
- ``--watch``: the time from a Deployment's status change (its ``availableReplicas`` reaching
  the new count, seen on a watch) to the KD's status showing it (seen on a second watch), over
  ``--changes`` scale-ups spread over as many KDs, as p50 / p99 / max, and the watch process's
  resident memory (VmHWM, its peak) after the changes;
- ``kdgen --version`` and ``kdgen generate`` of the seed example: wall time, and that they do
  not import the status-sync extra.

Prints each target with pass / fail, writes ``status-sync.md`` (the table) and
``status-sync.png`` (the latency distribution) under ``--out`` (default ``bench/results``),
and exits 1 when a target fails (``--no-fail`` reports only). Targets are the issue's; the
load average of the machine is printed with the results, since timings on a shared machine are
noisy.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import re
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from startup import measure as measure_startup  # noqa: E402  (bench/startup.py)

from kdgen.model import LABEL_KUSCIA_DEPLOYMENT_NAME, LABEL_OWNER_NAMESPACE  # noqa: E402
from tests.support.cluster import Cluster, start_cluster  # noqa: E402

KD_NAMESPACE = "cross-domain"
KDS_PATH = f"/apis/kuscia.secretflow/v1alpha1/namespaces/{KD_NAMESPACE}/kusciadeployments"
PODS_PER_NODE = 110


@dataclass
class Results:
    """Everything one run measured."""

    kds: int
    namespaces: int
    startup_s: float = 0.0
    full_s: float = 0.0
    full_requests: dict[str, int] = field(default_factory=dict)
    full_writes: int = 0
    idle_s: float = 0.0
    idle_requests: dict[str, int] = field(default_factory=dict)
    idle_writes: int = 0
    latencies: list[float] = field(default_factory=list)
    watch_rss_mib: float = 0.0
    watch_settle_s: float = 0.0
    version_ms: float = 0.0
    generate_ms: float = 0.0
    python_ms: float = 0.0
    light_imports: bool = True
    load: str = ""


# --- the cluster ---------------------------------------------------------------------------


def kubectl_apply(cluster: Cluster, documents: list[dict[str, Any]]) -> None:
    for start in range(0, len(documents), 500):
        chunk = "".join(json.dumps(d) + "\n" for d in documents[start : start + 500])
        cluster.kubectl("apply", "--server-side", "-f", "-", input=chunk, timeout=600)


def populate(cluster: Cluster, kds: int, namespaces: int) -> list[tuple[str, str, str]]:
    """Create the CRDs, nodes, namespaces, KDs and Deployments; return (kd, ns, ns) triples."""
    cluster.kubectl("apply", "--server-side", "-k", str(REPO / "deploy" / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/kusciadeployments.kuscia.secretflow")  # fmt: skip
    pods = 2 * kds * 2  # room for every Deployment scaled to two replicas
    nodes = []
    for i in range(math.ceil(pods / PODS_PER_NODE)):
        resources = {"cpu": "64", "memory": "512Gi", "pods": str(PODS_PER_NODE)}
        nodes.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": f"kwok-bench-{i}",
                         "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"type": "kwok"}},
            "status": {"allocatable": resources, "capacity": resources},
        })  # fmt: skip
    kubectl_apply(cluster, nodes)
    domains = [f"domain-{i}" for i in range(namespaces)]
    kubectl_apply(
        cluster,
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
         for n in (KD_NAMESPACE, *domains)],
    )  # fmt: skip
    triples, documents = [], []
    for i in range(kds):
        name = f"kd-{i:04d}"
        a, b = domains[i % namespaces], domains[(i + 1) % namespaces]
        triples.append((name, a, b))
        documents.append({
            "apiVersion": "kuscia.secretflow/v1alpha1", "kind": "KusciaDeployment",
            "metadata": {"name": name, "namespace": KD_NAMESPACE},
            "spec": {"initiator": a, "inputConfig": "{}", "parties": [
                {"appImageRef": "img", "domainID": a}, {"appImageRef": "img", "domainID": b}]},
        })  # fmt: skip
        for domain in (a, b):
            labels = {LABEL_KUSCIA_DEPLOYMENT_NAME: name, LABEL_OWNER_NAMESPACE: KD_NAMESPACE}
            documents.append({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": domain, "labels": labels},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels}, "spec": {
                             "tolerations": [{"operator": "Exists"}],
                             "containers": [{"name": "app", "image": "registry.invalid/a:1"}]}}},
            })  # fmt: skip
    kubectl_apply(cluster, documents)
    return triples


def wait_available(cluster: Cluster, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code, body = cluster.request("GET", "/apis/apps/v1/deployments?labelSelector="
                                     + LABEL_KUSCIA_DEPLOYMENT_NAME)  # fmt: skip
        items = body.get("items", []) if code == 200 else []
        ready = sum((d.get("status") or {}).get("availableReplicas", 0) >= 1 for d in items)
        if ready >= expected:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"only {ready}/{expected} Deployments available after {timeout}s")
        time.sleep(2)


def request_counts(cluster: Cluster) -> dict[str, float]:
    """``apiserver_request_total`` summed by ``VERB resource[/subresource]``."""
    _, text = cluster.request("GET", "/metrics")
    totals: dict[str, float] = {}
    for line in str(text).splitlines():
        if line.startswith("apiserver_request_total{"):
            labels_text, _, value = line.rpartition(" ")
            labels = dict(re.findall(r'(\w+)="([^"]*)"', labels_text))
            sub = labels.get("subresource", "")
            key = f"{labels['verb']} {labels['resource']}{'/' + sub if sub else ''}"
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    ours = ("kusciadeployments", "deployments", "pods", "namespaces")
    return {
        key: int(after[key] - before.get(key, 0.0))
        for key in sorted(after)
        if key.split(" ")[1].split("/")[0] in ours
        and not key.startswith("WATCH")
        and after[key] > before.get(key, 0.0)
    }


# --- the passes ----------------------------------------------------------------------------


def timed_passes(cluster: Cluster, results: Results) -> None:
    from kdgen.controller import client, reconcile, runner

    api = client.connect(kubeconfig=str(cluster.kubeconfig))
    options = reconcile.SyncOptions(kd_namespace=KD_NAMESPACE)
    for label in ("full", "idle"):
        before = request_counts(cluster)
        began = time.perf_counter()
        report = runner.run_once(api, options, out=io.StringIO())
        seconds = time.perf_counter() - began
        counts = delta(before, request_counts(cluster))
        writes = sum(n for key, n in counts.items() if key.startswith(("PATCH", "UPDATE")))
        bad = [r for r in report.results if r.outcome not in ("patched", "unchanged")]
        if bad:
            raise SystemExit(f"{label} pass: {bad[:3]}")
        setattr(results, f"{label}_s", seconds)
        setattr(results, f"{label}_requests", counts)
        setattr(results, f"{label}_writes", writes)


def startup(cluster: Cluster, results: Results) -> None:
    """A ``--once`` CLI run against an empty KD namespace: interpreter, imports, kubeconfig."""
    cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": "bench-empty"}})
    argv = [sys.executable, "-m", "kdgen.sync_cli", f"--kubeconfig={cluster.kubeconfig}",
            "--kd-namespace=bench-empty", "--once"]  # fmt: skip
    runs = []
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        runs.append(time.perf_counter() - began)
    results.startup_s = min(runs)


class Stream(threading.Thread):
    """A raw watch on one collection, recording (time, event) pairs."""

    def __init__(self, cluster: Cluster, path: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.cluster, self.path, self.stop = cluster, path, stop
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.ready = threading.Event()

    def run(self) -> None:
        _, listed = self.cluster.request("GET", self.path)
        version = listed["metadata"]["resourceVersion"]
        context = ssl.create_default_context(cafile=str(self.cluster.ca_file))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        sep = "&" if "?" in self.path else "?"
        url = f"{self.cluster.server}{self.path}{sep}watch=1&resourceVersion={version}"
        request = urllib.request.Request(url)
        request.add_header("Authorization", f"Bearer {self.cluster.admin_token}")
        with opener.open(request, timeout=600) as response:
            self.ready.set()
            for line in response:
                if self.stop.is_set():
                    return
                self.events.append((time.monotonic(), json.loads(line)))


def watch_latency(
    cluster: Cluster, triples: list[tuple[str, str, str]], changes: int, results: Results
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    argv = [sys.executable, "-m", "kdgen.sync_cli", f"--kubeconfig={cluster.kubeconfig}",
            f"--kd-namespace={KD_NAMESPACE}", "--watch", f"--metrics-addr=127.0.0.1:{port}",
            "--resync-period=600"]  # fmt: skip
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    stop = threading.Event()
    try:
        # Start-up excluded: wait until the watch process has synced every KD once and its
        # queue is empty (every KD is already current, so these syncs write nothing).
        began = time.monotonic()
        while time.monotonic() < began + 900:
            metrics = _scrape(port)
            if metrics.get("syncs", 0) >= len(triples) and metrics.get("depth", 1) == 0:
                break
            time.sleep(1)
        results.watch_settle_s = time.monotonic() - began
        deployments = Stream(cluster, "/apis/apps/v1/deployments?labelSelector="
                             + LABEL_KUSCIA_DEPLOYMENT_NAME, stop)  # fmt: skip
        kds = Stream(cluster, KDS_PATH, stop)
        for stream in (deployments, kds):
            stream.start()
            stream.ready.wait(30)
        step = max(1, len(triples) // changes)
        chosen = triples[::step][:changes]
        for name, domain, _ in chosen:
            cluster.request(
                "PATCH",
                f"/apis/apps/v1/namespaces/{domain}/deployments/{name}",
                {"spec": {"replicas": 2}},
                content_type="application/merge-patch+json",
            )
            time.sleep(0.2)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            got = _latencies(deployments.events, kds.events, chosen)
            if len(got) == len(chosen):
                break
            time.sleep(1)
        results.latencies = _latencies(deployments.events, kds.events, chosen)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        results.watch_rss_mib = int(re.search(r"VmHWM:\s+(\d+)", status)[1]) / 1024  # type: ignore[index]
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _scrape(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    found = {"syncs": 0.0}
    for line in text.splitlines():
        if line.startswith("kdgen_status_sync_syncs_total{"):
            found["syncs"] += float(line.rpartition(" ")[2])
        elif line.startswith("kdgen_status_sync_queue_depth "):
            found["depth"] = float(line.rpartition(" ")[2])
    return found


def _latencies(
    deployment_events: list[tuple[float, dict[str, Any]]],
    kd_events: list[tuple[float, dict[str, Any]]],
    chosen: list[tuple[str, str, str]],
) -> list[float]:
    changed: dict[tuple[str, str], float] = {}
    for at, event in deployment_events:
        obj = event.get("object") or {}
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if (obj.get("status") or {}).get("availableReplicas") == 2 and key not in changed:
            changed[key] = at
    written: dict[tuple[str, str], float] = {}
    for at, event in kd_events:
        obj = event.get("object") or {}
        parties = (obj.get("status") or {}).get("partyDeploymentStatuses") or {}
        for domain, entries in parties.items():
            entry = entries.get(obj["metadata"]["name"]) or {}
            key = (domain, obj["metadata"]["name"])
            if entry.get("availableReplicas") == 2 and key not in written:
                written[key] = at
    return [
        written[(d, n)] - changed[(d, n)]
        for n, d, _ in chosen
        if (d, n) in changed and (d, n) in written
    ]


def cli_startup(results: Results) -> None:
    """``kdgen --version`` and ``generate`` of the seed, installed without the extra."""
    found = measure_startup()
    results.version_ms = 1000 * found.version_s
    results.generate_ms = 1000 * found.generate_s
    results.python_ms = 1000 * found.python_s
    results.light_imports = found.extra_absent


# --- reporting -----------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def targets(results: Results) -> list[tuple[str, str, bool]]:
    """(target, measured, met) rows; the issue's targets, scaled rows marked."""
    budget = 2 + 2 * results.namespaces
    idle_total = sum(results.idle_requests.values())
    p99 = percentile(results.latencies, 0.99)
    return [
        ("full pass <= 3 s", f"{results.full_s:.2f} s", results.full_s <= 3.0),
        ("idle pass <= 1 s", f"{results.idle_s:.2f} s", results.idle_s <= 1.0),
        ("idle pass writes 0", str(results.idle_writes), results.idle_writes == 0),
        (
            f"idle pass requests <= 2 + 2 x {results.namespaces} = {budget}",
            str(idle_total),
            idle_total <= budget,
        ),
        ("watch p99 <= 1 s", f"{p99:.3f} s", p99 <= 1.0),
        (
            "watch resident <= 150 MB",
            f"{results.watch_rss_mib:.0f} MiB",
            results.watch_rss_mib * 1.048576 <= 150,
        ),
        ("kdgen --version <= 150 ms", f"{results.version_ms:.0f} ms", results.version_ms <= 150),
        (
            "kdgen generate (seed) <= 150 ms",
            f"{results.generate_ms:.0f} ms",
            results.generate_ms <= 150,
        ),
        (
            "generator runs without the status-sync extra installed",
            str(results.light_imports),
            results.light_imports,
        ),
    ]


def markdown(results: Results, rows: list[tuple[str, str, bool]]) -> str:
    lat = results.latencies
    lines = [
        f"# status-sync benchmark: {results.kds} KDs, {results.namespaces} namespaces",
        "",
        f"Real control plane (tests/support/cluster.py), kwok nodes; {platform.python_version()},"
        f" {os.cpu_count()} CPUs; load average at the end: {results.load}.",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *(f"| {t} | {m} | {'pass' if ok else 'FAIL'} |" for t, m, ok in rows),
        "",
        "| measurement | value |",
        "|---|---|",
        f"| start-up (`--once` CLI on an empty namespace, best of 3) | {results.startup_s:.2f} s |",
        f"| full pass (every KD patched) | {results.full_s:.2f} s |",
        f"| full pass writes | {results.full_writes} |",
        f"| full pass requests | {_counts(results.full_requests)} |",
        f"| idle pass | {results.idle_s:.2f} s |",
        f"| idle pass requests | {_counts(results.idle_requests)} |",
        f"| watch start-up (list, then sync every KD once; excluded) | "
        f"{results.watch_settle_s:.0f} s |",
        f"| watch changes measured | {len(lat)} |",
        f"| watch latency p50 / p99 / max | {percentile(lat, 0.5):.3f} / "
        f"{percentile(lat, 0.99):.3f} / {max(lat, default=math.inf):.3f} s |",
        f"| watch resident (VmHWM) | {results.watch_rss_mib:.0f} MiB |",
        f"| `kdgen --version` / `kdgen generate` seed | {results.version_ms:.0f} / "
        f"{results.generate_ms:.0f} ms |",
        f"| bare interpreter (`python -c pass`, the machine's yardstick) | "
        f"{results.python_ms:.0f} ms |",
        "",
        "![watch latency](status-sync.png)",
        "",
    ]
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


def write_png(path: Path, values: list[float], width: int = 480, height: int = 200) -> None:
    """A histogram of ``values`` (seconds, 50 ms bins up to the max) as a PNG, no libraries.

    Bars are blue; the red line marks the 1 s target (if in range), the black one the p99.
    """
    pixels = [[(255, 255, 255)] * width for _ in range(height)]
    top = max([*values, 1.05]) if values else 1.05
    bins = max(1, math.ceil(top / 0.05))
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int(v / 0.05))] += 1
    peak = max(counts) or 1
    bar = width / bins
    for i, n in enumerate(counts):
        h = int((height - 10) * n / peak)
        for x in range(int(i * bar), max(int(i * bar) + 1, int((i + 1) * bar) - 1)):
            for y in range(height - h, height):
                pixels[y][x] = (52, 101, 164)
    for value, color in ((1.0, (204, 0, 0)), (percentile(values, 0.99), (0, 0, 0))):
        if math.isfinite(value) and value <= top:
            x = min(width - 1, int(value / 0.05 * bar))
            for y in range(height):
                pixels[y][x] = color
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
    path.write_bytes(png + chunk(b"IEND", b""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kds", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target fails")
    args = parser.parse_args(argv)
    results = Results(args.kds, args.namespaces)
    began = time.monotonic()
    with start_cluster() as cluster:
        print(f"control plane up in {cluster.startup_seconds:.0f}s", flush=True)
        triples = populate(cluster, args.kds, args.namespaces)
        wait_available(cluster, 2 * args.kds, timeout=max(600, args.kds))
        print(f"{2 * args.kds} Deployments available after {time.monotonic() - began:.0f}s",
              flush=True)  # fmt: skip
        startup(cluster, results)
        timed_passes(cluster, results)
        watch_latency(cluster, triples, args.changes, results)
    cli_startup(results)
    results.load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    rows = targets(results)
    for target, measured, met in rows:
        print(f"{'pass' if met else 'FAIL'}  {target}: {measured}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "status-sync.md").write_text(markdown(results, rows))
    write_png(args.out / "status-sync.png", results.latencies)
    print(f"wrote {args.out / 'status-sync.md'} and status-sync.png", flush=True)
    return 0 if args.no_fail or all(met for _, _, met in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
