"""A real Argo CD for the GitOps end-to-end test, run as local processes on 127.0.0.1.

The processes are the ones Argo CD's own local development setup runs (its ``Procfile``): Redis,
``argocd-repo-server``, ``argocd-application-controller`` and ``argocd-cmp-server`` (the kdgen
Config Management Plugin, ``plugins/argocd/plugin.yaml``, with this virtualenv's ``kdgen`` first
on its ``PATH``). The Argo CD binary is the multi-call ``argocd`` that ``scripts/build-argocd``
builds from the release pinned in ``tools/argocd``; the symlink it is started under picks the
component. No argocd-server, dex or UI: Applications are plain Kubernetes objects, created and
refreshed with kubectl, which is all the GitOps loop needs.

How the pieces find each other (Argo CD v3.1 source, for the facts):

- The application controller reads the Kubernetes API through ``--kubeconfig`` and, with
  ``ARGOCD_FAKE_IN_CLUSTER=true`` (``Cluster.RawRestConfig`` in
  ``pkg/apis/application/v1alpha1/types.go``), uses ``$KUBECONFIG`` for the in-cluster destination
  ``https://kubernetes.default.svc`` instead of a pod's service account. Its settings come from
  ``argocd-cm`` and ``argocd-secret`` (``server.secretkey``) in its namespace, both labelled
  ``app.kubernetes.io/part-of: argocd`` (the settings informers select on that label).
- The repo-server and the CMP server meet in ``$ARGOCD_PLUGINSOCKFILEPATH``: the CMP server
  listens on ``<name>-<version>.sock`` there (``cmpserver/plugin/config.go``), which is the
  plugin name an Application gives (``kdgen-v1``).
- The ``default`` AppProject is normally created by argocd-server, which does not run here, so
  :func:`install` creates it, as permissive as the one argocd-server creates.
- The Application and AppProject CRDs are read from the pinned Argo CD module in the Go module
  cache (``manifests/crds``), never copied into this repository.

Every process runs in its own session; :meth:`ArgoCD.stop` stops exactly the process groups it
started (SIGTERM, then SIGKILL), and is also registered with ``atexit``.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import yaml

from tests.support.cluster import Cluster
from tests.support.processes import Process, free_ports

REPO: Final = Path(__file__).resolve().parents[2]
TOOLS: Final = REPO / "tools" / "argocd"
BUILD_SCRIPT: Final = REPO / "scripts" / "build-argocd"
PLUGIN_DIR: Final = REPO / "plugins" / "argocd"
NAMESPACE: Final = "argocd"
COMPONENTS: Final = ("argocd-repo-server", "argocd-application-controller", "argocd-cmp-server")
MODULE: Final = "github.com/argoproj/argo-cd/v3"
PLUGIN_NAME: Final = "kdgen-v1"
"""The CMP's socket name, ``metadata.name-spec.version`` of plugins/argocd/plugin.yaml."""
APP_RESYNC_SECONDS: Final = 20
"""The controller's resync (git polling) period; tests also ask for a refresh right away."""
_PART_OF: Final = {"app.kubernetes.io/part-of": "argocd"}


class ArgoCDError(RuntimeError):
    """Argo CD could not be built, started or configured."""


def binaries() -> Path:
    """The directory holding ``argocd`` and its component symlinks; builds them if needed.

    ``$KDGEN_TEST_BIN`` (as ``scripts/test`` exports it) is used when it already holds them;
    otherwise ``scripts/build-argocd`` runs (idempotent; minutes on a cold Go build cache).
    """
    preset = os.environ.get("KDGEN_TEST_BIN")
    if preset and all(os.access(Path(preset) / c, os.X_OK) for c in ("argocd", *COMPONENTS)):
        return Path(preset)
    done = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ArgoCDError(f"{BUILD_SCRIPT} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def crd_manifests() -> list[Path]:
    """The Application and AppProject CRDs of the pinned release, from the Go module cache."""
    done = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", MODULE],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        check=False,
    )
    module_dir = Path(done.stdout.strip()) if done.returncode == 0 else None
    if module_dir is None or not module_dir.is_dir():
        raise ArgoCDError(f"{MODULE} is not in the Go module cache: {done.stderr.strip()}")
    crds = [
        module_dir / "manifests" / "crds" / f
        for f in ("application-crd.yaml", "appproject-crd.yaml")
    ]
    missing = [str(p) for p in crds if not p.is_file()]
    if missing:
        raise ArgoCDError(f"missing from the Argo CD module: {', '.join(missing)}")
    return crds


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _redis_pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class ArgoCD:
    """Redis, repo-server, CMP server and application controller against one cluster."""

    cluster: Cluster
    state_dir: Path
    bin_dir: Path
    processes: dict[str, Process] = field(default_factory=dict)
    redis_port: int = 0
    repo_server_port: int = 0

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.processes.items() if p.pid is not None}

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        """Start the four processes and wait until each one serves; stop them all on failure."""
        atexit.register(self.stop)
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        d = self.state_dir
        for sub in ("logs", "sockets", "tmp", "home", "redis", "tls", "ssh", "gpg/keys", "gpg/src"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "sockets").chmod(0o700)
        (d / "gpg" / "keys").chmod(0o700)
        redis_port, repo_port, repo_metrics, controller_metrics = free_ports(4)
        self.redis_port, self.repo_server_port = redis_port, repo_port
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise ArgoCDError("redis-server is missing; scripts/build-argocd installs it")
        venv_bin = Path(sys.executable).parent
        if not os.access(venv_bin / "kdgen", os.X_OK):
            raise ArgoCDError(f"{venv_bin / 'kdgen'} is missing; pip install -e . first")
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(d / "home"),
            "TMPDIR": str(d / "tmp"),
            "LANG": "C.UTF-8",
            "ARGOCD_PLUGINSOCKFILEPATH": str(d / "sockets"),
            "ARGOCD_TLS_DATA_PATH": str(d / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(d / "ssh"),
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_GNUPGHOME": str(d / "gpg" / "keys"),
            "ARGOCD_GPG_DATA_PATH": str(d / "gpg" / "src"),
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "KUBECONFIG": str(self.cluster.kubeconfig),
        }
        logging = ["--loglevel=info", "--logformat=text"]
        b = self.bin_dir
        redis = [redis_server, "--bind", "127.0.0.1", "--port", str(redis_port)]
        redis += ["--save", "", "--appendonly", "no", "--dir", str(d / "redis")]
        cmp_server = [str(b / "argocd-cmp-server"), f"--config-dir-path={PLUGIN_DIR}", *logging]
        repo_server = [
            str(b / "argocd-repo-server"),
            "--address=127.0.0.1",
            f"--port={repo_port}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={repo_metrics}",
            f"--redis=127.0.0.1:{redis_port}",
            "--disable-tls",
            *logging,
        ]
        controller = [
            str(b / "argocd-application-controller"),
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--namespace={NAMESPACE}",
            f"--redis=127.0.0.1:{redis_port}",
            f"--repo-server=127.0.0.1:{repo_port}",
            "--repo-server-plaintext",
            f"--metrics-port={controller_metrics}",
            f"--app-resync={APP_RESYNC_SECONDS}",
            "--persist-resource-health",  # each resource's health in the Application's status
            "--status-processors=2",
            "--operation-processors=2",
            *logging,
        ]
        path = base["PATH"]
        specs: dict[str, tuple[list[str], dict[str, str], Callable[[], bool]]] = {
            "redis": (redis, base, lambda: _redis_pong(redis_port)),
            "argocd-cmp-server": (
                cmp_server,
                {**base, "PATH": f"{venv_bin}{os.pathsep}{path}"},  # this checkout's kdgen
                lambda: (d / "sockets" / f"{PLUGIN_NAME}.sock").exists(),
            ),
            "argocd-repo-server": (
                repo_server,
                {**base, "PATH": f"{b}{os.pathsep}{path}"},  # kustomize, for deploy/crds
                lambda: _listening(repo_port),
            ),
            "argocd-application-controller": (
                controller,
                base,
                lambda: _listening(controller_metrics),
            ),
        }
        for name, (argv, env, ready) in specs.items():
            process = Process(name, argv, self.log_dir / f"{name}.log", env=env, cwd=d / "tmp")
            self.processes[name] = process
            process.start()
            self._wait(f"{name} serving", ready, timeout, process)

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float, process: Process) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            code = process.exited()
            if code is not None:
                raise ArgoCDError(f"{process.name} exited {code}:\n{process.log_tail()}")
            if time.monotonic() > deadline:
                raise ArgoCDError(
                    f"timed out after {timeout}s waiting for {what}:\n{process.log_tail()}"
                )
            time.sleep(0.2)

    def spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> Process:
        """Start one more process that :meth:`stop` stops with the others (e.g. status-sync)."""
        if name in self.processes:
            raise ArgoCDError(f"{name} is already running")
        process = Process(name, argv, self.log_dir / f"{name}.log", env=env, cwd=cwd)
        self.processes[name] = process
        process.start()
        return process

    def stop(self) -> None:
        """Stop every process this harness started, in reverse order; idempotent."""
        for process in reversed(list(self.processes.values())):
            process.stop()
        atexit.unregister(self.stop)

    def __enter__(self) -> ArgoCD:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def save_logs(self, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        for f in sorted(self.log_dir.glob("*.log")):
            dest.joinpath(f"argocd-{f.name}").write_bytes(f.read_bytes())
        return dest


def install(cluster: Cluster) -> None:
    """Argo CD's cluster side: CRDs, namespace, ``argocd-secret`` and the default AppProject.

    ``argocd-cm`` (with the KD health check) is the quickstart's own step, applied from
    ``examples/argocd/argocd-cm.yaml`` before :meth:`ArgoCD.start`.
    """
    for crd in crd_manifests():
        cluster.kubectl("apply", "--server-side", "-f", str(crd))
    for name in ("applications.argoproj.io", "appprojects.argoproj.io"):
        _wait_established(cluster, name)
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "argocd-secret", "namespace": NAMESPACE, "labels": _PART_OF},
            "stringData": {"server.secretkey": secrets.token_urlsafe(32)},
        },
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": {"name": "default", "namespace": NAMESPACE},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            },
        },
    ]
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml_stream(objects))


def _wait_established(cluster: Cluster, crd: str, timeout: float = 60.0) -> None:
    """Poll the CRD until its Established condition is True (no ``kubectl wait`` race)."""
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}"
    deadline = time.monotonic() + timeout
    while True:
        code, body = cluster.request("GET", path)
        conditions = (body.get("status", {}).get("conditions") or []) if code == 200 else []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        if time.monotonic() > deadline:
            raise ArgoCDError(f"CRD {crd} not Established after {timeout}s: {code} {body}")
        time.sleep(0.2)


def yaml_stream(objects: list[dict[str, Any]]) -> str:
    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False) for o in objects)


def start_argocd(cluster: Cluster, state_dir: Path, bin_dir: Path | None = None) -> ArgoCD:
    """Start Argo CD's processes against ``cluster`` (after :func:`install`)."""
    argocd = ArgoCD(cluster=cluster, state_dir=state_dir, bin_dir=bin_dir or binaries())
    argocd.start()
    return argocd
