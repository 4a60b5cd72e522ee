"""Real Flux for the GitOps e2e test: source-controller and kustomize-controller as processes.

The binaries come from ``scripts/build-flux`` (Go modules pinned in ``tools/flux/*``, cached in
``$KDGEN_TEST_BIN``). They run on this machine against the test control plane, the way Flux's
own ``make run`` runs a controller outside a cluster: the admin kubeconfig in ``KUBECONFIG``,
``RUNTIME_NAMESPACE=flux-system``, leader election off, every namespace watched, every listener
on a free 127.0.0.1 port. source-controller serves its artifacts on ``--storage-addr`` and
advertises that same address in each artifact URL (``--storage-adv-addr``), which is where
kustomize-controller downloads them.

The Flux CRDs are read at run time from the controllers' Go module sources in the module cache
(``config/crd/bases`` of each module), so exactly the pinned release's CRDs are applied and none
are committed here.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from functools import partial
from pathlib import Path
from typing import Final

from tests.support.cluster import BIN_ENV, Cluster
from tests.support.processes import Process, ProcessError, free_ports, wait_until

__all__ = [
    "CONTROLLERS",
    "NAMESPACE",
    "Flux",
    "ensure_flux_binaries",
    "flux_crds",
]

REPO: Final = Path(__file__).resolve().parents[2]
BUILD_SCRIPT: Final = REPO / "scripts" / "build-flux"
TOOLS: Final = REPO / "tools" / "flux"
CONTROLLERS: Final = ("source-controller", "kustomize-controller")
NAMESPACE: Final = "flux-system"
REQUEUE_DEPENDENCY: Final = "2s"
"""How soon a Kustomization whose ``dependsOn`` is not Ready yet is looked at again (Flux's
default is 30s; a test cluster is ready in seconds)."""


def ensure_flux_binaries() -> Path:
    """Return the directory holding both controllers, running ``scripts/build-flux`` if needed."""
    preset = os.environ.get(BIN_ENV)
    if preset and all(os.access(Path(preset) / c, os.X_OK) for c in CONTROLLERS):
        return Path(preset)
    done = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ProcessError(f"{BUILD_SCRIPT} exited {done.returncode}:\n{done.stderr[-4000:]}")
    bin_dir = Path(done.stdout.strip().splitlines()[-1])
    missing = [c for c in CONTROLLERS if not os.access(bin_dir / c, os.X_OK)]
    if missing:
        raise ProcessError(f"{bin_dir} lacks {', '.join(missing)} after {BUILD_SCRIPT}")
    return bin_dir


def flux_crds() -> list[Path]:
    """The CRD files of both pinned controllers, from their Go module sources."""
    files: list[Path] = []
    for controller in CONTROLLERS:
        env = dict(os.environ)
        env["GOFLAGS"] = " ".join(filter(None, (env.get("GOFLAGS"), "-mod=mod")))
        done = subprocess.run(
            ["go", "list", "-m", "-f", "{{.Dir}}", f"github.com/fluxcd/{controller}"],
            cwd=TOOLS / controller,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0 or not done.stdout.strip():
            raise ProcessError(f"go list -m github.com/fluxcd/{controller}: {done.stderr}")
        bases = Path(done.stdout.strip()) / "config" / "crd" / "bases"
        found = sorted(bases.glob("*.yaml"))
        if not found:
            raise ProcessError(f"no CRDs in {bases}")
        files.extend(found)
    return files


def _healthy(port: int) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


class Flux:
    """source-controller and kustomize-controller running against ``cluster``.

    ``start`` applies the Flux CRDs and the ``flux-system`` namespace, starts both controllers
    and waits for their ``/readyz``; ``stop`` ends exactly those two process groups.
    """

    def __init__(self, cluster: Cluster, work_dir: Path, bin_dir: Path | None = None) -> None:
        self.cluster = cluster
        self.work_dir = work_dir
        self.bin_dir = bin_dir or ensure_flux_binaries()
        self.log_dir = work_dir / "logs"
        self.storage = work_dir / "storage"
        self.processes: dict[str, Process] = {}
        self.storage_port = self.source_health = self.kustomize_health = 0

    def _argv(self) -> dict[str, list[str]]:
        b = self.bin_dir
        ports = free_ports(5)
        self.storage_port, self.source_health, self.kustomize_health = ports[:3]
        common = ["--watch-all-namespaces=true", "--enable-leader-election=false"]
        common += ["--log-level=debug", "--log-encoding=console"]
        return {
            "source-controller": [
                str(b / "source-controller"),
                *common,
                f"--storage-path={self.storage}",
                f"--storage-addr=127.0.0.1:{self.storage_port}",
                f"--storage-adv-addr=127.0.0.1:{self.storage_port}",
                f"--health-addr=127.0.0.1:{self.source_health}",
                f"--metrics-addr=127.0.0.1:{ports[3]}",
            ],
            "kustomize-controller": [
                str(b / "kustomize-controller"),
                *common,
                f"--health-addr=127.0.0.1:{self.kustomize_health}",
                f"--metrics-addr=127.0.0.1:{ports[4]}",
                f"--requeue-dependency={REQUEUE_DEPENDENCY}",
                "--no-remote-bases=true",
            ],
        }

    def start(self, timeout: float = 120.0) -> Flux:
        crds = flux_crds()
        args = ["apply", "--server-side", "--force-conflicts"]
        self.cluster.kubectl(*args, *(f"--filename={f}" for f in crds))
        self.cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s",
            *(f"--filename={f}" for f in crds),
        )  # fmt: skip
        namespace = f'{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{NAMESPACE}"}}}}'
        self.cluster.kubectl("apply", "--server-side", "-f", "-", input=namespace)
        self.storage.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "SOURCE_"))}
        env.update(KUBECONFIG=str(self.cluster.kubeconfig), RUNTIME_NAMESPACE=NAMESPACE)
        env["HOME"] = str(self.work_dir)  # nothing of the user's git or docker config leaks in
        try:
            for name, argv in self._argv().items():
                log = self.log_dir / f"{name}.log"
                self.processes[name] = Process(name, argv, log, env=env, cwd=self.work_dir).start()
            watched = list(self.processes.values())
            for name, port in (
                ("source-controller", self.source_health),
                ("kustomize-controller", self.kustomize_health),
            ):
                wait_until(f"{name} /readyz", partial(_healthy, port), timeout, watched)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both controllers (each its own process group); safe to call twice."""
        for process in reversed(list(self.processes.values())):
            process.stop()

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.processes.items() if p.pid is not None}

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.log_tail(60)}" for n, p in self.processes.items())

    def __enter__(self) -> Flux:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
