"""A real, throwaway Kubernetes control plane for kdgen's end-to-end tests.

Why this exists: ``kdgen sync`` lists ``apps/v1`` Deployments and writes the ``status``
subresource of the KusciaDeployment CRD. Mocks do not reproduce what matters there (status
subresource rules, optimistic concurrency, server-side apply, patch content types, RBAC), so the
tests run against the genuine binaries that ``scripts/build-test-cluster`` builds from Go
modules: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (one fake node).

Everything listens on 127.0.0.1 only, on free ports picked at start. Each process runs in its own
session (process group); the cluster stops exactly the process groups it started, never by name.
Processes do not outlive the Python process that started them: stopping them is registered as a
``weakref.finalize`` callback (which also runs at interpreter exit), and a tiny watchdog process
holding the read end of a pipe kills them if the parent dies without cleaning up (SIGKILL too).
The command line (``python -m tests.support.cluster up``) is the one deliberate exception: it
leaves the cluster running until ``down``.

Usage::

    with start_cluster() as cluster, cluster.api_client() as client:
        cluster.kubectl("get", "nodes")
        kubernetes.client.CoreV1Api(client).list_namespace()
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import kubernetes.client

__all__ = [
    "BINARIES",
    "BIN_ENV",
    "CONTROLLERS",
    "FAKE_NODE",
    "KUBECTL_ENV",
    "Cluster",
    "ControlPlaneError",
    "Ports",
    "ensure_binaries",
    "find_kubectl",
    "main",
    "start_cluster",
]

log = logging.getLogger(__name__)

BIN_ENV: Final = "KDGEN_TEST_BIN"
"""Directory holding prebuilt binaries; when complete, the build script is not run."""
KUBECTL_ENV: Final = "KUBECTL"
"""Path of the kubectl to use, overriding the version-matched choice."""
GCLOUD_KUBECTL_DIR: Final = Path("/usr/lib/google-cloud-sdk/bin")
COMPONENTS: Final = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
BINARIES: Final = (*COMPONENTS, "kustomize")
FAKE_NODE: Final = "kwok-node-0"
SERVICE_CIDR: Final = "10.0.0.0/24"
POD_CIDR: Final = "10.244.0.1/24"
SERVICE_ACCOUNT_ISSUER: Final = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS: Final = (
    "deployment-controller",
    "replicaset-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
)
"""kube-controller-manager controllers: Deployments roll out, namespaces and owned objects are
deleted, and every namespace gets its ``default`` ServiceAccount (the ServiceAccount admission
plugin stays on, as in a real cluster, and rejects pods until that account exists)."""

STATE_FILE: Final = "cluster.json"
_REPO_ROOT: Final = Path(__file__).resolve().parents[2]
_BUILD_SCRIPT: Final = _REPO_ROOT / "scripts" / "build-test-cluster"


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started, reached or stopped.

    Attributes:
        log_dir: directory with the component logs, when there is one.
    """

    def __init__(self, message: str, log_dir: Path | None = None) -> None:
        super().__init__(message if log_dir is None else f"{message} (logs: {log_dir})")
        self.log_dir = log_dir


@dataclass(frozen=True)
class Ports:
    """The 127.0.0.1 ports one cluster listens on."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


# --------------------------------------------------------------------------------------------
# Binaries


def ensure_binaries() -> Path:
    """Return the directory holding all of ``BINARIES``, building them if needed.

    ``$KDGEN_TEST_BIN`` is used as is when it holds every binary. Otherwise
    ``scripts/build-test-cluster`` runs (it honours ``$KDGEN_TEST_BIN`` too, is idempotent, and
    takes minutes only on a cold Go build cache) and its last stdout line is the directory.

    Raises:
        ControlPlaneError: the script is missing or failed, or a binary is still absent.
    """
    preset = os.environ.get(BIN_ENV)
    if preset and not _missing_binaries(Path(preset)):
        return Path(preset)
    if not _BUILD_SCRIPT.is_file():
        raise ControlPlaneError(
            f"${BIN_ENV} does not hold {', '.join(BINARIES)} and {_BUILD_SCRIPT} does not exist"
        )
    log.info("running %s (a cold Go build takes minutes)", _BUILD_SCRIPT)
    done = subprocess.run([str(_BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ControlPlaneError(
            f"{_BUILD_SCRIPT} exited {done.returncode}:\n{_tail(done.stderr, 40)}"
        )
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise ControlPlaneError(f"{_BUILD_SCRIPT} printed no directory")
    bin_dir = Path(lines[-1])
    missing = _missing_binaries(bin_dir)
    if missing:
        raise ControlPlaneError(f"{bin_dir} lacks {', '.join(missing)} after the build")
    return bin_dir


def _missing_binaries(bin_dir: Path) -> list[str]:
    return [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]


def kube_version(bin_dir: Path) -> str:
    """Return the Kubernetes version (``v1.33.13``) of the kube-apiserver in ``bin_dir``."""
    out = subprocess.run(
        [str(bin_dir / "kube-apiserver"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()[-1]


def find_kubectl(kube_minor: int | None = None) -> str:
    """Choose the kubectl binary.

    ``$KUBECTL`` wins. Otherwise the Google Cloud SDK's ``kubectl.1.<minor>`` matching the
    cluster's minor version (the image ships 1.27 to 1.33), else ``kubectl`` on ``PATH`` (on the
    image that is the gcloud dispatcher, client 1.32).

    Args:
        kube_minor: the cluster's minor version, e.g. 33.

    Raises:
        ControlPlaneError: no kubectl was found.
    """
    chosen = os.environ.get(KUBECTL_ENV)
    if chosen:
        return chosen
    if kube_minor is not None:
        matching = GCLOUD_KUBECTL_DIR / f"kubectl.1.{kube_minor}"
        if os.access(matching, os.X_OK):
            return str(matching)
    on_path = shutil.which("kubectl")
    if on_path is None:
        raise ControlPlaneError(f"no kubectl found; set ${KUBECTL_ENV}")
    return on_path


# --------------------------------------------------------------------------------------------
# PKI

_OPENSSL_CONFIG: Final = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,\
DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


@dataclass(frozen=True)
class _Pki:
    ca_crt: Path
    ca_key: Path
    serving_crt: Path
    serving_key: Path
    admin_crt: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path
    tokens: Path


def _generate_pki(directory: Path, admin_token: str) -> _Pki:
    """Write the test PKI with the ``openssl`` command.

    That is a CA, one serving certificate shared by every component (127.0.0.1 and the
    in-cluster ``kubernetes`` names), an admin client certificate in ``system:masters``, a
    service-account signing key pair and a static token file holding ``admin_token``.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ControlPlaneError("openssl is needed to generate the test PKI")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG)
    d = directory

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ControlPlaneError(f"openssl {shlex.join(args)} failed:\n{done.stderr}")

    common = ["-config", str(config), "-newkey", "rsa:2048", "-nodes"]
    ca_crt, ca_key = str(d / "ca.crt"), str(d / "ca.key")
    run("req", "-x509", *common, "-extensions", "ca", "-days", "3650",
        "-subj", "/CN=kdgen-test-ca", "-keyout", ca_key, "-out", ca_crt)  # fmt: skip

    def leaf(name: str, subject: str, extensions: str) -> None:
        csr = d / f"{name}.csr"
        key, crt = str(d / f"{name}.key"), str(d / f"{name}.crt")
        run("req", "-new", *common, "-subj", subject, "-keyout", key, "-out", str(csr))
        run("x509", "-req", "-in", str(csr), "-CA", ca_crt, "-CAkey", ca_key,
            "-set_serial", f"0x{secrets.token_hex(16)}", "-days", "3650",
            "-extfile", str(config), "-extensions", extensions, "-out", crt)  # fmt: skip
        csr.unlink()

    leaf("serving", "/CN=kdgen-test-serving", "server")
    leaf("admin", "/O=system:masters/CN=kdgen-admin", "client")
    sa_key = str(d / "sa.key")
    run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", sa_key)
    run("pkey", "-in", sa_key, "-pubout", "-out", str(d / "sa.pub"))
    tokens = d / "tokens.csv"
    tokens.write_text(f'{admin_token},kdgen-admin,kdgen-admin,"system:masters"\n')
    for key in d.glob("*.key"):
        key.chmod(0o600)
    tokens.chmod(0o600)
    return _Pki(
        ca_crt=d / "ca.crt",
        ca_key=d / "ca.key",
        serving_crt=d / "serving.crt",
        serving_key=d / "serving.key",
        admin_crt=d / "admin.crt",
        admin_key=d / "admin.key",
        sa_key=d / "sa.key",
        sa_pub=d / "sa.pub",
        tokens=tokens,
    )


def _free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that were free on 127.0.0.1 a moment ago."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _kubeconfig_text(server: str, ca: Path, user: dict[str, str]) -> str:
    cluster = {"server": server, "certificate-authority": str(ca)}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kdgen-test", "cluster": cluster}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "kdgen-test", "context": {"cluster": "kdgen-test", "user": "user"}}],
        "current-context": "kdgen-test",
    }
    return json.dumps(config, indent=2) + "\n"  # JSON is YAML; no PyYAML needed here


# --------------------------------------------------------------------------------------------
# Processes

# Runs as ``python -c``: reads "+PID" / "-PID" / "dPATH" lines from stdin; when stdin closes (the
# parent exited or died) it kills the process groups still registered, then removes PATH if one
# was given (a temporary state directory). It ignores SIGINT/SIGHUP so a Ctrl-C aimed at pytest
# cannot take it down first.
_WATCHDOG: Final = r"""
import os, shutil, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
def term(*_):
    raise SystemExit
signal.signal(signal.SIGTERM, term)
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
pids = set()
remove = None
try:
    for line in sys.stdin:
        if line[:1] == "+":
            pids.add(int(line[1:]))
        elif line[:1] == "-":
            pids.discard(int(line[1:]))
        elif line[:1] == "d":
            remove = line[1:].rstrip("\n") or None
finally:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.killpg(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.1)
        if not any(alive(p) for p in pids):
            break
    if remove:
        shutil.rmtree(remove, ignore_errors=True)
"""


class _Watchdog:
    """Kills the registered process groups if this Python process dies without doing so."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )

    def _send(self, line: str) -> None:
        stdin = self._proc.stdin
        if stdin is not None and not stdin.closed:
            stdin.write(line + "\n")
            stdin.flush()

    def add(self, pid: int) -> None:
        self._send(f"+{pid}")

    def remove(self, pid: int) -> None:
        self._send(f"-{pid}")

    def remove_dir_on_exit(self, path: Path | None) -> None:
        """Have the watchdog delete ``path`` when it exits (None: delete nothing)."""
        self._send(f"d{path or ''}")

    def close(self) -> None:
        """Let the watchdog exit; every group it still knows about is killed first."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (we may not be its parent, so cannot reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class _Component:
    """One control-plane process: its command line, log file and (while running) pid."""

    def __init__(self, name: str, argv: list[str], log_file: Path, pid: int | None = None):
        self.name = name
        self.argv = argv
        self.log_file = log_file
        self.pid = pid
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, watchdog: _Watchdog | None) -> None:
        with self.log_file.open("ab") as out:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            out.write(f"==== kdgen {stamp} start: {shlex.join(self.argv)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killpg reaches only this one
            )
        self.pid = self.popen.pid
        if watchdog is not None:
            watchdog.add(self.pid)

    def running(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is not None and _alive(self.pid)

    def owned(self, marker: str) -> bool:
        """Whether our pid still names this process (guards against pid reuse after attach)."""
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is not None and _alive(self.pid) and marker in _cmdline(self.pid)

    def stop(
        self, watchdog: _Watchdog | None, marker: str, timeout: float = 15.0, kill: bool = False
    ) -> None:
        """SIGTERM the process group (SIGKILL if ``kill``), wait, then SIGKILL it."""
        pid = self.pid
        if pid is None:
            return
        if self.owned(marker):
            self._signal(pid, signal.SIGKILL if kill else signal.SIGTERM)
            if not self._wait(timeout):
                log.warning(
                    "%s (pid %d) ignored SIGTERM for %.0fs; killing", self.name, pid, timeout
                )
                self._signal(pid, signal.SIGKILL)
                self._wait(timeout)
        elif self.popen is not None:
            self.popen.wait()
        if watchdog is not None:
            watchdog.remove(pid)
        self.pid = None
        self.popen = None

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass

    def _wait(self, timeout: float) -> bool:
        if self.popen is not None:
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while self.pid is not None and _alive(self.pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


class _Processes:
    """The components of one cluster; separate from ``Cluster`` so a finalizer can hold it."""

    def __init__(self, components: dict[str, _Component], watchdog: _Watchdog | None, marker: str):
        self.components = components
        self.watchdog = watchdog
        self.marker = marker

    def stop_all(self) -> None:
        for name in reversed(COMPONENTS):
            component = self.components.get(name)
            if component is not None:
                component.stop(self.watchdog, self.marker)
        if self.watchdog is not None:
            self.watchdog.close()
            self.watchdog = None


# --------------------------------------------------------------------------------------------
# HTTP without the kubernetes client (used while bootstrapping and for raw checks)


class _Http:
    def __init__(self, ca: Path, token: str) -> None:
        context = ssl.create_default_context(cafile=str(ca))
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # never send loopback traffic to a proxy
            urllib.request.HTTPSHandler(context=context),
        )
        self._token = token

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        token: str | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self._token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as err:
            with err:
                return err.code, _decode(err.read())

    def get_text(self, url: str, *, auth: bool = True, timeout: float = 5.0) -> tuple[int, str]:
        req = urllib.request.Request(url)
        if auth:
            req.add_header("Authorization", f"Bearer {self._token}")
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read().decode(errors="replace")


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


# --------------------------------------------------------------------------------------------
# The cluster


class Cluster:
    """A running control plane. Create it with ``start_cluster`` or ``Cluster.attach``.

    Attributes:
        state_dir: PKI, etcd data, kubeconfig, ``logs/`` and ``cluster.json``.
        bin_dir: directory with the binaries (``BINARIES``).
        version: Kubernetes version of the binaries, e.g. ``v1.33.13``.
        server: ``https://127.0.0.1:<port>``.
        kubeconfig: admin kubeconfig (client certificate in ``system:masters``).
        ca_file: CA certificate that signed every serving certificate.
        admin_token: bearer token of the same admin (static token file).
        ports: every port the cluster listens on.
        kubectl_path: kubectl binary used by ``kubectl()`` (see ``find_kubectl``).
        startup_seconds: wall time ``start_cluster`` took from first process to ready.
    """

    def __init__(
        self,
        *,
        state_dir: Path,
        bin_dir: Path,
        version: str,
        ports: Ports,
        admin_token: str,
        components: dict[str, _Component],
        watchdog: _Watchdog | None,
        owns_state_dir: bool,
        startup_seconds: float = 0.0,
    ) -> None:
        self.state_dir = state_dir
        self.bin_dir = bin_dir
        self.version = version
        self.ports = ports
        self.admin_token = admin_token
        self.server = f"https://127.0.0.1:{ports.apiserver}"
        self.kubeconfig = state_dir / "admin.kubeconfig"
        self.ca_file = state_dir / "pki" / "ca.crt"
        self.log_dir = state_dir / "logs"
        self.startup_seconds = startup_seconds
        self.kubectl_path = find_kubectl(_minor(version))
        self._owns_state_dir = owns_state_dir
        self._http = _Http(self.ca_file, admin_token)
        self._procs = _Processes(components, watchdog, marker=str(state_dir))
        # Attached clusters (see ``attach``) belong to whoever ran ``up``: no finalizer.
        self._finalizer = (
            weakref.finalize(self, self._procs.stop_all) if watchdog is not None else None
        )

    # -- construction from a running ``up`` ----------------------------------------------------

    @classmethod
    def attach(cls, state_dir: Path) -> Cluster:
        """Return a handle on a cluster started by ``python -m tests.support.cluster up``.

        Stopping it (``stop``) stops that cluster; dropping the handle leaves it running.

        Raises:
            ControlPlaneError: ``state_dir`` holds no cluster state.
        """
        state_file = state_dir / STATE_FILE
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError) as err:
            raise ControlPlaneError(f"no cluster state in {state_file}: {err}") from err
        components = {
            name: _Component(name, c["argv"], Path(c["log"]), c["pid"])
            for name, c in state["components"].items()
        }
        return cls(
            state_dir=state_dir,
            bin_dir=Path(state["bin_dir"]),
            version=state["version"],
            ports=Ports(**state["ports"]),
            admin_token=state["admin_token"],
            components=components,
            watchdog=None,
            owns_state_dir=False,
            startup_seconds=float(state.get("startup_seconds", 0.0)),
        )

    def _save_state(self) -> None:
        state = {
            "version": self.version,
            "bin_dir": str(self.bin_dir),
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ports": asdict(self.ports),
            "admin_token": self.admin_token,
            "startup_seconds": self.startup_seconds,
            "components": {
                c.name: {"pid": c.pid, "argv": c.argv, "log": str(c.log_file)}
                for c in self._procs.components.values()
            },
        }
        path = self.state_dir / STATE_FILE
        path.write_text(json.dumps(state, indent=2) + "\n")
        path.chmod(0o600)

    # -- clients ---------------------------------------------------------------------------------

    @property
    def kustomize(self) -> Path:
        """The kustomize binary built alongside the control plane."""
        return self.bin_dir / "kustomize"

    @property
    def pids(self) -> dict[str, int]:
        """Pid (also the process-group id) of each running component."""
        return {c.name: c.pid for c in self._procs.components.values() if c.pid is not None}

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster as admin (or with ``kubeconfig``), capturing text.

        Raises:
            subprocess.CalledProcessError: kubectl failed and ``check`` is true.
        """
        argv = [
            self.kubectl_path,
            f"--kubeconfig={kubeconfig or self.kubeconfig}",
            f"--cache-dir={self.state_dir / 'kube-cache'}",
            *args,
        ]
        return subprocess.run(
            argv, input=input, capture_output=True, text=True, check=check, timeout=timeout
        )

    def configuration(self, token: str | None = None) -> kubernetes.client.Configuration:
        """A ``kubernetes.client.Configuration`` for this cluster, verifying TLS with our CA.

        Args:
            token: bearer token to authenticate with; the admin token when omitted.
        """
        import kubernetes.client  # only tests that use the API need it

        config = kubernetes.client.Configuration(
            host=self.server,
            api_key={"BearerToken": token or self.admin_token},
            api_key_prefix={"BearerToken": "Bearer"},
            ssl_ca_cert=str(self.ca_file),
        )
        config.proxy = None
        return config

    def api_client(self, token: str | None = None) -> kubernetes.client.ApiClient:
        """A ``kubernetes.client.ApiClient`` for this cluster (admin unless ``token`` is given).

        Close it (it is a context manager) when done to release its connection pool.
        """
        import kubernetes.client

        return kubernetes.client.ApiClient(self.configuration(token))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        token: str | None = None,
    ) -> tuple[int, Any]:
        """Send one raw API request; return the HTTP status and the decoded JSON (or text) body.

        Args:
            method: HTTP method.
            path: request path such as ``/api/v1/namespaces``.
            body: JSON-serializable body, or None.
            content_type: e.g. ``application/merge-patch+json`` for a PATCH.
            token: bearer token; the admin token when omitted.
        """
        return self._http.request(
            method, self.server + path, body, content_type=content_type, token=token
        )

    def service_account_token(
        self,
        namespace: str,
        name: str,
        *,
        create: bool = True,
        expiration_seconds: int = 3600,
        audiences: Sequence[str] = (),
    ) -> str:
        """Mint a token for a ServiceAccount with the TokenRequest API.

        The token authenticates as ``system:serviceaccount:<namespace>:<name>`` and has exactly
        the rights RBAC grants that account, which is what a least-privilege test needs.

        Args:
            namespace: namespace of the account (must exist).
            name: account name.
            create: create the ServiceAccount first if it does not exist.
            expiration_seconds: token lifetime, at least 600.
            audiences: token audiences; the apiserver's own when empty.

        Raises:
            ControlPlaneError: the API refused.
        """
        base = f"/api/v1/namespaces/{namespace}/serviceaccounts"
        if create:
            code, body = self.request(
                "POST",
                base,
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
            )
            if code not in (201, 409):
                raise ControlPlaneError(
                    f"creating ServiceAccount {namespace}/{name}: {code} {body}"
                )
        spec: dict[str, Any] = {"expirationSeconds": expiration_seconds}
        if audiences:
            spec["audiences"] = list(audiences)
        code, body = self.request(
            "POST",
            f"{base}/{name}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        if code != 201:
            raise ControlPlaneError(f"TokenRequest for {namespace}/{name}: {code} {body}")
        return str(body["status"]["token"])

    def write_kubeconfig(self, path: Path, *, token: str | None = None) -> Path:
        """Write a kubeconfig for this cluster: bearer ``token`` if given, else the admin cert."""
        if token is None:
            user = {
                "client-certificate": str(self.state_dir / "pki" / "admin.crt"),
                "client-key": str(self.state_dir / "pki" / "admin.key"),
            }
        else:
            user = {"token": token}
        path.write_text(_kubeconfig_text(self.server, self.ca_file, user))
        path.chmod(0o600)
        return path

    # -- apiserver restart -------------------------------------------------------------------

    def stop_apiserver(self, *, kill: bool = False) -> None:
        """Stop kube-apiserver only; etcd and the other components keep running.

        Args:
            kill: SIGKILL it (a crash: open watches break without a GOAWAY) instead of the
                graceful SIGTERM (about 2s: it drains short requests, then closes watches).
        """
        self._procs.components["kube-apiserver"].stop(
            self._procs.watchdog, self._procs.marker, kill=kill
        )

    def start_apiserver(self, timeout: float = 60.0) -> None:
        """Start kube-apiserver again with the same flags, port and etcd; wait until ready."""
        component = self._procs.components["kube-apiserver"]
        if component.running():
            raise ControlPlaneError("kube-apiserver is already running")
        component.start(self._procs.watchdog)
        self._save_state()
        _wait_for(
            "kube-apiserver /readyz",
            lambda: self._http.get_text(f"{self.server}/readyz")[0] == 200,
            timeout,
            [component],
            self.log_dir,
        )

    def restart_apiserver(
        self, timeout: float = 60.0, downtime: float = 0.0, *, kill: bool = False
    ) -> None:
        """Restart kube-apiserver on the same port and etcd; wait until ``/readyz`` is 200.

        Args:
            timeout: seconds to wait for readiness.
            downtime: seconds to stay down between stop and start.
            kill: crash it with SIGKILL instead of a graceful stop (see ``stop_apiserver``).
        """
        self.stop_apiserver(kill=kill)
        if downtime > 0:
            time.sleep(downtime)
        self.start_apiserver(timeout)

    # -- teardown ----------------------------------------------------------------------------

    def save_logs(self, dest: Path) -> Path:
        """Copy the component logs to ``dest`` (created) and return it."""
        dest.mkdir(parents=True, exist_ok=True)
        for f in sorted(self.log_dir.glob("*.log")):
            shutil.copy2(f, dest / f.name)
        return dest

    def stop(self, *, keep_state: bool = False) -> None:
        """Stop every component this cluster started (exact pids, reverse start order).

        The state directory (logs included) is removed if ``start_cluster`` created it, unless
        ``keep_state`` is true. Safe to call more than once.
        """
        if keep_state and self._procs.watchdog is not None:
            self._procs.watchdog.remove_dir_on_exit(None)
        if self._finalizer is not None:
            self._finalizer()  # runs _procs.stop_all once
        else:
            self._procs.stop_all()
        state_file = self.state_dir / STATE_FILE
        if state_file.exists():
            state_file.unlink()
        if self._owns_state_dir and not keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failed = exc_type is not None
        self.stop(keep_state=failed)
        if failed:
            print(f"kdgen cluster logs kept in {self.log_dir}", file=sys.stderr)


def _minor(version: str) -> int | None:
    parts = version.lstrip("v").split(".")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _wait_for(
    what: str,
    ready: Callable[[], bool],
    timeout: float,
    watched: Sequence[_Component],
    log_dir: Path,
) -> None:
    """Poll ``ready`` until true; fail early if a watched process exits."""
    deadline = time.monotonic() + timeout
    while True:
        for c in watched:
            if not c.running():
                raise ControlPlaneError(
                    f"{c.name} exited while waiting for {what}:\n"
                    f"{_tail(c.log_file.read_text(errors='replace'), 30)}",
                    log_dir,
                )
        try:
            if ready():
                return
        except (OSError, ValueError, KeyError):  # refused, TLS not up yet, partial status
            pass
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}", log_dir)
        time.sleep(0.2)


def _argvs(
    bin_dir: Path, state_dir: Path, pki: _Pki, ports: Ports, kubeconfig: Path
) -> dict[str, list[str]]:
    b = str(bin_dir)
    etcd_url = f"http://127.0.0.1:{ports.etcd_client}"
    peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
    serving = [f"--tls-cert-file={pki.serving_crt}", f"--tls-private-key-file={pki.serving_key}"]
    return {
        "etcd": [
            f"{b}/etcd",
            "--name=kdgen-test",
            f"--data-dir={state_dir / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=kdgen-test={peer_url}",
            "--unsafe-no-fsync=true",  # test data only: do not wait for the disk
            "--log-level=warn",
        ],
        "kube-apiserver": [
            f"{b}/kube-apiserver",
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.apiserver}",
            # A loopback advertise address is only accepted with no endpoint reconciler; the
            # `kubernetes` Service then has no Endpoints, which nothing here needs.
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            *serving,
            f"--client-ca-file={pki.ca_crt}",
            f"--token-auth-file={pki.tokens}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--profiling=false",
            # On SIGTERM, drain short requests, then give the HTTP server 2s instead of
            # --request-timeout (60s) to close open watches, so a restart takes seconds.
            "--shutdown-send-retry-after=true",
            f"--cert-dir={state_dir / 'apiserver-certs'}",
        ],
        "kube-controller-manager": [
            f"{b}/kube-controller-manager",
            f"--kubeconfig={kubeconfig}",
            f"--controllers={','.join(CONTROLLERS)}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.controller_manager}",
            *serving,
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_crt}",
            "--profiling=false",
            # The defaults (20 requests/s) make 2,000 Deployments take minutes to roll out
            # (a ReplicaSet, a pod and status updates each); the benchmark needs them faster.
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
        "kube-scheduler": [
            f"{b}/kube-scheduler",
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.scheduler}",
            *serving,
            "--kube-api-qps=200",  # 50 by default: one binding per pod
            "--kube-api-burst=400",
        ],
        "kwok": [
            f"{b}/kwok",
            f"--kubeconfig={kubeconfig}",
            f"--config={state_dir / 'kwok.yaml'}",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}",
            "--node-ip=10.244.0.1",
            f"--server-address=127.0.0.1:{ports.kwok}",
        ],
    }


_KWOK_CONFIG: Final = """\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options: {}
"""


def _fake_node() -> dict[str, Any]:
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": FAKE_NODE,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": FAKE_NODE,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": resources},
    }


def _node_ready(http: _Http, server: str) -> bool:
    code, node = http.request("GET", f"{server}/api/v1/nodes/{FAKE_NODE}")
    if code != 200:
        return False
    conditions = node.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def start_cluster(
    state_dir: Path | None = None,
    *,
    bin_dir: Path | None = None,
    detach: bool = False,
    timeout: float = 120.0,
) -> Cluster:
    """Start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok; wait.

    Ready means: apiserver ``/readyz`` is 200, controller-manager and scheduler ``/healthz``
    are 200, the fake node ``kwok-node-0`` is Ready, and the ``default`` ServiceAccount exists
    in namespace ``default`` (so the controller-manager is working).

    Args:
        state_dir: where PKI, etcd data, kubeconfig and logs go; a new temporary directory
            (removed by ``stop`` unless asked to keep it) when omitted. An existing directory
            is reused but its previous cluster data is wiped.
        bin_dir: directory with ``BINARIES``; ``ensure_binaries()`` when omitted.
        detach: leave the processes running when this Python process exits (for the
            command line); no watchdog or exit finalizer is installed.
        timeout: seconds to wait for each readiness step.

    Returns:
        The running cluster; use it as a context manager to stop it.

    Raises:
        ControlPlaneError: a component failed to start or become ready. Every process that
            was started is stopped again; the logs stay in ``error.log_dir``.
    """
    bin_dir = bin_dir or ensure_binaries()
    version = kube_version(bin_dir)
    owns = state_dir is None
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="kdgen-cluster-"))
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if (state_dir / STATE_FILE).exists():
        previous = Cluster.attach(state_dir)
        if previous.pids and any(
            c.owned(str(state_dir)) for c in previous._procs.components.values()
        ):
            raise ControlPlaneError(f"a cluster is still running from {state_dir}; run down first")
    for sub in ("pki", "etcd-data", "logs", "kube-cache", "apiserver-certs"):
        shutil.rmtree(state_dir / sub, ignore_errors=True)
    (state_dir / "logs").mkdir()
    (state_dir / "etcd-data").mkdir(mode=0o700)

    began = time.monotonic()
    admin_token = secrets.token_hex(24)
    pki = _generate_pki(state_dir / "pki", admin_token)
    ports = Ports(*_free_ports(6))
    server = f"https://127.0.0.1:{ports.apiserver}"
    kubeconfig = state_dir / "admin.kubeconfig"
    kubeconfig.write_text(
        _kubeconfig_text(
            server,
            pki.ca_crt,
            {"client-certificate": str(pki.admin_crt), "client-key": str(pki.admin_key)},
        )
    )
    kubeconfig.chmod(0o600)
    (state_dir / "kwok.yaml").write_text(_KWOK_CONFIG)
    log_dir = state_dir / "logs"
    components = {
        name: _Component(name, argv, log_dir / f"{name}.log")
        for name, argv in _argvs(bin_dir, state_dir, pki, ports, kubeconfig).items()
    }
    watchdog = None if detach else _Watchdog()
    if watchdog is not None and owns:
        watchdog.remove_dir_on_exit(state_dir)  # even if we are killed
    cluster = Cluster(
        state_dir=state_dir,
        bin_dir=bin_dir,
        version=version,
        ports=ports,
        admin_token=admin_token,
        components=components,
        watchdog=watchdog,
        owns_state_dir=owns,
    )
    http = _Http(pki.ca_crt, admin_token)
    try:
        etcd = components["etcd"]
        etcd.start(watchdog)
        _wait_for(
            "etcd /health",
            lambda: '"health":"true"' in _plain_get(f"http://127.0.0.1:{ports.etcd_client}/health"),
            timeout,
            [etcd],
            log_dir,
        )
        apiserver = components["kube-apiserver"]
        apiserver.start(watchdog)
        cluster._save_state()
        _wait_for(
            "kube-apiserver /readyz",
            _ok(http, f"{server}/readyz"),
            timeout,
            [etcd, apiserver],
            log_dir,
        )
        rest = [components[n] for n in ("kube-controller-manager", "kube-scheduler", "kwok")]
        for component in rest:
            component.start(watchdog)
        cluster._save_state()
        code, body = http.request("POST", f"{server}/api/v1/nodes", _fake_node())
        if code != 201:
            raise ControlPlaneError(f"creating node {FAKE_NODE}: {code} {body}", log_dir)
        everything = [etcd, apiserver, *rest]
        for name, port in (
            ("kube-controller-manager", ports.controller_manager),
            ("kube-scheduler", ports.scheduler),
        ):
            healthy = _ok(http, f"https://127.0.0.1:{port}/healthz", auth=False)
            _wait_for(f"{name} /healthz", healthy, timeout, everything, log_dir)
        _wait_for(
            f"node {FAKE_NODE} Ready (kwok)",
            lambda: _node_ready(http, server),
            timeout,
            everything,
            log_dir,
        )
        # The TaintNodesByCondition admission plugin gave the node a not-ready NoSchedule
        # taint; node-lifecycle-controller (not run here) would lift it once Ready.
        code, body = http.request(
            "PATCH",
            f"{server}/api/v1/nodes/{FAKE_NODE}",
            {"spec": {"taints": None}},
            content_type="application/merge-patch+json",
        )
        if code != 200 or body.get("spec", {}).get("taints"):
            raise ControlPlaneError(f"removing the taints of {FAKE_NODE}: {code} {body}", log_dir)
        _wait_for(
            "ServiceAccount default/default (kube-controller-manager)",
            _ok(http, f"{server}/api/v1/namespaces/default/serviceaccounts/default"),
            timeout,
            everything,
            log_dir,
        )
    except BaseException:
        cluster.stop(keep_state=True)
        raise
    cluster.startup_seconds = time.monotonic() - began
    cluster._save_state()
    log.info("cluster %s ready in %.1fs (state %s)", server, cluster.startup_seconds, state_dir)
    return cluster


def _ok(http: _Http, url: str, *, auth: bool = True) -> Callable[[], bool]:
    """A readiness probe: GET ``url`` (as admin unless ``auth`` is false) answers 200."""
    return lambda: http.get_text(url, auth=auth)[0] == 200


def _plain_get(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as resp:
        body: bytes = resp.read()
        return body.decode()


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """``python -m tests.support.cluster up [--state-dir DIR] | down --state-dir DIR``.

    ``up`` starts a detached cluster and prints its state directory, kubeconfig and an
    ``export KUBECONFIG=...`` line; point ``KDGEN_TEST_CLUSTER`` at the state directory to make
    the e2e tests reuse it. ``down`` stops it (exact pids from ``cluster.json``).
    ``restart-apiserver`` restarts kube-apiserver of a running cluster.
    """
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a cluster that keeps running")
    up.add_argument("--state-dir", type=Path, help="default: a new temporary directory")
    up.add_argument("--bin-dir", type=Path, help=f"default: ${BIN_ENV} or the build script")
    down = commands.add_parser("down", help="stop a cluster started by up")
    down.add_argument("--state-dir", type=Path, required=True)
    down.add_argument("--rm", action="store_true", help="also delete the state directory")
    restart = commands.add_parser("restart-apiserver", help="restart kube-apiserver only")
    restart.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.command == "up":
            state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="kdgen-cluster-"))
            cluster = start_cluster(state_dir, bin_dir=args.bin_dir, detach=True)
            print(f"state-dir: {cluster.state_dir}", file=out)
            print(f"server: {cluster.server}", file=out)
            print(f"ready-seconds: {cluster.startup_seconds:.1f}", file=out)
            print(f"kubectl: {cluster.kubectl_path}", file=out)
            for name, pid in cluster.pids.items():
                print(f"pid {name}: {pid}", file=out)
            print(f"export KUBECONFIG={cluster.kubeconfig}", file=out)
        elif args.command == "down":
            state_dir = args.state_dir.resolve()
            Cluster.attach(state_dir).stop()
            if args.rm:
                shutil.rmtree(state_dir)
            print(f"stopped {state_dir}", file=out)
        else:
            cluster = Cluster.attach(args.state_dir.resolve())
            began = time.monotonic()
            cluster.restart_apiserver()
            print(f"kube-apiserver restarted in {time.monotonic() - began:.1f}s", file=out)
    except ControlPlaneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
