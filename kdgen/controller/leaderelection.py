"""Leader election on a ``coordination.k8s.io/v1`` Lease, client-go style, with write fencing.

Every ``retry_period`` the elector tries to acquire or renew the Lease (a compare-and-swap
through ``metadata.resourceVersion``). Another holder's lease counts as expired when its
record (holder, renewTime, resourceVersion) has not changed, as seen by *this* process's own
clock, for its ``leaseDurationSeconds``: clocks of different machines are never compared. A
leader that could not renew for ``renew_deadline`` stops leading, before another replica may
take over at ``lease_duration``; ``is_leader`` is the fence every write asks right before it is
sent. On shutdown the leader releases the lease (empty holder, 1 s duration) so another replica
takes over at its next retry.

The client is anything with ``get_lease``/``create_lease``/``replace_lease`` (the real
``Client`` or a fake); time comes from an injected ``monotonic`` and ``wall`` clock.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from kdgen.errors import ClusterError

log = logging.getLogger(__name__)

LEASE_API_VERSION = "coordination.k8s.io/v1"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class LeaseClient(Protocol):
    """The three Lease calls the elector makes."""

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None: ...  # noqa: D102
    def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...  # noqa: D102
    def replace_lease(  # noqa: D102
        self, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ElectionOptions:
    """The Lease and its timings, in seconds (client-go's defaults)."""

    lease_name: str = "kdgen-status-sync"
    lease_namespace: str = "default"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def micro_time(wall: Callable[[], datetime]) -> str:
    """A Lease ``MicroTime``: RFC 3339 in UTC with microseconds."""
    return wall().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    """Acquire, renew and release one Lease; tell writers whether they may write."""

    def __init__(
        self,
        client: LeaseClient,
        options: ElectionOptions,
        *,
        on_started: Callable[[], None] = lambda: None,
        on_stopped: Callable[[], None] = lambda: None,
        on_error: Callable[[ClusterError], None] = lambda exc: None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._client, self._options = client, options
        self._on_started, self._on_stopped, self._on_error = on_started, on_stopped, on_error
        self._now, self._wall = monotonic, wall
        self._namespace, self._name = options.lease_namespace, options.lease_name
        self._lock = threading.Lock()
        self._leading = False
        self._renewed_at = float("-inf")
        self._observed: tuple[Any, ...] = ()
        self._observed_at = 0.0

    def is_leader(self) -> bool:
        """True while this process holds a lease renewed within ``renew_deadline``."""
        with self._lock:
            fresh = self._now() - self._renewed_at < self._options.renew_deadline
            return self._leading and fresh

    def run(self, stop: threading.Event) -> None:
        """Acquire and renew until ``stop`` is set, then release."""
        while not stop.is_set():
            self.step()
            stop.wait(self._options.retry_period)
        self.release()

    def step(self) -> None:
        """One try to acquire or renew, and the leading/stopped transitions it causes."""
        held = self._try_acquire_or_renew()
        now = self._now()
        with self._lock:
            if held:
                self._renewed_at = now
            started = held is True and not self._leading
            stopped = self._leading and (
                held is None or now - self._renewed_at >= self._options.renew_deadline
            )
            self._leading = (self._leading or started) and not stopped
        if started:
            log.info("became leader (lease %s/%s)", self._namespace, self._name)
            self._on_started()
        if stopped:
            log.warning("stopped leading (lease %s/%s)", self._namespace, self._name)
            self._on_stopped()

    def _try_acquire_or_renew(self) -> bool | None:
        """Return True when we hold the lease, None when another live holder has it."""
        identity = self._options.identity
        try:
            lease = self._client.get_lease(self._namespace, self._name)
            now = micro_time(self._wall)
            if lease is None:
                self._client.create_lease(self._namespace, self._lease_body(now))
                return True
            spec = dict(lease.get("spec") or {})
            holder = spec.get("holderIdentity") or ""
            version = (lease.get("metadata") or {}).get("resourceVersion", "")
            record = (holder, spec.get("renewTime"), version)
            if record != self._observed:
                self._observed, self._observed_at = record, self._now()
            duration = float(spec.get("leaseDurationSeconds") or self._options.lease_duration)
            if holder and holder != identity and self._now() < self._observed_at + duration:
                return None
            if holder != identity:
                spec["acquireTime"] = now
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec.update(
                holderIdentity=identity,
                leaseDurationSeconds=round(self._options.lease_duration),
                renewTime=now,
            )
            self._client.replace_lease(self._namespace, self._name, {**lease, "spec": spec})
            return True
        except ClusterError as exc:
            self._on_error(exc)
            log.info("lease %s/%s: %s", self._namespace, self._name, exc)
            return False

    def _lease_body(self, now: str) -> dict[str, Any]:
        return {
            "apiVersion": LEASE_API_VERSION,
            "kind": "Lease",
            "metadata": {"name": self._name, "namespace": self._namespace},
            "spec": {
                "holderIdentity": self._options.identity,
                "leaseDurationSeconds": round(self._options.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }

    def release(self) -> None:
        """Stop leading and, if we still hold the lease, hand it over at once."""
        with self._lock:
            was_leading, self._leading = self._leading, False
        if not was_leading:
            return
        self._on_stopped()
        try:
            lease = self._client.get_lease(self._namespace, self._name)
            spec = dict((lease or {}).get("spec") or {})
            if lease is None or spec.get("holderIdentity") != self._options.identity:
                return
            spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=micro_time(self._wall))
            self._client.replace_lease(self._namespace, self._name, {**lease, "spec": spec})
            log.info("released lease %s/%s", self._namespace, self._name)
        except ClusterError as exc:
            log.warning("could not release lease %s/%s: %s", self._namespace, self._name, exc)


def default_identity() -> str:
    """Return ``<hostname>_<random>``, unique per process like client-go's default."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def default_lease_namespace() -> str:
    """Return the pod's namespace in a cluster, else ``default``."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"
