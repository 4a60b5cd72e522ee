"""status-sync: keep every KusciaDeployment's ``status`` true from the live Deployments.

This is the only kdgen module that talks to a cluster. It gathers observed state (KDs,
Deployments, Pods, Namespaces), lets the pure ``kdgen.status`` decide, and sends a JSON merge
patch to the KD's ``/status`` subresource only when something changed. It never writes a KD's
``spec`` or ``metadata``: the patch body carries ``metadata.resourceVersion`` only as a
precondition, so a concurrent writer makes the apiserver answer 409, and the KD is re-read and
recomputed (a bounded number of times).

Two modes:

- ``run_once``: one pass for a CronJob. Deployments are listed once per party namespace with an
  exists-selector on ``kuscia.secretflow/kd-name``, never once per KD.
- ``run_watch``: a long-running controller. It lists and watches KDs, Namespaces and the
  Deployments of every party namespace, resumes its watches after errors, apiserver restarts
  and ``410 Gone``, serves ``/healthz`` and ``/metrics``, and, with leader election on a
  ``coordination.k8s.io/v1`` Lease, writes only while it holds the lease.

A KD that cannot be synced is reported for that KD and the others still sync: a KD Kuscia
would refuse gets ``ValidateFailed``; a missing party namespace gets Kuscia's
``BuildPartyKitInfoFailed`` text; a namespace whose Deployments may not be listed gets
``ListDeploymentsFailed`` (kdgen's own reason: Kuscia's controller can always read). These go
through Kuscia's failure path (spec §9.5), so a rollup over earlier entries can still replace
``Failed``; the pass summary and the error counter report them regardless.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from kdgen.controller.prune import PRUNE_KINDS, plan_prune
from kdgen.controller.prune import selector as prune_selector
from kdgen.errors import ClusterError, KdgenError, Problem
from kdgen.kusciamessages import namespace_not_found
from kdgen.model import (
    KD_PLURAL,
    KIND_KUSCIA_DEPLOYMENT,
    KUSCIA_API_VERSION,
    KUSCIA_CROSS_DOMAIN,
    KUSCIA_GROUP,
    LABEL_KUSCIA_DEPLOYMENT_NAME,
    Reason,
)
from kdgen.parties import expected_deployments, party_namespaces
from kdgen.status import (
    PodKey,
    compute_status,
    diagnosis_targets,
    status_patch,
    validate_kd,
)

log = logging.getLogger(__name__)

REASON_LIST_DEPLOYMENTS_FAILED = "ListDeploymentsFailed"
"""kdgen's reason when a party namespace's Deployments cannot be listed (e.g. 403)."""

FIELD_MANAGER = "kdgen-status-sync"
MERGE_PATCH = "application/merge-patch+json"
KD_VERSION = KUSCIA_API_VERSION.split("/")[1]
LEASE_GROUP, LEASE_VERSION, LEASE_PLURAL = "coordination.k8s.io", "v1", "leases"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

_REQUEST_TIMEOUT = (5.0, 30.0)
_WATCH_SECONDS = 290
_RETRY_MIN, _RETRY_MAX, _RETRY_FORBIDDEN = 0.2, 2.0, 30.0

Outcome = Literal["unchanged", "patched", "problem", "failed", "gone", "skipped"]


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """Switches shared by both modes.

    Attributes:
        kd_namespace: where the KDs live; also the ``owner_namespace`` label value.
        partner_domains: domains hosted by another cluster: not read, not diagnosed.
        dry_run: print the patches (and deletions) as JSON on ``out`` instead of sending them.
        prune: delete Services, ConfigMaps and Deployments labelled for a KD that is gone.
        prune_gitops_managed: let ``prune`` delete objects a GitOps tool manages, too.
        conflict_retries: how often a 409 is answered by re-reading the KD and retrying.
    """

    kd_namespace: str = KUSCIA_CROSS_DOMAIN
    partner_domains: frozenset[str] = frozenset()
    dry_run: bool = False
    prune: bool = False
    prune_gitops_managed: bool = False
    conflict_retries: int = 5


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """Switches of ``--watch`` only; durations are in seconds (client-go's defaults)."""

    metrics_addr: str = "127.0.0.1:8080"
    leader_election: bool = False
    lease_name: str = "kdgen-status-sync"
    lease_namespace: str = ""
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    resync_period: float = 60.0


@dataclass(frozen=True, slots=True)
class KdResult:
    """What one KD's sync did; ``wrote`` is true when a patch was sent or printed."""

    name: str
    outcome: Outcome
    detail: str = ""
    wrote: bool = False


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
        counts = {o: sum(r.outcome == o for r in self.results) for o in _OUTCOME_ORDER}
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


_OUTCOME_ORDER: tuple[Outcome, ...] = (
    "patched",
    "unchanged",
    "problem",
    "failed",
    "gone",
    "skipped",
)


@dataclass(frozen=True, slots=True)
class NamespaceState:
    """What reading a party namespace gave: ``ok``, ``missing``, ``forbidden`` or ``error``."""

    kind: Literal["ok", "missing", "forbidden", "error"]
    message: str = ""


NAMESPACE_OK = NamespaceState("ok")


@dataclass(frozen=True, slots=True)
class Observation:
    """The observed Deployments of some party namespaces, and how reading each one went."""

    deployments: Sequence[Mapping[str, Any]]
    namespaces: Mapping[str, NamespaceState]


# --- connecting ---------------------------------------------------------------------------


def connect(*, kubeconfig: str | None = None, context: str | None = None) -> Cluster:
    """Return a ``Cluster`` configured the way kubectl finds its configuration.

    ``--kubeconfig``, then ``$KUBECONFIG``, then ``~/.kube/config``; without any of them, the
    in-cluster service account.

    Raises:
        ClusterError: no usable configuration.
    """
    configuration = k8s_client.Configuration()
    default = Path("~/.kube/config").expanduser()
    use_file = kubeconfig or context or os.environ.get("KUBECONFIG") or default.exists()
    try:
        if use_file:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        else:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
    except (ConfigException, OSError, ValueError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "in-cluster configuration"
        raise ClusterError(f"cannot load {where}: {exc}") from exc
    configuration.connection_pool_maxsize = 64
    if not configuration.verify_ssl:
        # The kubeconfig asked for insecure-skip-tls-verify; kubectl stays quiet about it too.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return Cluster(k8s_client.ApiClient(configuration))


class Cluster:
    """The API calls status-sync makes, on plain JSON dicts, failing with ``ClusterError``."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client
        self._custom = k8s_client.CustomObjectsApi(api_client)
        self._apps = k8s_client.AppsV1Api(api_client)
        self._core = k8s_client.CoreV1Api(api_client)

    # KusciaDeployments

    def list_kds(self, namespace: str) -> tuple[list[dict[str, Any]], str]:
        """List the KDs of ``namespace``; return them and the list's resourceVersion."""
        what = f"list {KD_PLURAL} in namespace {namespace}"
        body = self._call(
            what,
            self._custom.list_namespaced_custom_object,
            KUSCIA_GROUP,
            KD_VERSION,
            namespace,
            KD_PLURAL,
        )
        return _items_and_version(body)

    def watch_kds(self, namespace: str, resource_version: str) -> Iterator[dict[str, Any]]:
        """Stream watch events of the KDs of ``namespace``."""
        return self._stream(
            f"watch {KD_PLURAL} in namespace {namespace}",
            self._custom.list_namespaced_custom_object,
            resource_version,
            KUSCIA_GROUP,
            KD_VERSION,
            namespace,
            KD_PLURAL,
        )

    def get_kd(self, namespace: str, name: str) -> dict[str, Any]:
        """Read one KD."""
        return self._call(
            f"get {KD_PLURAL} {namespace}/{name}",
            self._custom.get_namespaced_custom_object,
            KUSCIA_GROUP,
            KD_VERSION,
            namespace,
            KD_PLURAL,
            name,
        )

    def patch_kd_status(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send a JSON merge patch to the KD's ``/status`` subresource."""
        return self._call(
            f"patch {KD_PLURAL}/status {namespace}/{name}",
            self._custom.patch_namespaced_custom_object_status,
            KUSCIA_GROUP,
            KD_VERSION,
            namespace,
            KD_PLURAL,
            name,
            body,
            field_manager=FIELD_MANAGER,
            _content_type=MERGE_PATCH,
        )

    # Namespaces, Deployments, Pods

    def list_namespaces(self) -> tuple[list[dict[str, Any]], str]:
        """List all namespaces."""
        return _items_and_version(self._call("list namespaces", self._core.list_namespace))

    def watch_namespaces(self, resource_version: str) -> Iterator[dict[str, Any]]:
        """Stream watch events of namespaces."""
        return self._stream("watch namespaces", self._core.list_namespace, resource_version)

    def list_deployments(self, namespace: str) -> tuple[list[dict[str, Any]], str]:
        """List the Deployments of ``namespace`` that carry a ``kd-name`` label."""
        body = self._call(
            f"list deployments in namespace {namespace}",
            self._apps.list_namespaced_deployment,
            namespace,
            label_selector=LABEL_KUSCIA_DEPLOYMENT_NAME,
        )
        return _items_and_version(body)

    def watch_deployments(self, namespace: str, resource_version: str) -> Iterator[dict[str, Any]]:
        """Stream watch events of the ``kd-name``-labelled Deployments of ``namespace``."""
        return self._stream(
            f"watch deployments in namespace {namespace}",
            self._apps.list_namespaced_deployment,
            resource_version,
            namespace,
            label_selector=LABEL_KUSCIA_DEPLOYMENT_NAME,
        )

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """List the pods of ``namespace`` matching a label selector."""
        body = self._call(
            f"list pods in namespace {namespace}",
            self._core.list_namespaced_pod,
            namespace,
            label_selector=selector,
        )
        return _items_and_version(body)[0]

    # Pruning

    def list_labelled(self, kind: str, selector: str) -> list[dict[str, Any]]:
        """List Services, ConfigMaps or Deployments in all namespaces by label selector."""
        calls = {
            "Service": self._core.list_service_for_all_namespaces,
            "ConfigMap": self._core.list_config_map_for_all_namespaces,
            "Deployment": self._apps.list_deployment_for_all_namespaces,
        }
        body = self._call(f"list {kind} objects", calls[kind], label_selector=selector)
        return _items_and_version(body)[0]

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete one Service, ConfigMap or Deployment; one already gone is fine."""
        calls = {
            "Service": self._core.delete_namespaced_service,
            "ConfigMap": self._core.delete_namespaced_config_map,
            "Deployment": self._apps.delete_namespaced_deployment,
        }
        try:
            self._call(f"delete {kind} {namespace}/{name}", calls[kind], name, namespace)
        except ClusterError as exc:
            if exc.status != 404:
                raise

    # Leases

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Read a Lease, or ``None`` when it does not exist."""
        try:
            return self._call(
                f"get lease {namespace}/{name}",
                self._custom.get_namespaced_custom_object,
                LEASE_GROUP,
                LEASE_VERSION,
                namespace,
                LEASE_PLURAL,
                name,
            )
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a Lease."""
        return self._call(
            f"create lease in namespace {namespace}",
            self._custom.create_namespaced_custom_object,
            LEASE_GROUP,
            LEASE_VERSION,
            namespace,
            LEASE_PLURAL,
            body,
        )

    def replace_lease(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a Lease; its ``metadata.resourceVersion`` makes this compare-and-swap."""
        return self._call(
            f"update lease {namespace}/{name}",
            self._custom.replace_namespaced_custom_object,
            LEASE_GROUP,
            LEASE_VERSION,
            namespace,
            LEASE_PLURAL,
            name,
            body,
        )

    # plumbing

    def _call(
        self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            response = method(
                *args, _preload_content=False, _request_timeout=_REQUEST_TIMEOUT, **kwargs
            )
            data = response.data
        except ApiException as exc:
            raise _api_error(what, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"{what}: {exc}") from exc
        return cast(dict[str, Any], json.loads(data)) if data else {}

    def _stream(
        self,
        what: str,
        method: Callable[..., Any],
        resource_version: str,
        *args: Any,
        **kwargs: Any,
    ) -> Iterator[dict[str, Any]]:
        try:
            response = method(
                *args,
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=resource_version,
                timeout_seconds=_WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=(_REQUEST_TIMEOUT[0], _WATCH_SECONDS + 30),
                **kwargs,
            )
        except ApiException as exc:
            raise _api_error(what, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"{what}: {exc}") from exc
        return _events(what, response)


def _events(what: str, response: Any) -> Iterator[dict[str, Any]]:
    pending = b""
    try:
        for chunk in response.stream(65536, decode_content=True):
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise ClusterError(f"{what}: {exc}") from exc
    finally:
        response.release_conn()


def _api_error(what: str, exc: ApiException) -> ClusterError:
    status = int(exc.status or 0)
    reason = str(exc.reason or "")
    message = f"{status} {reason}".strip()
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        body = json.loads(exc.body or "")
        message = str(body.get("message") or message)
        reason = str(body.get("reason") or reason)
    return ClusterError(f"{what}: {message}", status=status, reason=reason)


def _items_and_version(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    items = body.get("items") or []
    version = str((body.get("metadata") or {}).get("resourceVersion") or "")
    return list(items), version


# --- one KD -------------------------------------------------------------------------------


def namespace_problem(
    kd: Mapping[str, Any], observation: Observation, options: SyncOptions
) -> tuple[Problem | None, str]:
    """Return the problem to write into the KD's status, or a transient error to report.

    The first party namespace (in ``spec.parties`` order) that is missing or unreadable wins,
    as Kuscia's kit building stops at the first failing party.
    """
    resource = _resource(kd)
    for domain_id in party_namespaces(kd, options.partner_domains):
        state = observation.namespaces.get(domain_id)
        if state is None:
            return None, f"namespace {domain_id} was not observed in this pass"
        if state.kind == "missing":
            message = namespace_not_found(domain_id)
            reason = Reason.BUILD_PARTY_KIT_INFO_FAILED.value
            return Problem(message, resource=resource, reason=reason), ""
        if state.kind == "forbidden":
            message = f"failed to list deployments in namespace {domain_id}, {state.message}"
            reason = REASON_LIST_DEPLOYMENTS_FAILED
            return Problem(message, resource=resource, reason=reason), ""
        if state.kind == "error":
            return None, state.message
    return None, ""


def gather_pods(
    cluster: Cluster, kd: Mapping[str, Any], observation: Observation, options: SyncOptions
) -> dict[PodKey, list[dict[str, Any]]]:
    """List the pods of each Deployment ``compute_status`` will diagnose.

    A failed list is logged and left out, which ``compute_status`` treats as Kuscia does: an
    empty reason and message.
    """
    index = {
        (d["metadata"].get("namespace", ""), d["metadata"].get("name", "")): d
        for d in observation.deployments
    }
    pods: dict[PodKey, list[dict[str, Any]]] = {}
    targets = diagnosis_targets(
        kd, observation.deployments, partner_domains=options.partner_domains
    )
    for namespace, name in targets:
        labels = index[(namespace, name)]["spec"]["selector"]["matchLabels"] or {}
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        try:
            pods[(namespace, name)] = cluster.list_pods(namespace, selector)
        except ClusterError as exc:
            log.warning("%s: pod diagnostics skipped: %s", _resource(kd), exc)
    return pods


def sync_kd(
    cluster: Cluster,
    kd: Mapping[str, Any],
    observation: Observation,
    options: SyncOptions,
    *,
    out: TextIO,
    may_write: Callable[[], bool] = lambda: True,
    on_written: Callable[[dict[str, Any]], None] = lambda _: None,
) -> KdResult:
    """Compute one KD's status and patch ``/status`` when something changed.

    A 409 (someone else wrote the KD since it was read) re-reads the KD and recomputes, up to
    ``options.conflict_retries`` times. ``may_write`` is asked right before each patch (the
    leader-election fence); ``on_written`` gets the object the apiserver returned.
    """
    metadata = kd.get("metadata") or {}
    name, namespace = str(metadata.get("name", "")), str(metadata.get("namespace", ""))
    for _ in range(options.conflict_retries + 1):
        problem = validate_kd(kd)
        if problem is None:
            problem, transient = namespace_problem(kd, observation, options)
            if transient:
                return KdResult(name, "failed", transient)
        pods = {} if problem is not None else gather_pods(cluster, kd, observation, options)
        new = compute_status(
            kd,
            observation.deployments,
            now=utc_now(),
            partner_domains=options.partner_domains,
            pods=pods,
            problem=problem,
        )
        outcome: Outcome = "problem" if problem is not None else "patched"
        detail = str(problem.message) if problem is not None else ""
        patch = status_patch(kd.get("status"), new)
        if patch is None:
            return KdResult(name, "problem" if problem else "unchanged", detail)
        if options.dry_run:
            _print_json(out, {"action": "patch-status", "resource": _resource(kd), "patch": patch})
            return KdResult(name, outcome, detail, wrote=True)
        if not may_write():
            return KdResult(name, "skipped", "not the leader")
        version = str(metadata.get("resourceVersion", ""))
        body = {"metadata": {"resourceVersion": version}, **patch}
        try:
            written = cluster.patch_kd_status(namespace, name, body)
        except ClusterError as exc:
            if exc.status == 404:
                return KdResult(name, "gone")
            if exc.status != 409:
                return KdResult(name, "failed", str(exc))
            log.info("%s: conflict, re-reading: %s", _resource(kd), exc)
            try:
                kd = cluster.get_kd(namespace, name)
            except ClusterError as again:
                if again.status == 404:
                    return KdResult(name, "gone")
                return KdResult(name, "failed", str(again))
            metadata = kd.get("metadata") or {}
            continue
        on_written(written)
        return KdResult(name, outcome, detail, wrote=True)
    tries = options.conflict_retries + 1
    return KdResult(name, "failed", f"status changed by another writer {tries} times in a row")


def utc_now() -> str:
    """Return the current time as Kuscia stores ``lastReconcileTime``: RFC 3339, UTC, seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resource(kd: Mapping[str, Any]) -> str:
    metadata = kd.get("metadata") or {}
    return f"{KIND_KUSCIA_DEPLOYMENT} {metadata.get('namespace', '')}/{metadata.get('name', '')}"


def _print_json(out: TextIO, record: Mapping[str, Any]) -> None:
    out.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
    out.flush()


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


# --- --once ---------------------------------------------------------------------------------


def observe(
    cluster: Cluster, kds: Iterable[Mapping[str, Any]], options: SyncOptions
) -> Observation:
    """List the Deployments of every party namespace of ``kds``, once per namespace."""
    wanted = sorted(
        {
            namespace
            for kd in kds
            if validate_kd(kd) is None
            for namespace in party_namespaces(kd, options.partner_domains)
        }
    )
    existing = _namespace_names(cluster) if wanted else set()
    deployments: list[dict[str, Any]] = []
    states: dict[str, NamespaceState] = {}
    for namespace in wanted:
        if existing is not None and namespace not in existing:
            states[namespace] = NamespaceState("missing")
            continue
        try:
            items, _ = cluster.list_deployments(namespace)
        except ClusterError as exc:
            states[namespace] = _state_of(exc)
            continue
        deployments.extend(items)
        states[namespace] = NAMESPACE_OK
    return Observation(deployments, states)


def _namespace_names(cluster: Cluster) -> set[str] | None:
    """Return the namespace names, or ``None`` when they may not be listed (then unchecked)."""
    try:
        items, _ = cluster.list_namespaces()
    except ClusterError as exc:
        if exc.status == 403:
            log.warning("cannot check that party namespaces exist: %s", exc)
            return None
        raise
    return {_name(item) for item in items}


def _state_of(exc: ClusterError) -> NamespaceState:
    if exc.status == 403:
        return NamespaceState("forbidden", str(exc).split(": ", 1)[-1])
    if exc.status == 404:
        return NamespaceState("missing")
    return NamespaceState("error", str(exc))


def run_once(cluster: Cluster, options: SyncOptions, *, out: TextIO) -> SyncReport:
    """Sync every KD of ``options.kd_namespace`` once, then prune if asked.

    Raises:
        ClusterError: the KDs (or the namespaces) could not be listed at all.
    """
    kds, _ = cluster.list_kds(options.kd_namespace)
    kds.sort(key=_name)
    observation = observe(cluster, kds, options)
    results = tuple(sync_kd(cluster, kd, observation, options, out=out) for kd in kds)
    pruned = PruneOutcome()
    if options.prune:
        pruned = prune(cluster, {_name(kd) for kd in kds}, options, out=out)
    return SyncReport(
        options.kd_namespace,
        results,
        pruned.deleted,
        pruned.errors,
        options.dry_run,
        kept=pruned.kept,
    )


@dataclass(frozen=True, slots=True)
class PruneOutcome:
    """What a prune pass did: deleted (or would delete), kept as managed, and the errors."""

    deleted: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


def prune(
    cluster: Cluster, kd_names: set[str], options: SyncOptions, *, out: TextIO
) -> PruneOutcome:
    """Delete the objects labelled for KDs that no longer exist, as Kuscia's clean-up does.

    Kuscia's selector is ``kd-name=<name>,owner_namespace=cross-domain`` (no UID). What may be
    deleted is decided by ``kdgen.controller.prune``: objects a GitOps tool manages are kept
    (unless ``options.prune_gitops_managed``), and nothing is deleted when ``kd_names`` is
    empty but labelled objects exist. Before deleting anything for a KD name, the KD is read
    once more, so a KD created since the list keeps its objects.
    """
    labelled: list[tuple[str, dict[str, Any]]] = []
    errors: list[str] = []
    for kind in PRUNE_KINDS:
        try:
            found = cluster.list_labelled(kind, prune_selector(options.kd_namespace))
        except ClusterError as exc:
            errors.append(f"prune: {exc}")
            continue
        labelled.extend((kind, obj) for obj in found)
    if errors:
        return PruneOutcome(errors=tuple(errors))  # a partial listing must not decide
    plan = plan_prune(
        labelled,
        kd_names,
        kd_namespace=options.kd_namespace,
        include_managed=options.prune_gitops_managed,
    )
    if plan.refused:
        return PruneOutcome(errors=(f"prune: {plan.refused}",))
    for target, who in plan.kept:
        log.info("prune: kept %s (KD %s is gone): managed by %s", target.resource, target.kd, who)
        if options.dry_run:
            _print_json(out, {"action": "keep", "resource": target.resource, "kd": target.kd,
                              "managedBy": who})  # fmt: skip
    done: list[str] = []
    checked: dict[str, bool] = {}
    for target in plan.delete:
        if target.kd not in checked:
            checked[target.kd] = _kd_exists(cluster, options.kd_namespace, target.kd, errors)
        if checked[target.kd]:
            continue
        if options.dry_run:
            _print_json(out, {"action": "delete", "resource": target.resource, "kd": target.kd})
            done.append(target.resource)
            continue
        try:
            cluster.delete(target.kind, target.namespace, target.name)
        except ClusterError as exc:
            errors.append(f"prune: {exc}")
            continue
        log.info("pruned %s (KusciaDeployment %s is gone)", target.resource, target.kd)
        done.append(target.resource)
    kept = tuple(target.resource for target, _ in plan.kept)
    return PruneOutcome(tuple(done), kept, tuple(errors))


def _kd_exists(cluster: Cluster, namespace: str, name: str, errors: list[str]) -> bool:
    try:
        cluster.get_kd(namespace, name)
    except ClusterError as exc:
        if exc.status == 404:
            return False
        errors.append(f"prune: {exc}")
    return True


# --- --watch: metrics and health ------------------------------------------------------------


class Metrics:
    """The Prometheus metrics of one watch-mode process, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.syncs = Counter(
            "kdgen_status_sync_syncs",
            "KusciaDeployment status computations, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.patches = Counter(
            "kdgen_status_sync_patches",
            "Status patches accepted by the apiserver",
            registry=self.registry,
        )
        self.errors = Counter(
            "kdgen_status_sync_errors",
            "Failed API calls and unsyncable KusciaDeployments, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.lag = Histogram(
            "kdgen_status_sync_lag_seconds",
            "Seconds from the watch event that made a KusciaDeployment dirty to its status patch",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        self.leader = Gauge(
            "kdgen_status_sync_leader",
            "1 while this replica may write status",
            registry=self.registry,
        )


def serve_http(address: str, metrics: Metrics, is_healthy: Callable[[], bool]) -> Any:
    """Serve ``/healthz`` and ``/metrics`` on ``host:port`` from a daemon thread.

    Returns the server (``server_address`` holds the bound port, useful with port 0).

    Raises:
        KdgenError: the address is malformed or cannot be bound.
    """
    host, _, port = address.rpartition(":")
    try:
        bound = (host.strip("[]") or "0.0.0.0", int(port))  # ":8080" means all addresses
    except ValueError as exc:
        raise KdgenError(f"--metrics-addr {address!r}: expected host:port") from exc

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                healthy = is_healthy()
                self._reply(200 if healthy else 503, b"ok\n" if healthy else b"unhealthy\n")
            elif self.path == "/metrics":
                self._reply(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            else:
                self._reply(404, b"not found\n")

        def _reply(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    try:
        server = http.server.ThreadingHTTPServer(bound, Handler)
    except OSError as exc:
        raise KdgenError(f"--metrics-addr {address}: {exc}") from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


# --- --watch: caches ------------------------------------------------------------------------

ObjectKey = tuple[str, str]
ChangeHandler = Callable[[dict[str, Any] | None, dict[str, Any] | None], None]


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class Reflector:
    """List one collection, then watch it, keeping a cache; resume after any failure.

    A watch that ends or breaks (timeout, apiserver restart, network) resumes from the last
    resourceVersion seen; ``410 Gone`` (expired) lists again. Changes go to ``on_change(old,
    new)`` (``new`` is ``None`` on delete); a change of readability (now listed, or now
    failing) goes to ``on_state()``.
    """

    def __init__(
        self,
        what: str,
        lister: Callable[[], tuple[list[dict[str, Any]], str]],
        watcher: Callable[[str], Iterator[dict[str, Any]]],
        *,
        on_change: ChangeHandler,
        on_state: Callable[[], None],
        stop: threading.Event,
        metrics: Metrics,
    ) -> None:
        self.what = what
        self.synced = threading.Event()
        self.error: ClusterError | None = None
        self._lister, self._watcher = lister, watcher
        self._on_change, self._on_state = on_change, on_state
        self._stop, self._metrics = stop, metrics
        self._lock = threading.Lock()
        self._cache: dict[ObjectKey, dict[str, Any]] = {}
        self.thread = threading.Thread(target=self._run, name=f"watch {what}", daemon=True)

    def start(self) -> Reflector:
        """Start the list-and-watch thread."""
        self.thread.start()
        return self

    def items(self) -> list[dict[str, Any]]:
        """Return the cached objects."""
        with self._lock:
            return list(self._cache.values())

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        """Return one cached object by ``(namespace, name)``."""
        with self._lock:
            return self._cache.get(key)

    def offer(self, obj: dict[str, Any]) -> None:
        """Cache an object we just wrote, unless the watch already delivered it or a later one."""
        key = _key(obj)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or _newer(obj, cached):
                self._cache[key] = obj

    def _run(self) -> None:
        version = ""
        delay = _RETRY_MIN
        while not self._stop.is_set():
            try:
                if not version:
                    items, version = self._lister()
                    self._replace(items)
                    self._set_error(None)
                for event in self._watcher(version):
                    version = self._apply(event) or version
                    if self._stop.is_set():
                        return
                delay = _RETRY_MIN
            except _Gone:
                log.info("%s: resourceVersion expired, listing again", self.what)
                version = ""
            except ClusterError as exc:
                self._metrics.errors.labels("watch").inc()
                log.warning("%s: %s (retrying in %.1fs)", self.what, exc, delay)
                if exc.status == 410:
                    version = ""
                elif not version or not self.synced.is_set():
                    self._set_error(exc)
                pause = _RETRY_FORBIDDEN if exc.status in (401, 403) else delay
                self._stop.wait(pause)
                delay = min(delay * 2, _RETRY_MAX)

    def _apply(self, event: Mapping[str, Any]) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise ClusterError(f"{self.what}: {obj.get('message')}", status=obj.get("code", 0))
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if kind == "BOOKMARK":
            return version
        key = _key(obj)
        with self._lock:
            old = self._cache.get(key)
            if kind == "DELETED":
                self._cache.pop(key, None)
            else:
                self._cache[key] = obj
        self._on_change(old, None if kind == "DELETED" else obj)
        return version

    def _replace(self, items: list[dict[str, Any]]) -> None:
        fresh = {_key(obj): obj for obj in items}
        with self._lock:
            old, self._cache = self._cache, fresh
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None or _version(before) != _version(obj):
                self._on_change(before, obj)
        for key in old.keys() - fresh.keys():
            self._on_change(old[key], None)

    def _set_error(self, error: ClusterError | None) -> None:
        was = (self.synced.is_set(), self.error is None)
        self.error = error
        if error is None:
            self.synced.set()
        if was != (self.synced.is_set(), self.error is None):
            self._on_state()


def _key(obj: Mapping[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _newer(obj: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """Compare resourceVersions; they are opaque, but etcd's are integers in practice."""
    try:
        return int(_version(obj)) > int(_version(than))
    except ValueError:
        return True


# --- --watch: leader election ---------------------------------------------------------------


class LeaderElector:
    """Hold a ``coordination.k8s.io/v1`` Lease, client-go style, so one replica writes.

    Every ``retry_period`` the elector tries to acquire or renew. Another holder's lease counts
    as expired when its record has not changed, as seen by this process's own clock, for its
    ``leaseDurationSeconds``. A leader that cannot renew for ``renew_deadline`` stops leading
    (before others may take over at ``lease_duration``). On shutdown the leader releases the
    lease so another replica takes over at its next retry.
    """

    def __init__(
        self,
        cluster: Cluster,
        options: WatchOptions,
        *,
        on_started: Callable[[], None],
        on_stopped: Callable[[], None],
        metrics: Metrics,
    ) -> None:
        self._cluster, self._options, self._metrics = cluster, options, metrics
        self._on_started, self._on_stopped = on_started, on_stopped
        self._namespace, self._name = options.lease_namespace, options.lease_name
        self._lock = threading.Lock()
        self._leading = False
        self._renewed_at = 0.0
        self._observed: tuple[Any, ...] = ()
        self._observed_at = 0.0

    def is_leader(self) -> bool:
        """True while this process holds a lease renewed within ``renew_deadline``."""
        with self._lock:
            fresh = time.monotonic() - self._renewed_at < self._options.renew_deadline
            return self._leading and fresh

    def run(self, stop: threading.Event) -> None:
        """Acquire and renew until ``stop`` is set, then release."""
        while not stop.is_set():
            held = self._try_acquire_or_renew()
            now = time.monotonic()
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
            stop.wait(self._options.retry_period)
        if self._leading:
            self._release()

    def _try_acquire_or_renew(self) -> bool | None:
        """Return True when we hold the lease, None when another live holder has it."""
        identity = self._options.identity
        try:
            lease = self._cluster.get_lease(self._namespace, self._name)
            now = _micro_time()
            if lease is None:
                self._cluster.create_lease(self._namespace, self._lease_body(now))
                return True
            spec = dict(lease.get("spec") or {})
            holder = spec.get("holderIdentity") or ""
            record = (holder, spec.get("renewTime"), _version(lease))
            if record != self._observed:
                self._observed, self._observed_at = record, time.monotonic()
            duration = float(spec.get("leaseDurationSeconds") or self._options.lease_duration)
            if holder and holder != identity:
                if time.monotonic() < self._observed_at + duration:
                    return None
            if holder != identity:
                spec["acquireTime"] = now
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec.update(
                holderIdentity=identity,
                leaseDurationSeconds=round(self._options.lease_duration),
                renewTime=now,
            )
            self._cluster.replace_lease(self._namespace, self._name, {**lease, "spec": spec})
            return True
        except ClusterError as exc:
            self._metrics.errors.labels("lease").inc()
            log.info("lease %s/%s: %s", self._namespace, self._name, exc)
            return False

    def _lease_body(self, now: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{LEASE_GROUP}/{LEASE_VERSION}",
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

    def _release(self) -> None:
        with self._lock:
            self._leading = False
        self._on_stopped()
        try:
            lease = self._cluster.get_lease(self._namespace, self._name)
            spec = dict((lease or {}).get("spec") or {})
            if lease is None or spec.get("holderIdentity") != self._options.identity:
                return
            now = _micro_time()
            spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=now)
            self._cluster.replace_lease(self._namespace, self._name, {**lease, "spec": spec})
            log.info("released lease %s/%s", self._namespace, self._name)
        except ClusterError as exc:
            log.warning("could not release lease %s/%s: %s", self._namespace, self._name, exc)


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    """Return ``<hostname>_<random>``, unique per process like client-go's default."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def default_lease_namespace() -> str:
    """Return the pod's namespace in a cluster, else ``default``."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


# --- --watch: the controller ----------------------------------------------------------------


class _DirtyQueue:
    """KD names waiting for a sync, each with when it became dirty and when it is due."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[str, float] = {}
        self._since: dict[str, float] = {}

    def add(self, name: str, *, delay: float = 0.0, since: float | None = None) -> None:
        now = time.monotonic()
        with self._cond:
            due = now + delay
            self._due[name] = min(self._due.get(name, due), due)
            self._since[name] = min(self._since.get(name, now), since or now)
            self._cond.notify()

    def take(self, timeout: float) -> list[tuple[str, float]]:
        """Wait up to ``timeout`` for due names; return them with their dirty-since times."""
        with self._cond:
            deadline = time.monotonic() + timeout
            while True:
                now = time.monotonic()
                ready = sorted(n for n, due in self._due.items() if due <= now)
                if ready or now >= deadline:
                    break
                next_due = min(self._due.values(), default=deadline)
                self._cond.wait(max(0.0, min(deadline, next_due) - now))
            taken = [(name, self._since.pop(name)) for name in ready]
            for name in ready:
                del self._due[name]
            return taken


class WatchController:
    """Watch KDs, Namespaces and party Deployments; sync a KD whenever one of them changes."""

    def __init__(
        self,
        cluster: Cluster,
        options: SyncOptions,
        watch_options: WatchOptions,
        *,
        out: TextIO,
        stop: threading.Event,
    ) -> None:
        self._cluster, self._options, self._watch = cluster, options, watch_options
        self._out, self._stop = out, stop
        self.metrics = Metrics()
        self._queue = _DirtyQueue()
        self._lock = threading.Lock()
        self._deployments: dict[str, Reflector] = {}
        self._prune_due = options.prune
        self._heartbeat = time.monotonic()
        self._retry_delays: dict[str, float] = {}
        namespace = options.kd_namespace
        self._kds = Reflector(
            f"{KD_PLURAL} in namespace {namespace}",
            lambda: cluster.list_kds(namespace),
            lambda version: cluster.watch_kds(namespace, version),
            on_change=self._kd_changed,
            on_state=lambda: None,
            stop=stop,
            metrics=self.metrics,
        )
        self._namespaces = Reflector(
            "namespaces",
            cluster.list_namespaces,
            cluster.watch_namespaces,
            on_change=self._namespace_changed,
            on_state=self._mark_all,
            stop=stop,
            metrics=self.metrics,
        )
        self._elector: LeaderElector | None = None
        if watch_options.leader_election:
            self._elector = LeaderElector(
                cluster,
                watch_options,
                on_started=self._leading_started,
                on_stopped=lambda: self.metrics.leader.set(0),
                metrics=self.metrics,
            )
        else:
            self.metrics.leader.set(1)

    def is_healthy(self) -> bool:
        """The sync loop ran recently and the KD watch thread is alive."""
        recent = time.monotonic() - self._heartbeat < 30.0
        return recent and self._kds.thread.is_alive()

    def run(self) -> None:
        """Run until ``stop`` is set."""
        self._kds.start()
        self._namespaces.start()
        if self._elector is not None:
            threading.Thread(
                target=self._elector.run, args=(self._stop,), name="leader-election", daemon=True
            ).start()
        next_resync = time.monotonic() + self._watch.resync_period
        while not self._stop.is_set():
            self._heartbeat = time.monotonic()
            if self._heartbeat >= next_resync:
                next_resync = self._heartbeat + self._watch.resync_period
                self._mark_all()
                self._prune_due = self._options.prune
            for name, since in self._queue.take(timeout=0.5):
                self._sync(name, since)
            if self._prune_due and self._may_write() and self._kds.synced.is_set():
                self._prune_due = False
                kd_names = {_name(kd) for kd in self._kds.items()}
                outcome = prune(self._cluster, kd_names, self._options, out=self._out)
                for error in outcome.errors:
                    self.metrics.errors.labels("prune").inc()
                    log.warning("%s", error)

    def _may_write(self) -> bool:
        return self._elector is None or self._elector.is_leader()

    def _leading_started(self) -> None:
        self.metrics.leader.set(1)
        self._prune_due = self._options.prune
        self._mark_all()

    def _mark_all(self) -> None:
        for kd in self._kds.items():
            self._queue.add(_name(kd))

    def _kd_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if new is None:
            self._prune_due = self._options.prune
            return
        self._queue.add(_name(new))

    def _namespace_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        namespace = _name(new or old or {})
        for kd in self._kds.items():
            if namespace in party_namespaces(kd, self._options.partner_domains):
                self._queue.add(_name(kd))

    def _deployment_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        obj = new or old or {}
        key = _key(obj)
        owner = str(
            ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_KUSCIA_DEPLOYMENT_NAME, "")
        )
        for kd in self._kds.items():
            partners = self._options.partner_domains
            if _name(kd) == owner or key in expected_deployments(kd, partners):
                self._queue.add(_name(kd))

    def _namespace_state_changed(self, namespace: str) -> Callable[[], None]:
        return lambda: self._namespace_changed(None, {"metadata": {"name": namespace}})

    def _reflector(self, namespace: str) -> Reflector:
        with self._lock:
            reflector = self._deployments.get(namespace)
            if reflector is None:
                reflector = Reflector(
                    f"deployments in namespace {namespace}",
                    lambda: self._cluster.list_deployments(namespace),
                    lambda version: self._cluster.watch_deployments(namespace, version),
                    on_change=self._deployment_changed,
                    on_state=self._namespace_state_changed(namespace),
                    stop=self._stop,
                    metrics=self.metrics,
                ).start()
                self._deployments[namespace] = reflector
            return reflector

    def _observation(self, kd: Mapping[str, Any]) -> Observation | None:
        """Return what the caches know for the KD, or None while a cache is still filling."""
        deployments: list[dict[str, Any]] = []
        states: dict[str, NamespaceState] = {}
        if not self._namespaces.synced.is_set() and self._namespaces.error is None:
            return None  # the namespace watch marks every KD dirty once it has listed
        namespaces_known = self._namespaces.error is None
        for namespace in party_namespaces(kd, self._options.partner_domains):
            if namespaces_known and self._namespaces.get(("", namespace)) is None:
                states[namespace] = NamespaceState("missing")
                continue
            reflector = self._reflector(namespace)
            if reflector.error is not None:
                states[namespace] = _state_of(reflector.error)
            elif not reflector.synced.is_set():
                return None  # its on_state marks the KD dirty once listed
            else:
                states[namespace] = NAMESPACE_OK
                deployments.extend(reflector.items())
        return Observation(deployments, states)

    def _sync(self, name: str, since: float) -> None:
        if not self._may_write():
            return  # a new leader syncs everything when it takes over
        kd = self._kds.get((self._options.kd_namespace, name))
        if kd is None:
            return
        observation = self._observation(kd) if validate_kd(kd) is None else Observation([], {})
        if observation is None:
            return
        result = sync_kd(
            self._cluster,
            kd,
            observation,
            self._options,
            out=self._out,
            may_write=self._may_write,
            on_written=self._kds.offer,
        )
        self.metrics.syncs.labels(result.outcome).inc()
        if result.wrote and not self._options.dry_run:
            self.metrics.patches.inc()
            self.metrics.lag.observe(time.monotonic() - since)
        if result.outcome in ("problem", "failed"):
            self.metrics.errors.labels(result.outcome).inc()
            log.warning("%s: %s: %s", _resource(kd), result.outcome, result.detail)
        if result.outcome == "failed":
            delay = min(self._retry_delays.get(name, 0.5) * 2, 30.0)
            self._retry_delays[name] = delay
            self._queue.add(name, delay=delay, since=since)
        else:
            self._retry_delays.pop(name, None)


def run_watch(
    cluster: Cluster, options: SyncOptions, watch_options: WatchOptions, *, out: TextIO
) -> None:
    """Run the watch-mode controller until SIGTERM or SIGINT.

    Raises:
        KdgenError: the metrics address cannot be served.
    """
    stop = threading.Event()
    controller = WatchController(cluster, options, watch_options, out=out, stop=stop)
    server = None
    if watch_options.metrics_addr:
        server = serve_http(watch_options.metrics_addr, controller.metrics, controller.is_healthy)
        log.info("serving /healthz and /metrics on %s:%s", *server.server_address[:2])
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        controller.run()
    finally:
        stop.set()
        if server is not None:
            server.shutdown()
    # Give the elector its chance to release the lease (it wakes on ``stop``).
    for thread in threading.enumerate():
        if thread.name == "leader-election":
            thread.join(timeout=5.0)
