"""A local git server for the GitOps end-to-end tests: smart HTTP on 127.0.0.1.

Flux's source-controller (go-git) and Argo CD's repo-server fetch over git's *smart* HTTP
protocol, which go-git requires (it does not speak the dumb protocol). Git ships the server side
of that protocol as the CGI program ``git http-backend``; this module is the small web server in
front of it: a ``ThreadingHTTPServer`` in a thread of the test process that turns each request
into one CGI run (environment per RFC 3875, request body on stdin, the CGI's ``Status:`` and
headers turned into the HTTP response). Nothing listens beyond 127.0.0.1, and the only processes
are the short-lived ``git`` runs of each request, which end with it.

Repositories are bare, named ``<name>.git`` under the server's root, on branch ``main``, served at
``http://127.0.0.1:<port>/<name>.git``. ``commit_folder`` records a folder's content as the next
revision (files absent from the folder are deleted in that revision)::

    with GitServer(tmp_path / "git") as server:
        url = server.create_repo("apps")
        sha = server.commit_folder("apps", rendered_dir, "add the KD")

Read-only: pushing is refused (``http.receivepack`` is off), tests write with ``commit_folder``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

__all__ = ["BRANCH", "GitServer", "GitServerError"]

BRANCH: Final = "main"
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CGI_TIMEOUT: Final = 120.0
# The identity and clock of every commit, so the same folders give the same commit ids.
_AUTHOR: Final = {
    "GIT_AUTHOR_NAME": "kdgen e2e",
    "GIT_AUTHOR_EMAIL": "e2e@kdgen.invalid",
    "GIT_COMMITTER_NAME": "kdgen e2e",
    "GIT_COMMITTER_EMAIL": "e2e@kdgen.invalid",
}


class GitServerError(RuntimeError):
    """A git command of the server failed, or the server could not start."""


def _git_env() -> dict[str, str]:
    """The environment for every git run: no system or user configuration leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    return env


def _git(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        capture_output=True,
        text=True,
        env=env or _git_env(),
        check=False,
        timeout=_CGI_TIMEOUT,
    )
    if done.returncode != 0:
        raise GitServerError(f"git {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def _http_backend() -> str:
    exec_path = _git("--exec-path").strip()
    backend = Path(exec_path) / "git-http-backend"
    if not os.access(backend, os.X_OK):
        raise GitServerError(f"{backend} is missing; install git (Debian package git)")
    return str(backend)


class _Handler(BaseHTTPRequestHandler):
    """One request, one ``git http-backend`` run. HTTP/1.0: the connection closes after it."""

    server: _Server

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def log_message(self, format: str, *args: object) -> None:
        self.server.requests.append(format % args)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _cgi(self) -> None:
        url = urlsplit(self.path)
        body = self._body() if self.command == "POST" else b""
        env = _git_env()
        env.update(
            GATEWAY_INTERFACE="CGI/1.1",
            SERVER_PROTOCOL=self.request_version,
            SERVER_SOFTWARE="kdgen-e2e-gitserver",
            SERVER_NAME="127.0.0.1",
            SERVER_PORT=str(self.server.server_port),
            REQUEST_METHOD=self.command,
            PATH_INFO=url.path,
            QUERY_STRING=url.query,
            REMOTE_ADDR=self.client_address[0],
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            GIT_PROJECT_ROOT=str(self.server.root),
            GIT_HTTP_EXPORT_ALL="1",
        )
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        try:
            done = subprocess.run(
                [self.server.backend],
                input=body,
                capture_output=True,
                env=env,
                check=False,
                timeout=_CGI_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            self.send_error(HTTPStatus.GATEWAY_TIMEOUT, "git http-backend timed out")
            return
        if done.stderr:
            self.server.errors.append(done.stderr.decode(errors="replace"))
        head, sep, payload = done.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = done.stdout.partition(b"\n\n")
        if not sep:
            self.send_error(HTTPStatus.BAD_GATEWAY, f"git http-backend exited {done.returncode}")
            return
        status, headers = HTTPStatus.OK.value, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "status":
                status = int(value.split()[0])
            elif name.strip():
                headers.append((name.strip(), value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, backend: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.backend = backend
        self.requests: list[str] = []
        self.errors: list[str] = []


class GitServer:
    """Bare repositories under ``root`` served over smart HTTP on a free 127.0.0.1 port.

    Use it as a context manager, or call ``start`` and ``stop`` (``stop`` is idempotent).
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> GitServer:
        """Listen on a free port of 127.0.0.1 and serve in a daemon thread."""
        if shutil.which("git") is None:
            raise GitServerError("git is not installed")
        self.root.mkdir(parents=True, exist_ok=True)
        self._server = _Server(self.root, _http_backend())
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kdgen-e2e-gitserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise GitServerError("the git server is not running")
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        """The clone URL of repository ``name``."""
        return f"{self.base_url}/{name}.git"

    @property
    def requests(self) -> list[str]:
        """The request log lines so far (method, path, status), for assertions and debugging."""
        return list(self._server.requests) if self._server else []

    @property
    def errors(self) -> list[str]:
        """What ``git http-backend`` wrote to stderr so far."""
        return list(self._server.errors) if self._server else []

    # -- repositories --------------------------------------------------------------------------

    def git_dir(self, name: str) -> Path:
        if not _NAME.fullmatch(name) or name.endswith(".git"):
            raise GitServerError(f"bad repository name {name!r}")
        return self.root / f"{name}.git"

    def create_repo(self, name: str) -> str:
        """Create the empty bare repository ``name`` (branch ``main``); return its URL."""
        git_dir = self.git_dir(name)
        if git_dir.exists():
            raise GitServerError(f"{git_dir} exists")
        _git("init", "--quiet", "--bare", f"--initial-branch={BRANCH}", str(git_dir))
        _git("--git-dir", str(git_dir), "config", "http.receivepack", "false")
        return self.url(name)

    def commit_folder(self, name: str, folder: Path, message: str) -> str:
        """Commit exactly the files under ``folder`` as the next revision of ``main``.

        Files of the previous revision that ``folder`` lacks are deleted; the folder itself is
        not modified (its ``.git``, if any, is ignored by git). Returns the new commit id.
        Commits are allowed to be empty (same content as before), so a test can also force a
        new revision.
        """
        git_dir = self.git_dir(name)
        if not git_dir.is_dir():
            raise GitServerError(f"no repository {name!r} (create_repo first)")
        if not folder.is_dir():
            raise GitServerError(f"{folder} is not a directory")
        env = _git_env()
        env.update(_AUTHOR)
        work = str(folder.resolve())
        base = ["-C", work, "--git-dir", str(git_dir), "--work-tree", work]
        # The bare repository's index is the staging area; `add -A` makes it equal the folder.
        _git(*base, "add", "--all", "--force", ".", env=env)
        number = len(_git("--git-dir", str(git_dir), "rev-list", "--all").split())
        stamp = f"{1_700_000_000 + number} +0000"
        env.update(GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
        _git(*base, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", message, env=env)
        return _git("--git-dir", str(git_dir), "rev-parse", BRANCH).strip()

    def head(self, name: str) -> str:
        """The commit id ``main`` of repository ``name`` points at."""
        return _git("--git-dir", str(self.git_dir(name)), "rev-parse", BRANCH).strip()
