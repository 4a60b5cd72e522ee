"""The health and metrics server of ``--watch``: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` answers 200 while the sync loop runs (a liveness probe restarts a stuck process);
``/readyz`` answers 200 once the caches have listed what they watch (a readiness probe, and
what a Service in front of the replicas should wait for). ``/metrics`` is the Prometheus text
format: kdgen's own ``kdgen_status_sync_*`` metrics, ``kdgen_build_info``, and the client
library's ``process_*`` and ``python_*`` collectors, all in one registry per process.
"""

from __future__ import annotations

import http.server
import platform
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from kdgen import __version__
from kdgen.errors import KdgenError


class Metrics:
    """The Prometheus metrics of one watch-mode process, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        build = Gauge(
            "kdgen_build_info",
            "Always 1; the labels name the kdgen version and the Python running it",
            ["version", "python"],
            registry=self.registry,
        )
        build.labels(__version__, platform.python_version()).set(1)
        self.syncs = Counter(
            "kdgen_status_sync_syncs",
            "KusciaDeployment status computations, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.patches = Counter(
            "kdgen_status_sync_patches",
            "Status patches accepted by the apiserver",
            registry=self.registry,
        )
        self.errors = Counter(
            "kdgen_status_sync_errors",
            "Failed API calls and unsyncable KusciaDeployments, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.lag = Histogram(
            "kdgen_status_sync_lag_seconds",
            "Seconds from the watch event that made a KusciaDeployment dirty to its status patch",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        self.leader = Gauge(
            "kdgen_status_sync_leader",
            "1 while this replica may write status",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "kdgen_status_sync_queue_depth",
            "KusciaDeployments waiting to be synced",
            registry=self.registry,
        )


def parse_address(address: str) -> tuple[str, int]:
    """Split ``host:port``; an empty host (``:8080``) means every address.

    >>> parse_address("127.0.0.1:8080"), parse_address(":9"), parse_address("[::1]:80")
    (('127.0.0.1', 8080), ('0.0.0.0', 9), ('::1', 80))

    Raises:
        KdgenError: not ``host:port``.
    """
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]") or "0.0.0.0", int(port)
    except ValueError as exc:
        raise KdgenError(f"--metrics-addr {address!r}: expected host:port") from exc


def serve_http(
    address: str,
    metrics: Metrics,
    *,
    is_healthy: Callable[[], bool],
    is_ready: Callable[[], bool],
) -> Any:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` on ``host:port`` from a daemon thread.

    Returns the server (``server_address`` holds the bound port, useful with port 0); stop it
    with ``shutdown()``.

    Raises:
        KdgenError: the address is malformed or cannot be bound.
    """
    bound = parse_address(address)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/healthz", "/readyz"):
                good = is_healthy() if path == "/healthz" else is_ready()
                self._reply(200 if good else 503, b"ok\n" if good else b"not ok\n")
            elif path == "/metrics":
                self._reply(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            else:
                self._reply(404, b"not found\n")

        def _reply(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    try:
        server = http.server.ThreadingHTTPServer(bound, Handler)
    except OSError as exc:
        raise KdgenError(f"--metrics-addr {address}: {exc}") from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
