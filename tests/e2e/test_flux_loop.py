"""The GitOps loop with real Flux: the seed's create / view / clean flows as git commits.

Real parts only: Flux's source-controller and kustomize-controller (v1.7.3, built from Go
modules by ``scripts/build-flux``), the test control plane with kwok, a git repository served
over smart HTTP (``tests/e2e/gitserver.py``), the ``kdgen`` CLI rendering the tree, and
``kdgen status-sync --watch`` as a process. The served repository mirrors this one: the files
of ``examples/flux`` and ``deploy/crds``, the seed app in ``examples/secretflow-serving`` and
the tree rendered from it, with the README's quickstart commands (``README.md``, "GitOps
quickstart: Flux").

- create: bootstrap (``examples/flux/bootstrap.yaml``) on a repository holding only the CRDs,
  then a commit adding the app → the Deployments, Services and ConfigMap in alice and bob, the
  KD and AppImage in cross-domain.
- view: while the KD has no status its Kustomization stays not Ready (the CEL health check in
  ``examples/flux/kustomizations.yaml``); ``kdgen status-sync --watch`` writes the status →
  ``kubectl get kd -n cross-domain`` prints ``2 2 Available`` and the Kustomization is Ready.
- clean: a commit removing the app → Flux deletes its Kustomizations, which prune → the KD is
  NotFound and nothing labelled for it is left in alice or bob.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.e2e.flux import NAMESPACE, Flux
from tests.e2e.gitserver import BRANCH, GitServer
from tests.support.cluster import Cluster
from tests.support.processes import Process, free_ports

REPO = Path(__file__).resolve().parents[2]
FLUX_EXAMPLE = REPO / "examples" / "flux"
APP = "examples/secretflow-serving"
KD_FILE = "secretflow-serving.yaml"
KD = "secretflow-serving"
DOMAINS = ("alice", "bob")
KD_NAMESPACE = "cross-domain"
SELECTOR = f"kuscia.secretflow/kd-name={KD}"
KUSTOMIZATIONS = f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{NAMESPACE}/kustomizations"
GITREPOS = f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{NAMESPACE}/gitrepositories"
KDS = f"/apis/kuscia.secretflow/v1alpha1/namespaces/{KD_NAMESPACE}/kusciadeployments"
APPIMAGES = "/apis/kuscia.secretflow/v1alpha1/appimages"
APP_KUSTOMIZATIONS = (f"{KD}-alice", f"{KD}-bob", KD)
FLUX_KINDS = "kustomizations.kustomize.toolkit.fluxcd.io,gitrepositories.source.toolkit.fluxcd.io"
T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str, timeout: float, flux: Flux) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{flux.logs()}")
        time.sleep(0.5)


def get(cluster: Cluster, path: str) -> dict[str, Any] | None:
    code, body = cluster.request("GET", path)
    if code == 404:
        return None
    assert code == 200, (path, code, body)
    return dict(body)


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for c in (obj or {}).get("status", {}).get("conditions") or []:
        if c["type"] == kind:
            return dict(c)
    return {}


def applied(cluster: Cluster, name: str, sha: str) -> dict[str, Any] | None:
    """The Kustomization ``name`` once it is Ready at commit ``sha``."""
    obj = get(cluster, f"{KUSTOMIZATIONS}/{name}")
    ready = condition(obj, "Ready").get("status") == "True"
    at_sha = (obj or {}).get("status", {}).get("lastAppliedRevision") == f"{BRANCH}@sha1:{sha}"
    return obj if ready and at_sha else None


def labelled(cluster: Cluster, domain: str) -> list[str]:
    out = cluster.kubectl(
        "get", "deployment,service,configmap", "-n", domain, "-l", SELECTOR, "-o", "name"
    ).stdout
    return sorted(out.split())


def deleted(cluster: Cluster, kustomization: str) -> bool:
    return get(cluster, f"{KUSTOMIZATIONS}/{kustomization}") is None


def pruned(cluster: Cluster, domain: str) -> bool:
    return labelled(cluster, domain) == []


def reconcile_now(cluster: Cluster) -> None:
    """What ``flux reconcile source git`` does: ask source-controller to fetch at once."""
    cluster.kubectl(
        "annotate", "--overwrite", "-n", NAMESPACE, "gitrepository/kuscia-apps",
        f"reconcile.fluxcd.io/requestedAt={time.time_ns()}",
    )  # fmt: skip


def kdgen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kdgen", *args],
        cwd=cwd, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip


def repository_tree(root: Path, *, with_app: bool) -> Path:
    """The served repository's files: this repository's CRDs and Flux example, plus the app.

    Without the app, the KD source and its Flux Kustomizations are removed the way a user
    removes them (the KD file deleted, ``kustomizations.yaml`` deleted and dropped from
    ``examples/flux/kustomization.yaml``), and the tree is rendered again, which empties it.
    """
    shutil.copytree(REPO / "deploy" / "crds", root / "deploy" / "crds")
    flux = root / "examples" / "flux"
    flux.mkdir(parents=True)
    for name in ("bootstrap.yaml", "kustomization.yaml", "crds.yaml", "kustomizations.yaml"):
        shutil.copy(FLUX_EXAMPLE / name, flux / name)
    shutil.copytree(REPO / APP, root / APP)
    if not with_app:
        (root / APP / KD_FILE).unlink()
        (flux / "kustomizations.yaml").unlink()
        index = yaml.safe_load((flux / "kustomization.yaml").read_text())
        index["resources"].remove("kustomizations.yaml")
        (flux / "kustomization.yaml").write_text(yaml.safe_dump(index, sort_keys=False))
    # A cluster without Kuscia: the plain profile (no kuscia-scheduler, so kwok runs the pods).
    kdgen("generate", "--profile", "plain", "--output-dir", "examples/flux/rendered", APP, cwd=root)
    return root


def ensure_namespaces(cluster: Cluster, *names: str) -> None:
    for name in names:
        if get(cluster, f"/api/v1/namespaces/{name}") is None:
            cluster.kubectl("create", "namespace", name)


@pytest.fixture(scope="module")
def flux(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flux]:
    controllers = Flux(cluster, tmp_path_factory.mktemp("flux")).start()
    try:
        yield controllers
    finally:
        # Remove what the test created while the controllers still run their finalizers; the
        # CRDs Kustomization does not prune, so the Kuscia CRDs stay for the other tests.
        cluster.kubectl(
            "delete", FLUX_KINDS, "--all", "-n", NAMESPACE, "--wait=true", "--timeout=60s",
            check=False,
        )  # fmt: skip
        controllers.stop()
        leftovers = cluster.kubectl(
            "get", FLUX_KINDS, "-n", NAMESPACE, "-o", "name", check=False,
        ).stdout.split()  # fmt: skip
        for name in leftovers:  # finalizers nobody runs any more
            cluster.kubectl(
                "patch", "-n", NAMESPACE, name, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=False,
            )  # fmt: skip
        for process in controllers.processes.values():
            assert not process.running(), process.name


@pytest.fixture(scope="module")
def git(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with GitServer(tmp_path_factory.mktemp("git")) as server:
        yield server


def test_seed_flows_through_flux(
    cluster: Cluster, flux: Flux, git: GitServer, tmp_path: Path
) -> None:
    url = git.create_repo("kuscia-apps")
    # A KD left by another test would carry its status into this one.
    cluster.kubectl("delete", "kd", KD, "-n", KD_NAMESPACE, "--ignore-not-found", check=False)
    ensure_namespaces(cluster, *DOMAINS, KD_NAMESPACE)

    # --- bootstrap: the repository holds the CRDs only ---------------------------------------
    crds_only = repository_tree(tmp_path / "v0", with_app=False)
    base = git.commit_folder("kuscia-apps", crds_only, "the CRDs")
    bootstrap = list(yaml.safe_load_all((FLUX_EXAMPLE / "bootstrap.yaml").read_text()))
    assert bootstrap[0]["kind"] == "GitRepository"
    bootstrap[0]["spec"]["url"] = url
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(bootstrap))
    eventually(lambda: applied(cluster, "kuscia-apps", base), "root Kustomization", 180, flux)
    eventually(lambda: applied(cluster, "kdgen-crds", base), "kdgen-crds Ready", 180, flux)
    assert get(cluster, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
               "kusciadeployments.kuscia.secretflow") is not None  # fmt: skip

    # --- create: commit the app ----------------------------------------------------------------
    tree = repository_tree(tmp_path / "v1", with_app=True)
    assert sorted(p.name for p in (tree / "examples/flux/rendered").iterdir() if p.is_dir()) == [
        "alice", "bob", "cross-domain",
    ]  # fmt: skip
    created = git.commit_folder("kuscia-apps", tree, "add secretflow-serving")
    reconcile_now(cluster)
    for name in (f"{KD}-alice", f"{KD}-bob"):
        eventually(partial(applied, cluster, name, created), f"{name} Ready", 180, flux)
    for domain in DOMAINS:
        assert labelled(cluster, domain) == [
            f"configmap/{KD}-configtemplate",
            f"deployment.apps/{KD}",
            f"service/{KD}-brpc-builtin",
            f"service/{KD}-internal",
            f"service/{KD}-service",
        ]
        deployment = get(cluster, f"/apis/apps/v1/namespaces/{domain}/deployments/{KD}")
        assert deployment is not None
        labels = deployment["metadata"]["labels"]
        assert labels["kustomize.toolkit.fluxcd.io/name"] == f"{KD}-{domain}"
        assert deployment["status"].get("availableReplicas", 0) >= 1  # wait: true saw it roll out
    kd = eventually(lambda: get(cluster, f"{KDS}/{KD}"), "the KD applied", 120, flux)
    assert kd["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == KD
    assert [p["domainID"] for p in kd["spec"]["parties"]] == list(DOMAINS)
    appimage = kd["spec"]["parties"][0]["appImageRef"]
    assert get(cluster, f"{APPIMAGES}/{appimage}") is not None

    # --- view: no status yet, so the CEL health keeps the KD's Kustomization waiting ----------
    assert "status" not in kd or "phase" not in kd["status"]
    time.sleep(12)  # two of kustomize-controller's 5s health polls
    waiting = get(cluster, f"{KUSTOMIZATIONS}/{KD}")
    assert condition(waiting, "Ready").get("status") != "True", waiting
    still = get(cluster, f"{KDS}/{KD}") or {}
    assert still.get("status", {}).get("phase") is None, still

    port = free_ports(1)[0]
    sync = Process(
        "status-sync",
        [sys.executable, "-m", "kdgen", "status-sync", "--watch",
         f"--kubeconfig={cluster.kubeconfig}", f"--metrics-addr=127.0.0.1:{port}"],
        flux.log_dir / "status-sync.log",
    ).start()  # fmt: skip
    try:

        def table() -> list[str] | None:
            out = cluster.kubectl("get", "kd", "-n", KD_NAMESPACE).stdout.splitlines()
            row = out[1].split() if len(out) > 1 else []
            return row if row[:4] == [KD, "2", "2", "Available"] else None

        row = eventually(table, "kubectl get kd: 2 2 Available", 120, flux)
        assert row[:4] == [KD, "2", "2", "Available"]
        healthy = eventually(lambda: applied(cluster, KD, created), "KD Kustomization", 120, flux)
        assert condition(healthy, "Healthy").get("status") == "True", healthy
        listing = cluster.kubectl("get", "kustomizations", "-n", NAMESPACE).stdout.splitlines()
        rows = {line.split()[0]: line.split() for line in listing[1:]}
        assert sorted(rows) == sorted(["kuscia-apps", "kdgen-crds", *APP_KUSTOMIZATIONS])
        assert all("True" in row for row in rows.values()), listing
        assert sync.running(), sync.log_tail()

        # --- clean: commit the repository without the app --------------------------------------
        removed = git.commit_folder(
            "kuscia-apps", repository_tree(tmp_path / "v2", with_app=False), "remove the app"
        )
        reconcile_now(cluster)
        eventually(lambda: applied(cluster, "kuscia-apps", removed), "root at removal", 180, flux)
        for name in APP_KUSTOMIZATIONS:
            eventually(partial(deleted, cluster, name), f"{name} deleted", 120, flux)
        gone = cluster.kubectl("get", "kd", KD, "-n", KD_NAMESPACE, check=False)
        assert gone.returncode != 0
        assert "NotFound" in gone.stderr, gone.stderr
        assert get(cluster, f"{APPIMAGES}/{appimage}") is None
        for domain in DOMAINS:
            eventually(partial(pruned, cluster, domain), f"{domain} pruned", 60, flux)
        assert applied(cluster, "kdgen-crds", removed) is not None
        assert sync.running(), sync.log_tail()
    finally:
        sync.stop()
