"""Fixtures for tests that run against a real control plane (see ``tests.support.cluster``).

Every test under ``tests/e2e`` gets the ``cluster`` marker, so ``-m 'not cluster'`` skips them
without building or starting anything. One cluster serves the whole session.

Environment:
    KDGEN_TEST_BIN: prebuilt binaries (otherwise ``scripts/build-test-cluster`` runs).
    KDGEN_TEST_CLUSTER: state directory of a cluster from ``python -m tests.support.cluster up``
        to reuse instead of starting one (it is left running).
    KDGEN_KEEP_CLUSTER_LOGS: set to 1 to keep the component logs even when every test passed.

Component logs are copied to ``<rootdir>/.test-logs/<timestamp>/`` when a test failed or the
cluster did not start; the path is printed in the terminal summary.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, ControlPlaneError, start_cluster

E2E_DIR = Path(__file__).resolve().parent
REUSE_ENV = "KDGEN_TEST_CLUSTER"
KEEP_LOGS_ENV = "KDGEN_KEEP_CLUSTER_LOGS"
_KEPT_LOGS = pytest.StashKey[list[Path]]()


@pytest.hookimpl(tryfirst=True)  # before -m deselects, so '-m "not cluster"' sees the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.cluster)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config):
    for path in config.stash.get(_KEPT_LOGS, []):
        terminalreporter.write_line(f"kdgen e2e: control-plane logs kept in {path}")


def _keep_logs(config: pytest.Config, source: Path) -> Path:
    dest = config.rootpath / ".test-logs" / time.strftime("%Y%m%dT%H%M%S")
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(source.glob("*.log")):
        dest.joinpath(f.name).write_bytes(f.read_bytes())
    config.stash.setdefault(_KEPT_LOGS, []).append(dest)
    return dest


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The session's control plane: etcd, apiserver, controller-manager, scheduler, kwok."""
    reuse = os.environ.get(REUSE_ENV)
    if reuse:
        yield Cluster.attach(Path(reuse).resolve())
        return
    try:
        running = start_cluster()
    except ControlPlaneError as err:
        if err.log_dir is not None and err.log_dir.is_dir():
            _keep_logs(request.config, err.log_dir)
            shutil.rmtree(err.log_dir.parent)  # the temporary state dir start_cluster made
        raise
    try:
        yield running
    finally:
        if request.session.testsfailed or os.environ.get(KEEP_LOGS_ENV) == "1":
            _keep_logs(request.config, running.log_dir)
        running.stop()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{slug}-{secrets.token_hex(3)}"
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    code, body = cluster.request("POST", "/api/v1/namespaces", manifest)
    assert code == 201, body
    yield name
    cluster.request("DELETE", f"/api/v1/namespaces/{name}")
