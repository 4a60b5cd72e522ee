"""The two modes: ``run_once`` (one pass, for a CronJob) and ``run_watch`` (a controller).

``run_once`` lists the KDs, observes every party namespace once (``reconcile.observe``), syncs
the KDs through a bounded pool of ``options.workers`` threads (one at a time under
``--dry-run``, so its output is always in the same order), then prunes if asked.

``run_watch`` keeps three kinds of reflector (KDs, Namespaces, Deployments: one cluster-wide
Deployment watch with the ``kd-name`` selector where the rights allow, else one per party
namespace), feeds a work queue of KD names from their events and a periodic resync, and runs
``options.workers`` worker threads that sync one KD each, fenced by leader election when it is
on. It serves ``/healthz``, ``/readyz`` and ``/metrics`` while it runs and stops on SIGTERM or
SIGINT (releasing the Lease).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from kdgen.controller.leaderelection import ElectionOptions, LeaderElector
from kdgen.controller.reconcile import (
    NAMESPACE_OK,
    OUTCOMES,
    KdResult,
    NamespaceState,
    Observation,
    PruneOutcome,
    SyncOptions,
    deployments_by_name,
    name_of,
    observe,
    prune,
    resource,
    state_of,
    sync_kd,
)
from kdgen.controller.reflector import (
    Obj,
    Reflector,
    slim_deployment,
    slim_kd,
    slim_namespace,
)
from kdgen.controller.serving import Metrics, serve_http
from kdgen.controller.workqueue import WorkQueue
from kdgen.errors import ClusterError
from kdgen.model import KD_PLURAL, KIND_KUSCIA_DEPLOYMENT, LABEL_KUSCIA_DEPLOYMENT_NAME
from kdgen.parties import expected_deployments, party_namespaces
from kdgen.status import validate_kd

if TYPE_CHECKING:
    from kdgen.controller.client import Client

log = logging.getLogger(__name__)

HEARTBEAT_LIMIT = 30.0
"""Seconds without a loop turn after which ``/healthz`` fails."""


# --- --once ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncReport:
    """The result of one ``run_once`` pass."""

    kd_namespace: str
    results: tuple[KdResult, ...]
    pruned: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    dry_run: bool = False
    kept: tuple[str, ...] = ()

    @property
    def is_ok(self) -> bool:
        """Every KD synced (or vanished meanwhile) and pruning had no error."""
        good = ("unchanged", "patched", "gone")
        return not self.errors and all(r.outcome in good for r in self.results)

    def summary(self) -> list[str]:
        """Return one line per KD that needs attention, then a count line."""
        lines = [
            f"{KIND_KUSCIA_DEPLOYMENT} {self.kd_namespace}/{r.name}: {r.outcome}: {r.detail}"
            for r in self.results
            if r.outcome in ("problem", "failed")
        ]
        lines.extend(self.errors)
        counts = {o: sum(r.outcome == o for r in self.results) for o in OUTCOMES}
        counted = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
        note = " (dry run: nothing written)" if self.dry_run else ""
        total = len(self.results)
        lines.append(f"status-sync: {total} KusciaDeployments: {counted or 'none'}{note}")
        if self.pruned:
            lines.append(f"status-sync: pruned {len(self.pruned)} objects{note}")
        if self.kept:
            lines.append(
                f"status-sync: kept {len(self.kept)} objects of gone KusciaDeployments that a "
                "GitOps tool or an owner reference manages (--prune-gitops-managed deletes them)"
            )
        return lines


def run_once(client: Client, options: SyncOptions, *, out: TextIO) -> SyncReport:
    """Sync every KD of ``options.kd_namespace`` once, then prune if asked.

    Raises:
        ClusterError: the KDs (or the namespaces) could not be listed at all.
    """
    # The cluster-wide Deployment LIST does not depend on the KDs, so it is sent while the
    # KDs are listed: the two waits on the apiserver overlap (a quarter of an idle pass at
    # 1,000 KDs). Were there no KDs, or only one party namespace, it costs one request more.
    with ThreadPoolExecutor(1, thread_name_prefix="list") as early:
        cluster_wide = early.submit(client.list_deployments, "")
        kds, _ = client.list_kds(options.kd_namespace)
        kds.sort(key=name_of)
        observation = observe(client, kds, options, cluster_wide=lambda: cluster_wide.result())

    def one(kd: dict[str, Any]) -> KdResult:
        return sync_kd(client, kd, observation, options, out=out)

    workers = 1 if options.dry_run else max(1, min(options.workers, len(kds)))
    if workers == 1:
        results = tuple(map(one, kds))
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="sync") as pool:
            results = tuple(pool.map(one, kds))
    pruned = PruneOutcome()
    if options.prune:
        pruned = prune(client, {name_of(kd) for kd in kds}, options, out=out)
    return SyncReport(
        options.kd_namespace,
        results,
        pruned.deleted,
        pruned.errors,
        options.dry_run,
        kept=pruned.kept,
    )


# --- --watch -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """Switches of ``--watch`` only; durations are in seconds (client-go's defaults)."""

    metrics_addr: str = "127.0.0.1:8080"
    leader_election: bool = False
    election: ElectionOptions = field(default_factory=ElectionOptions)
    resync_period: float = 60.0


class WatchController:
    """Watch KDs, Namespaces and party Deployments; sync a KD whenever one of them changes."""

    def __init__(
        self,
        client: Client,
        options: SyncOptions,
        watch_options: WatchOptions,
        *,
        out: TextIO,
        stop: threading.Event,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self._options, self._watch = client, options, watch_options
        self._out, self._stop, self._now = out, stop, monotonic
        self.metrics = Metrics()
        self.queue = WorkQueue(monotonic=monotonic)
        self._lock = threading.Lock()
        self._prune_due = options.prune
        self._heartbeat = monotonic()
        self._by_deployment: dict[tuple[str, str], set[str]] = {}
        self._kd_keys: dict[str, set[tuple[str, str]]] = {}
        self._cluster_wide: Reflector | None = None
        self._per_namespace: dict[str, Reflector] = {}
        namespace = options.kd_namespace
        self.kds = Reflector(
            f"{KD_PLURAL} in namespace {namespace}",
            lambda: client.list_kds(namespace, keep=slim_kd),
            lambda version: client.watch_kds(namespace, version),
            stop=stop,
            on_change=self._kd_changed,
            on_error=self._watch_error,
            transform=slim_kd,
        )
        self.namespaces = Reflector(
            "namespaces",
            client.list_namespaces,
            client.watch_namespaces,
            stop=stop,
            on_change=self._namespace_changed,
            on_state=self._mark_all,
            on_error=self._watch_error,
            transform=slim_namespace,
        )
        self.elector: LeaderElector | None = None
        if watch_options.leader_election:
            self.elector = LeaderElector(
                client,
                watch_options.election,
                on_started=self._leading_started,
                on_stopped=lambda: self.metrics.leader.set(0),
                on_error=lambda exc: self.metrics.errors.labels("lease").inc(),
                monotonic=monotonic,
            )
        else:
            self.metrics.leader.set(1)

    # -- probes --------------------------------------------------------------------------

    def is_healthy(self) -> bool:
        """The loop turned recently and the KD watch thread is alive."""
        recent = self._now() - self._heartbeat < HEARTBEAT_LIMIT
        return recent and self.kds.thread.is_alive()

    def is_ready(self) -> bool:
        """The KD and Namespace caches have listed once."""
        return self.kds.synced.is_set() and (
            self.namespaces.synced.is_set() or self.namespaces.error is not None
        )

    # -- running -------------------------------------------------------------------------

    def run(self) -> None:
        """Run until ``stop`` is set."""
        self._start_deployment_watch()
        self.kds.start()
        self.namespaces.start()
        threads = []
        if self.elector is not None:
            elector = threading.Thread(
                target=self.elector.run, args=(self._stop,), name="leader-election", daemon=True
            )
            elector.start()
            threads.append(elector)
        for index in range(max(1, self._options.workers)):
            worker = threading.Thread(target=self._work, name=f"worker-{index}", daemon=True)
            worker.start()
            threads.append(worker)
        next_resync = self._now() + self._watch.resync_period
        while not self._stop.wait(0.5):
            self._heartbeat = self._now()
            self.metrics.queue_depth.set(len(self.queue))
            if self._heartbeat >= next_resync:
                next_resync = self._heartbeat + self._watch.resync_period
                self._mark_all()
                self._prune_due = self._options.prune
            if self._prune_due and self._may_write() and self.kds.synced.is_set():
                self._prune_due = False
                kd_names = {name_of(kd) for kd in self.kds.items()}
                outcome = prune(self._client, kd_names, self._options, out=self._out)
                for error in outcome.errors:
                    self.metrics.errors.labels("prune").inc()
                    log.warning("%s", error)
        for thread in threads:
            thread.join(timeout=10.0)

    def _work(self) -> None:
        while not self._stop.is_set():
            for name, since in self.queue.take(timeout=0.5, limit=1):
                try:
                    self._sync(name, since)
                except Exception:  # a bug must not kill the worker; the KD is retried
                    log.exception("%s/%s: sync failed", self._options.kd_namespace, name)
                    self.queue.add_failed(name, since=since)
                finally:
                    self.queue.done(name)

    def _start_deployment_watch(self) -> None:
        """One cluster-wide Deployment watch when allowed, else one per party namespace."""
        try:
            self._client.list_deployments("")
        except ClusterError as exc:
            if exc.status in (401, 403):
                log.info("cluster-wide Deployment watch not allowed; watching per namespace")
                return
        self._cluster_wide = Reflector(
            "deployments in all namespaces",
            lambda: self._client.list_deployments("", keep=slim_deployment),
            lambda version: self._client.watch_deployments("", version),
            stop=self._stop,
            on_change=self._deployment_changed,
            on_state=self._mark_all,
            on_error=self._watch_error,
            transform=slim_deployment,
        ).start()

    def _watch_error(self, exc: ClusterError) -> None:
        self.metrics.errors.labels("watch").inc()

    def _may_write(self) -> bool:
        return self.elector is None or self.elector.is_leader()

    def _leading_started(self) -> None:
        self.metrics.leader.set(1)
        self._prune_due = self._options.prune
        self._mark_all()

    def _mark_all(self) -> None:
        for kd in self.kds.items():
            self.queue.add(name_of(kd))

    # -- events --------------------------------------------------------------------------

    def _kd_changed(self, old: Obj | None, new: Obj | None) -> None:
        name = name_of(new or old or {})
        keys = set() if new is None else expected_deployments(new, self._options.partner_domains)
        with self._lock:
            for key in self._kd_keys.pop(name, set()) - keys:
                self._by_deployment.get(key, set()).discard(name)
            for key in keys:
                self._by_deployment.setdefault(key, set()).add(name)
            if keys:
                self._kd_keys[name] = keys
        if new is None:
            self._prune_due = self._options.prune
            return
        self.queue.add(name)

    def _namespace_changed(self, old: Obj | None, new: Obj | None) -> None:
        namespace = name_of(new or old or {})
        for kd in self.kds.items():
            if namespace in party_namespaces(kd, self._options.partner_domains):
                self.queue.add(name_of(kd))

    def _deployment_changed(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old or {}
        metadata = obj.get("metadata") or {}
        key = (str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        owner = str((metadata.get("labels") or {}).get(LABEL_KUSCIA_DEPLOYMENT_NAME, ""))
        with self._lock:
            names = set(self._by_deployment.get(key, ()))
        if owner and self.kds.get((self._options.kd_namespace, owner)) is not None:
            names.add(owner)
        for name in names:
            self.queue.add(name)

    # -- one KD ----------------------------------------------------------------------------

    def _deployments_of(self, namespace: str) -> Reflector:
        # A domain read from its own cluster is watched there, one namespace at a time.
        if self._cluster_wide is not None and namespace not in self._options.remote_domains:
            return self._cluster_wide
        with self._lock:
            reflector = self._per_namespace.get(namespace)
            if reflector is None:
                reflector = Reflector(
                    f"deployments in namespace {namespace}",
                    lambda: self._client.list_deployments(namespace, keep=slim_deployment),
                    lambda version: self._client.watch_deployments(namespace, version),
                    stop=self._stop,
                    on_change=self._deployment_changed,
                    on_state=lambda: self._namespace_changed(None, _named(namespace)),
                    on_error=self._watch_error,
                    transform=slim_deployment,
                ).start()
                self._per_namespace[namespace] = reflector
            return reflector

    def _observation(self, kd: Mapping[str, Any]) -> Observation | None:
        """Return what the caches know for the KD, or None while a cache is still filling."""
        deployments: list[Obj] = []
        states: dict[str, NamespaceState] = {}
        if not self.namespaces.synced.is_set() and self.namespaces.error is None:
            return None  # the namespace watch marks every KD dirty once it has listed
        namespaces_known = self.namespaces.error is None
        partners = self._options.partner_domains
        keys = expected_deployments(kd, partners)
        for namespace in party_namespaces(kd, partners):
            if namespaces_known and self.namespaces.get(("", namespace)) is None:
                states[namespace] = NamespaceState("missing")
                continue
            reflector = self._deployments_of(namespace)
            if reflector.error is not None:
                states[namespace] = state_of(reflector.error)
            elif not reflector.synced.is_set():
                return None  # its on_state marks the KD dirty once listed
            else:
                states[namespace] = NAMESPACE_OK
                for key in keys:
                    if key[0] == namespace:
                        found = reflector.get(key)
                        if found is not None:
                            deployments.append(found)
        # A Deployment without the kd-name label is not watched: read it by name, as Kuscia does.
        unlabelled = deployments_by_name(self._client, keys, deployments, states)
        deployments.extend(slim_deployment(d) for d in unlabelled)
        return Observation(deployments, states)

    def _sync(self, name: str, since: float) -> None:
        if not self._may_write():
            return  # a new leader syncs everything when it takes over
        kd = self.kds.get((self._options.kd_namespace, name))
        if kd is None:
            return
        observation = self._observation(kd) if validate_kd(kd) is None else Observation([], {})
        if observation is None:
            return
        result = sync_kd(
            self._client,
            kd,
            observation,
            self._options,
            out=self._out,
            may_write=self._may_write,
            on_written=self.kds.offer,
        )
        self.metrics.syncs.labels(result.outcome).inc()
        if result.wrote and not self._options.dry_run:
            self.metrics.patches.inc()
            self.metrics.lag.observe(self._now() - since)
        if result.outcome in ("problem", "failed"):
            self.metrics.errors.labels(result.outcome).inc()
            log.warning("%s: %s: %s", resource(kd), result.outcome, result.detail)
        if result.outcome == "failed":
            self.queue.add_failed(name, since=since)
        else:
            self.queue.forget(name)


def _named(name: str) -> Obj:
    return {"metadata": {"name": name}}


def run_watch(
    client: Client, options: SyncOptions, watch_options: WatchOptions, *, out: TextIO
) -> None:
    """Run the watch-mode controller until SIGTERM or SIGINT.

    Raises:
        KdgenError: the metrics address cannot be served.
    """
    stop = threading.Event()
    controller = WatchController(client, options, watch_options, out=out, stop=stop)
    server = None
    if watch_options.metrics_addr:
        server = serve_http(
            watch_options.metrics_addr,
            controller.metrics,
            is_healthy=controller.is_healthy,
            is_ready=controller.is_ready,
        )
        log.info("serving /healthz, /readyz and /metrics on %s:%s", *server.server_address[:2])
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        controller.run()
    finally:
        stop.set()
        if server is not None:
            server.shutdown()
