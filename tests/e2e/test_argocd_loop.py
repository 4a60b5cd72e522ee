"""The GitOps loop through a real Argo CD: commit, watch, remove from git (issue 9).

Argo CD v3.1 (built by ``scripts/build-argocd``) runs as local processes against the session's
control plane (``tests/e2e/argocd.py``); the git repository is served over smart HTTP on
127.0.0.1 (``tests/e2e/gitserver.py``) and holds this project's ``deploy/crds`` and
``examples/secretflow-serving``, at the paths the quickstart's Applications name. The shell
commands are README.md's "GitOps quickstart: Argo CD", run verbatim (``QUICKSTART``); the git
edits are made with ``GitServer.commit_folder``, the local stand-in for ``git push``.

The seed's three flows, the GitOps way:

- create: the kdgen plugin renders the KD, its AppImage and each party's objects; Argo CD's
  Lua VM runs ``plugins/argocd/health.lua`` (installed through ``argocd-cm``) and reports the
  KD Progressing until ``kdgen status-sync --watch`` (a real process) writes ``Available``,
  then Healthy; ``kubectl get kd -n cross-domain`` prints ``2 2 Available``.
- a scale change committed to git reaches the party's Deployment.
- clean: the KD removed from git, automated sync prunes it and every object it generated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.e2e.argocd import ArgoCD, ArgoCDError, binaries, install
from tests.e2e.gitserver import GitServer
from tests.support.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
KD_FILE = Path("examples/secretflow-serving/secretflow-serving.yaml")
SELECTOR = "kuscia.secretflow/kd-name=secretflow-serving"
DOMAINS = ("alice", "bob")
APP = "secretflow-serving"
KD_KIND = "KusciaDeployment"
T = TypeVar("T")

ARGOCD_CM = "kubectl apply -n argocd -f examples/argocd/argocd-cm.yaml"
NAMESPACES = "kubectl apply -f examples/argocd/quickstart/namespaces.yaml"
CRDS_APP = (
    'sed "s|https://example.com/kuscia-apps.git|$REPO_URL|" '
    "examples/argocd/quickstart/kuscia-crds.yaml | kubectl apply -f -"
)
CRDS_HEALTHY = (
    "kubectl wait -n argocd application/kuscia-crds"
    " --for=jsonpath='{.status.health.status}'=Healthy --timeout=180s"
)
KD_APP = (
    'sed "s|https://example.com/kuscia-apps.git|$REPO_URL|" '
    "examples/argocd/quickstart/secretflow-serving.yaml | kubectl apply -f -"
)
STATUS_SYNC = "kdgen status-sync --watch --kd-namespace cross-domain --metrics-addr ''"
GET_KD = "kubectl get kd -n cross-domain"
REFRESH = (
    "kubectl annotate -n argocd application secretflow-serving"
    " argocd.argoproj.io/refresh=normal --overwrite"
)
QUICKSTART = (ARGOCD_CM, NAMESPACES, CRDS_APP, CRDS_HEALTHY, KD_APP, STATUS_SYNC, GET_KD, REFRESH)
"""Every shell command of README.md's Argo CD quickstart, in its order; the test runs each."""


def eventually(check: Callable[[], T | None], what: str, timeout: float = 180.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)


@dataclass
class Loop:
    """The running loop: cluster, Argo CD, the git server and the working tree it serves."""

    cluster: Cluster
    argocd: ArgoCD
    git: GitServer
    work: Path
    shim: Path

    @property
    def env(self) -> dict[str, str]:
        path = os.pathsep.join(
            [str(self.shim), str(Path(sys.executable).parent), os.environ["PATH"]]
        )
        return {
            **os.environ,
            "PATH": path,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "REPO_URL": self.git.url("kuscia-apps"),
        }

    def sh(self, command: str, timeout: float = 240.0) -> str:
        """Run one quickstart command in the checkout, as a user's shell would."""
        assert command in QUICKSTART, command
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def commit(self, message: str) -> str:
        return self.git.commit_folder("kuscia-apps", self.work, message)

    def get(self, *args: str) -> Any | None:
        done = self.cluster.kubectl("get", *args, "-o", "json", check=False)
        if done.returncode != 0:
            assert "NotFound" in done.stderr, done.stderr
            return None
        return json.loads(done.stdout)

    def app(self) -> dict[str, Any]:
        app = self.get("application", APP, "-n", "argocd")
        assert app is not None
        return dict(app)

    def kd_resource(self) -> dict[str, Any] | None:
        """The KD's entry in the Application's status (its health as Argo CD's Lua judged it)."""
        for resource in self.app().get("status", {}).get("resources") or []:
            if resource.get("kind") == KD_KIND:
                return dict(resource)
        return None

    def synced_at(self, revision: str) -> dict[str, Any] | None:
        app = self.app()
        sync = app.get("status", {}).get("sync", {})
        operation = app.get("status", {}).get("operationState", {})
        if sync.get("status") == "Synced" and sync.get("revision") == revision:
            if operation.get("phase") == "Succeeded":
                return app
        return None

    def labelled(self, domain: str) -> list[str]:
        out = self.cluster.kubectl(
            "get", "deployment,service,configmap", "-n", domain, "-l", SELECTOR, "-o", "name"
        ).stdout
        return sorted(out.split())


def _shim(directory: Path, cluster: Cluster) -> Path:
    """A directory whose ``kubectl`` is the version-matched one the cluster uses."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kubectl").symlink_to(cluster.kubectl_path)
    return directory


def _keep_logs(config: pytest.Config, argocd: ArgoCD, git: GitServer) -> None:
    dest = config.rootpath / ".test-logs" / time.strftime("%Y%m%dT%H%M%S-argocd")
    argocd.save_logs(dest)
    (dest / "gitserver.log").write_text("\n".join([*git.requests, *git.errors]))
    print(f"kdgen e2e: Argo CD logs kept in {dest}")


@pytest.fixture(scope="module")
def loop(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Loop]:
    state = tmp_path_factory.mktemp("argocd")
    bin_dir = binaries()
    work = state / "work"
    for folder in ("deploy/crds", "examples/secretflow-serving"):
        shutil.copytree(REPO / folder, work / folder)
    with GitServer(state / "git") as git:
        git.create_repo("kuscia-apps")
        argocd = ArgoCD(cluster=cluster, state_dir=state / "argocd", bin_dir=bin_dir)
        running = Loop(cluster, argocd, git, work, _shim(state / "bin", cluster))
        failed_before = request.session.testsfailed
        try:
            install(cluster)
            running.sh(ARGOCD_CM)  # before the controller starts: it reads argocd-cm at once
            try:
                argocd.start()
            except ArgoCDError:
                _keep_logs(request.config, argocd, git)
                raise
            yield running
        finally:
            cluster.kubectl(
                "delete", "applications.argoproj.io", "--all", "-n", "argocd", "--wait=false",
                check=False,
            )  # fmt: skip
            argocd.stop()
            if request.session.testsfailed > failed_before:
                _keep_logs(request.config, argocd, git)
            cluster.kubectl("delete", "appimage", "secretflow-serving-image", check=False)
            cluster.kubectl("delete", "kd", "secretflow-serving", "-n", "cross-domain", check=False)


def test_readme_quickstart_is_the_commands_this_test_runs() -> None:
    """Every shell line of the README section is a command here, and each command is there.

    The git lines are the user's side of what ``GitServer.commit_folder`` does in this test.
    """
    text = README.read_text()
    heading = "## GitOps quickstart: Argo CD"
    assert text.count(heading) == 1
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [
        line.removesuffix(" &")
        for block in re.findall(r"```sh\n(.*?)```", section, re.S)
        for line in block.splitlines()
    ]
    assert [line for line in lines if line.startswith("git ")] == [
        'git commit -am "alice runs 2 replicas" && git push',
        "git rm examples/secretflow-serving/secretflow-serving.yaml"
        ' && git commit -m "remove the KD" && git push',
    ]
    commands = [line for line in lines if not line.startswith("git ")]
    assert set(commands) == set(QUICKSTART)
    assert commands[: len(QUICKSTART) - 1] == list(QUICKSTART[:-1])  # in the order run here


def test_create_syncs_the_kd_and_its_objects_and_health_follows_status_sync(loop: Loop) -> None:
    revision = loop.commit("secretflow-serving: KD, AppImage and Kuscia's CRDs")
    loop.sh(NAMESPACES)
    loop.sh(CRDS_APP)
    loop.sh(CRDS_HEALTHY)
    loop.sh(KD_APP)

    eventually(lambda: loop.synced_at(revision), f"{APP} synced at {revision}")
    # Nothing has written the KD's status yet: Argo CD's Lua says Progressing, so does the app.
    kd = loop.get("kd", "secretflow-serving", "-n", "cross-domain")
    assert kd is not None
    assert "status" not in kd
    resource = loop.kd_resource()
    assert resource is not None
    assert resource["health"] == {
        "status": "Progressing",
        "message": "Waiting for the KusciaDeployment status",
    }
    assert loop.app()["status"]["health"]["status"] == "Progressing"
    assert loop.get("appimage", "secretflow-serving-image") is not None
    for domain in DOMAINS:
        assert loop.labelled(domain) == [
            "configmap/secretflow-serving-configtemplate",
            "deployment.apps/secretflow-serving",
            "service/secretflow-serving-brpc-builtin",
            "service/secretflow-serving-internal",
            "service/secretflow-serving-service",
        ]

    status_sync = loop.argocd.spawn(
        "status-sync", ["bash", "-c", f"exec {STATUS_SYNC}"], loop.env, REPO
    )

    def healthy() -> dict[str, Any] | None:
        found = loop.kd_resource()
        return found if found and found.get("health", {}).get("status") == "Healthy" else None

    resource = eventually(healthy, "Argo CD to judge the KD Healthy")
    assert status_sync.exited() is None, status_sync.log_tail()
    assert resource["health"]["message"] == "2/2 parties available"
    eventually(
        lambda: loop.app()["status"]["health"]["status"] == "Healthy", "the Application Healthy"
    )
    kd = loop.get("kd", "secretflow-serving", "-n", "cross-domain")
    assert kd is not None
    assert kd["status"]["phase"] == "Available"

    table = loop.sh(GET_KD).splitlines()
    assert table[0].split()[:4] == ["NAME", "TOTALPARTIES", "AVAILABLEPARTIES", "PHASE"]
    assert [row.split()[:4] for row in table[1:]] == [["secretflow-serving", "2", "2", "Available"]]


def test_a_scale_change_committed_to_git_reaches_the_party(loop: Loop) -> None:
    kd_file = loop.work / KD_FILE
    text = kd_file.read_text()
    party = "    domainID: alice\n"
    assert text.count(party) == 1
    kd_file.write_text(text.replace(party, party + "    template:\n      replicas: 2\n"))
    revision = loop.commit("secretflow-serving: alice runs 2 replicas")
    loop.sh(REFRESH)

    eventually(lambda: loop.synced_at(revision), f"{APP} synced at {revision}")

    def scaled() -> dict[str, Any] | None:
        deployment = loop.get("deployment", "secretflow-serving", "-n", "alice")
        if deployment is None or deployment["spec"]["replicas"] != 2:
            return None
        return deployment if deployment.get("status", {}).get("availableReplicas") == 2 else None

    eventually(scaled, "alice's Deployment at 2 available replicas")
    bob = loop.get("deployment", "secretflow-serving", "-n", "bob")
    assert bob is not None
    assert bob["spec"]["replicas"] == 1

    def available_again() -> dict[str, Any] | None:
        kd = loop.get("kd", "secretflow-serving", "-n", "cross-domain")
        parties = (kd or {}).get("status", {}).get("partyDeploymentStatuses", {})
        alice = parties.get("alice", {}).get("secretflow-serving", {})
        done = kd and kd["status"].get("phase") == "Available" and alice.get("replicas") == 2
        resource = loop.kd_resource()
        return kd if done and resource and resource["health"]["status"] == "Healthy" else None

    eventually(available_again, "status-sync to report 2 replicas for alice, Argo CD Healthy")


def test_removing_the_kd_from_git_prunes_it_and_its_objects(loop: Loop) -> None:
    (loop.work / KD_FILE).unlink()
    revision = loop.commit("secretflow-serving: remove the KD")
    loop.sh(REFRESH)

    eventually(lambda: loop.synced_at(revision), f"{APP} synced at {revision}")

    def gone() -> bool:
        return loop.get("kd", "secretflow-serving", "-n", "cross-domain") is None and not any(
            loop.labelled(domain) for domain in DOMAINS
        )

    eventually(gone, "the KD and its labelled objects deleted")
    assert loop.sh(GET_KD) == ""  # kubectl says "No resources found" on stderr
    done = loop.cluster.kubectl(
        "get", "kd", "secretflow-serving", "-n", "cross-domain", check=False
    )
    assert done.returncode == 1
    assert "NotFound" in done.stderr
    assert loop.kd_resource() is None
