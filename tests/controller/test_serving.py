"""kdgen.controller.serving: the probes and the metrics page, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from kdgen import __version__
from kdgen.controller.serving import Metrics, parse_address, serve_http
from kdgen.errors import KdgenError


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode()


def test_probes_and_metrics() -> None:
    state = {"healthy": True, "ready": False}
    metrics = Metrics()
    metrics.patches.inc()
    server = serve_http(
        "127.0.0.1:0",
        metrics,
        is_healthy=lambda: state["healthy"],
        is_ready=lambda: state["ready"],
    )
    try:
        port = server.server_address[1]
        assert get(port, "/healthz") == (200, "ok\n")
        assert get(port, "/readyz") == (503, "not ok\n")
        state["ready"], state["healthy"] = True, False
        assert get(port, "/readyz") == (200, "ok\n")
        assert get(port, "/healthz") == (503, "not ok\n")
        assert get(port, "/nothing")[0] == 404
        code, text = get(port, "/metrics")
        assert code == 200
        samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")
        assert samples["kdgen_status_sync_patches_total"] == "1.0"
        assert float(samples["process_resident_memory_bytes"]) > 0
        assert "process_cpu_seconds_total" in samples
        build = [k for k in samples if k.startswith("kdgen_build_info{")]
        assert len(build) == 1
        assert f'version="{__version__}"' in build[0]
        assert samples[build[0]] == "1.0"
    finally:
        server.shutdown()
        server.server_close()


def test_bad_addresses_are_one_kdgen_error() -> None:
    with pytest.raises(KdgenError, match=r"expected host:port"):
        parse_address("nonsense")
    with pytest.raises(KdgenError, match=r"--metrics-addr 256\.0\.0\.1:1"):
        serve_http("256.0.0.1:1", Metrics(), is_healthy=lambda: True, is_ready=lambda: True)
