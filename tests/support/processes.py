"""Long-running helper processes of the e2e tests (GitOps controllers, status-sync --watch).

Each ``Process`` runs in its own session (process group) with its output in one log file, and
``stop`` ends exactly that group: SIGTERM, then SIGKILL after a grace period. The group cannot
outlive the test run either: the child asks the kernel for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``), and every started process is stopped at interpreter exit.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

__all__ = ["Process", "ProcessError", "free_ports", "wait_until"]

_PR_SET_PDEATHSIG: Final = 1
_RUNNING: set[Process] = set()


class ProcessError(RuntimeError):
    """A helper process exited early or did not become ready."""


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that were free on 127.0.0.1 a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Process:
    """One helper process: command line, environment, log file; ``start`` and ``stop``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_file: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> Process:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        _RUNNING.add(self)
        return self

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def exited(self) -> int | None:
        """The exit code once the process has ended; ``None`` while it runs or before start."""
        return None if self._popen is None else self._popen.poll()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 15.0) -> int | None:
        """End the process group (SIGTERM, SIGKILL after ``grace`` s); return the exit code."""
        popen = self._popen
        if popen is None:
            return None
        try:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(popen.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    popen.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # The leader is gone; end anything it left behind in its group.
            try:
                os.killpg(popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return popen.returncode
        finally:
            _RUNNING.discard(self)


def wait_until(
    what: str,
    ready: Callable[[], bool],
    timeout: float,
    watched: Sequence[Process] = (),
    interval: float = 0.5,
) -> None:
    """Poll ``ready`` until true; fail at once if a watched process exited."""
    deadline = time.monotonic() + timeout
    while True:
        for p in watched:
            if not p.running():
                raise ProcessError(f"{p.name} exited while waiting for {what}:\n{p.log_tail()}")
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ProcessError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@atexit.register
def _stop_all() -> None:
    for p in list(_RUNNING):
        p.stop(grace=5.0)
