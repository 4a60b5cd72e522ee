"""Reconcile: observe a KD's party namespaces, compute its status, patch ``/status``; prune.

The pure ``kdgen.status`` decides; this module gathers what it needs and writes the result.
It never writes a KD's ``spec`` or ``metadata``: the patch body carries
``metadata.resourceVersion`` only as a precondition, so a concurrent writer makes the
apiserver answer 409, and the KD is re-read (after a short jittered wait) and recomputed, a
bounded number of times.

Request budget (issue 11, item 1): Deployments are listed once per party namespace (or once
cluster-wide) for all KDs; pods are listed at most once per namespace per pass, and only in a
namespace where some Deployment needs diagnosing, with a ``kd-name in (...)`` selector; a
status patch is sent only when something changed.

A KD that cannot be synced is reported for that KD and the others still sync: a KD Kuscia
would refuse gets ``ValidateFailed``; a missing party namespace gets Kuscia's
``BuildPartyKitInfoFailed`` text; a namespace whose Deployments may not be listed gets
``ListDeploymentsFailed`` (kdgen's own reason: Kuscia's controller can always read).

Every function takes the client (``kdgen.controller.client.Client`` or a fake with the same
methods), the clock (``now``) and the sleep as arguments.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO

from kdgen.controller.clusters import UnobservableDomain
from kdgen.controller.prune import PRUNE_KINDS, plan_prune
from kdgen.controller.prune import selector as prune_selector
from kdgen.errors import ClusterError, Problem
from kdgen.kusciamessages import namespace_not_found
from kdgen.model import (
    KIND_KUSCIA_DEPLOYMENT,
    KUSCIA_CROSS_DOMAIN,
    LABEL_KUSCIA_DEPLOYMENT_NAME,
    Reason,
)
from kdgen.parties import expected_deployments, party_namespaces
from kdgen.status import PodKey, compute_status, diagnosis_targets, status_patch, validate_kd

if TYPE_CHECKING:
    from kdgen.controller.client import Client

log = logging.getLogger(__name__)

REASON_LIST_DEPLOYMENTS_FAILED = "ListDeploymentsFailed"
"""kdgen's reason when a party namespace's Deployments cannot be listed (e.g. 403)."""

PARTNER_NOT_READ = (
    "it is hosted by another cluster that status-sync is not given "
    "(--domain-kubeconfig {domain}=PATH or --domain-context {domain}=NAME)"
)

CONFLICT_BACKOFF = 0.05
"""Seconds before the first re-read after a 409; doubled per conflict, with jitter."""

Outcome = Literal["unchanged", "patched", "problem", "failed", "gone", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("patched", "unchanged", "problem", "failed", "gone", "skipped")


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """Switches shared by both modes.

    Attributes:
        kd_namespace: where the KDs live; also the ``owner_namespace`` label value.
        partner_domains: domains hosted by another cluster that status-sync does not read:
            their parties are reported as not observed (``REASON_PARTNER_NOT_OBSERVED``).
        remote_domains: domains read from their own cluster (``clusters.DomainClients``);
            their parties count as self ones while that cluster can be read.
        dry_run: print the patches (and deletions) as JSON on ``out`` instead of sending them.
        prune: delete Services, ConfigMaps and Deployments labelled for a KD that is gone.
        prune_gitops_managed: let ``prune`` delete objects a GitOps tool manages, too.
        conflict_retries: how often a 409 is answered by re-reading the KD and retrying.
        workers: how many KD patches ``--once`` sends at the same time.
    """

    kd_namespace: str = KUSCIA_CROSS_DOMAIN
    partner_domains: frozenset[str] = frozenset()
    remote_domains: frozenset[str] = frozenset()
    dry_run: bool = False
    prune: bool = False
    prune_gitops_managed: bool = False
    conflict_retries: int = 5
    workers: int = 8


@dataclass(frozen=True, slots=True)
class KdResult:
    """What one KD's sync did; ``wrote`` is true when a patch was sent or printed."""

    name: str
    outcome: Outcome
    detail: str = ""
    wrote: bool = False


@dataclass(frozen=True, slots=True)
class NamespaceState:
    """What reading a party namespace gave: ``ok``, ``missing``, ``forbidden`` or ``error``."""

    kind: Literal["ok", "missing", "forbidden", "error", "unobservable"]
    message: str = ""


NAMESPACE_OK = NamespaceState("ok")


@dataclass(frozen=True, slots=True)
class Observation:
    """The observed Deployments of some party namespaces, and how reading each one went.

    ``pods`` holds pods already listed for diagnosis, per ``(namespace, deployment)``; a
    target missing from it is listed when its KD is synced.
    """

    deployments: Sequence[Mapping[str, Any]]
    namespaces: Mapping[str, NamespaceState]
    pods: Mapping[PodKey, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    by_key: Mapping[PodKey, Mapping[str, Any]] = field(default_factory=dict)
    """``deployments`` by ``(namespace, name)``, when ``index`` built it."""

    def index(self) -> Observation:
        """The same observation with ``by_key`` filled (for many KDs over many Deployments)."""
        by_key = {
            (str(d["metadata"].get("namespace", "")), str(d["metadata"].get("name", ""))): d
            for d in self.deployments
        }
        return Observation(self.deployments, self.namespaces, self.pods, by_key)

    def of(self, kd: Mapping[str, Any], partner_domains: Collection[str]) -> list[Any]:
        """The observed Deployments a KD's status reads: its self parties' (by name)."""
        if not self.by_key:
            return list(self.deployments)
        keys = expected_deployments(kd, partner_domains)
        return [self.by_key[key] for key in sorted(keys) if key in self.by_key]


def utc_now() -> str:
    """Return the current time as Kuscia stores ``lastReconcileTime``: RFC 3339, UTC, seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resource(kd: Mapping[str, Any]) -> str:
    """``KusciaDeployment namespace/name``."""
    metadata = kd.get("metadata") or {}
    return f"{KIND_KUSCIA_DEPLOYMENT} {metadata.get('namespace', '')}/{metadata.get('name', '')}"


def name_of(obj: Mapping[str, Any]) -> str:
    """``metadata.name``."""
    return str((obj.get("metadata") or {}).get("name", ""))


def print_json(out: TextIO, record: Mapping[str, Any]) -> None:
    """Write one dry-run record."""
    out.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
    out.flush()


# --- observing ---------------------------------------------------------------------------


def state_of(exc: ClusterError) -> NamespaceState:
    """How a failed Deployment list counts for its namespace."""
    if isinstance(exc, UnobservableDomain):
        return NamespaceState("unobservable", str(exc))
    if exc.status == 403:
        return NamespaceState("forbidden", str(exc).split(": ", 1)[-1])
    if exc.status == 404:
        return NamespaceState("missing")
    return NamespaceState("error", str(exc))


ClusterWideList = Callable[[], tuple[list[dict[str, Any]], str]]
"""The cluster-wide labelled Deployment LIST, already sent (``run_once`` sends it early)."""


def observe(
    client: Client,
    kds: Iterable[Mapping[str, Any]],
    options: SyncOptions,
    *,
    cluster_wide: ClusterWideList | None = None,
) -> Observation:
    """List the Deployments of every party namespace of ``kds``, and the pods to diagnose.

    One namespace LIST, then one cluster-wide Deployment LIST with the ``kd-name`` selector;
    when that is forbidden, one LIST per party namespace. Pods: at most one LIST per namespace
    (``pods_for``). ``cluster_wide``, when given, is that cluster-wide LIST's outcome (its
    items, or the ``ClusterError`` it raises), used instead of sending it here.
    """
    kds = [kd for kd in kds if validate_kd(kd) is None]
    wanted = sorted(
        {namespace for kd in kds for namespace in party_namespaces(kd, options.partner_domains)}
    )
    if not wanted:
        return Observation([], {})
    existing = _namespace_names(client)
    states: dict[str, NamespaceState] = {}
    present = []
    for namespace in wanted:
        if existing is not None and namespace not in existing:
            states[namespace] = NamespaceState("missing")
        else:
            present.append(namespace)
    deployments = _list_deployments(client, present, states, cluster_wide)
    expected = {key for kd in kds for key in _expected(kd, options)}
    deployments += deployments_by_name(client, expected, deployments, states)
    indexed = Observation(deployments, states).index()
    partners = options.partner_domains
    targets = [
        target
        for kd in kds
        for target in diagnosis_targets(kd, indexed.of(kd, partners), partner_domains=partners)
    ]
    pods = pods_for(client, targets, deployments, what="this pass")
    return Observation(deployments, states, pods, indexed.by_key)


def _expected(kd: Mapping[str, Any], options: SyncOptions) -> set[tuple[str, str]]:
    return expected_deployments(kd, options.partner_domains)


def deployments_by_name(
    client: Client,
    expected: Collection[tuple[str, str]],
    found: Iterable[Mapping[str, Any]],
    states: Mapping[str, NamespaceState],
) -> list[dict[str, Any]]:
    """Read by name each expected Deployment that the ``kd-name``-labelled list did not give.

    Kuscia's controller finds a party's Deployment by name in the party namespace, whatever
    its labels (``refreshPartyDeploymentStatus`` gets ``<deployName>`` from ``<domainID>``),
    so a Deployment made by hand or by an older generator counts too. The labelled list stays
    the cheap common case; a GET is sent only for a Deployment it lacks (one that is really
    gone costs one GET per pass). A failed GET is logged and the Deployment treated as absent.
    """
    have = {
        (str(d["metadata"].get("namespace", "")), str(d["metadata"].get("name", ""))) for d in found
    }
    extra: list[dict[str, Any]] = []
    for namespace, name in sorted(set(expected) - have):
        if states.get(namespace) != NAMESPACE_OK:
            continue
        try:
            deployment = client.get_deployment(namespace, name)
        except ClusterError as exc:
            log.warning("cannot read deployment %s/%s: %s", namespace, name, exc)
            continue
        if deployment is not None:
            extra.append(deployment)
    return extra


def _list_deployments(
    client: Client,
    namespaces: list[str],
    states: dict[str, NamespaceState],
    cluster_wide: ClusterWideList | None = None,
) -> list[dict[str, Any]]:
    """Fill ``states`` for ``namespaces`` and return their labelled Deployments.

    A domain with its own cluster (``clusters.DomainClients.domains``) is listed there, one
    namespace at a time; the others with one cluster-wide list when allowed.
    """
    remote = set(getattr(client, "domains", ()))
    home = [n for n in namespaces if n not in remote]
    deployments = _list_home(client, home, states, cluster_wide)
    return deployments + _list_each(client, [n for n in namespaces if n in remote], states)


def _list_home(
    client: Client,
    namespaces: list[str],
    states: dict[str, NamespaceState],
    cluster_wide: ClusterWideList | None = None,
) -> list[dict[str, Any]]:
    # One namespace is listed on its own, unless the cluster-wide list was sent anyway.
    if namespaces and (len(namespaces) > 1 or cluster_wide is not None):
        try:
            items, _ = cluster_wide() if cluster_wide else client.list_deployments("")
        except ClusterError as exc:
            if exc.status != 403:
                raise
            log.debug("cluster-wide Deployment list forbidden; listing per namespace")
        else:
            wanted = set(namespaces)
            states.update((namespace, NAMESPACE_OK) for namespace in namespaces)
            return [d for d in items if (d.get("metadata") or {}).get("namespace") in wanted]
    return _list_each(client, namespaces, states)


def _list_each(
    client: Client, namespaces: list[str], states: dict[str, NamespaceState]
) -> list[dict[str, Any]]:
    deployments: list[dict[str, Any]] = []
    for namespace in namespaces:
        try:
            items, _ = client.list_deployments(namespace)
        except ClusterError as exc:
            states[namespace] = state_of(exc)
            continue
        deployments.extend(items)
        states[namespace] = NAMESPACE_OK
    return deployments


def _namespace_names(client: Client) -> set[str] | None:
    """Return the namespace names, or ``None`` when they may not be listed (then unchecked)."""
    try:
        items, _ = client.list_namespaces()
    except ClusterError as exc:
        if exc.status == 403:
            log.warning("cannot check that party namespaces exist: %s", exc)
            return None
        raise
    return {name_of(item) for item in items}


def pods_for(
    client: Client,
    targets: Collection[PodKey],
    deployments: Iterable[Mapping[str, Any]],
    *,
    what: str,
) -> dict[PodKey, list[dict[str, Any]]]:
    """List the pods of each target Deployment: one LIST per namespace, filtered here.

    The LIST uses ``kd-name in (...)`` when every target's selector names its ``kd-name``
    (kdgen's and Kuscia's Deployments do), else no selector. A failed list is logged and its
    targets left out, which ``compute_status`` treats as Kuscia does: an empty reason and
    message.
    """
    index = {
        (d["metadata"].get("namespace", ""), d["metadata"].get("name", "")): d for d in deployments
    }
    by_namespace: dict[str, list[tuple[PodKey, Mapping[str, str]]]] = {}
    for key in sorted(set(targets)):
        labels = index[key]["spec"]["selector"]["matchLabels"] or {}
        by_namespace.setdefault(key[0], []).append((key, labels))
    found: dict[PodKey, list[dict[str, Any]]] = {}
    for namespace, wanted in by_namespace.items():
        names = {labels.get(LABEL_KUSCIA_DEPLOYMENT_NAME) for _, labels in wanted}
        selector = ""
        if None not in names:
            selector = f"{LABEL_KUSCIA_DEPLOYMENT_NAME} in ({','.join(sorted(map(str, names)))})"
        try:
            pods = client.list_pods(namespace, selector)
        except ClusterError as exc:
            log.warning("%s: pod diagnostics skipped in namespace %s: %s", what, namespace, exc)
            continue
        for key, labels in wanted:
            found[key] = [pod for pod in pods if _matches(pod, labels)]
    return found


def _matches(pod: Mapping[str, Any], match_labels: Mapping[str, str]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in match_labels.items())


def unobserved_parties(
    kd: Mapping[str, Any], observation: Observation, options: SyncOptions
) -> dict[str, str]:
    """Return each domain of the KD whose Deployments cannot be seen from here, and why.

    In ``spec.parties`` order: a partner with no cluster given, or one whose cluster failed.
    """
    found: dict[str, str] = {}
    for party in (kd.get("spec") or {}).get("parties") or []:
        domain = str((party or {}).get("domainID", ""))
        if domain in found:
            continue
        if domain in options.partner_domains:
            found[domain] = PARTNER_NOT_READ.format(domain=domain)
        elif domain in options.remote_domains:
            state = observation.namespaces.get(domain)
            if state is not None and state.kind == "unobservable":
                found[domain] = state.message
    return found


def namespace_problem(
    kd: Mapping[str, Any],
    observation: Observation,
    options: SyncOptions,
    partners: Collection[str] | None = None,
) -> tuple[Problem | None, str]:
    """Return the problem to write into the KD's status, or a transient error to report.

    The first party namespace (in ``spec.parties`` order) that is missing or unreadable wins,
    as Kuscia's kit building stops at the first failing party. ``partners`` (default: the
    declared ones) are not checked.
    """
    where = resource(kd)
    skipped = options.partner_domains if partners is None else partners
    for domain_id in party_namespaces(kd, skipped):
        state = observation.namespaces.get(domain_id)
        if state is None:
            return None, f"namespace {domain_id} was not observed in this pass"
        if state.kind == "missing":
            reason = Reason.BUILD_PARTY_KIT_INFO_FAILED.value
            return Problem(namespace_not_found(domain_id), resource=where, reason=reason), ""
        if state.kind == "forbidden":
            message = f"failed to list deployments in namespace {domain_id}, {state.message}"
            reason = REASON_LIST_DEPLOYMENTS_FAILED
            return Problem(message, resource=where, reason=reason), ""
        if state.kind == "error":
            return None, state.message
    return None, ""


# --- one KD ------------------------------------------------------------------------------


def sync_kd(
    client: Client,
    kd: Mapping[str, Any],
    observation: Observation,
    options: SyncOptions,
    *,
    out: TextIO,
    may_write: Callable[[], bool] = lambda: True,
    on_written: Callable[[dict[str, Any]], None] = lambda _: None,
    now: Callable[[], str] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> KdResult:
    """Compute one KD's status and patch ``/status`` when something changed.

    A 409 (someone else wrote the KD since it was read) waits ``CONFLICT_BACKOFF * 2**n``
    seconds stretched by up to 100 % at random, re-reads the KD and recomputes, up to
    ``options.conflict_retries`` times. ``may_write`` is asked right before each patch (the
    leader-election fence); ``on_written`` gets the object the apiserver returned.
    """
    metadata = kd.get("metadata") or {}
    name, namespace = str(metadata.get("name", "")), str(metadata.get("namespace", ""))
    pods: Mapping[PodKey, Sequence[Mapping[str, Any]]] = observation.pods
    for attempt in range(options.conflict_retries + 1):
        unobserved = unobserved_parties(kd, observation, options)
        partners = options.partner_domains | set(unobserved)
        observed = observation.of(kd, partners)
        problem = validate_kd(kd)
        if problem is None:
            problem, transient = namespace_problem(kd, observation, options, partners)
            if transient:
                return KdResult(name, "failed", transient)
        if problem is None:
            targets = diagnosis_targets(kd, observed, partner_domains=partners)
            missing = [t for t in targets if t not in pods]
            if missing:
                listed = pods_for(client, missing, observed, what=resource(kd))
                pods = {**pods, **listed}
        new = compute_status(
            kd,
            observed,
            now=now(),
            partner_domains=partners,
            pods={} if problem is not None else pods,
            problem=problem,
            unobserved=unobserved,
        )
        outcome: Outcome = "problem" if problem is not None else "patched"
        detail = str(problem.message) if problem is not None else ""
        patch = status_patch(kd.get("status"), new)
        if patch is None:
            return KdResult(name, "problem" if problem else "unchanged", detail)
        if options.dry_run:
            print_json(out, {"action": "patch-status", "resource": resource(kd), "patch": patch})
            return KdResult(name, outcome, detail, wrote=True)
        if not may_write():
            return KdResult(name, "skipped", "not the leader")
        version = str(metadata.get("resourceVersion", ""))
        body = {"metadata": {"resourceVersion": version}, **patch}
        try:
            written = client.patch_kd_status(namespace, name, body)
        except ClusterError as exc:
            if exc.status == 404:
                return KdResult(name, "gone")
            if exc.status != 409:
                return KdResult(name, "failed", str(exc))
            if attempt == options.conflict_retries:
                break
            log.info("%s: conflict, re-reading: %s", resource(kd), exc)
            sleep(CONFLICT_BACKOFF * 2.0**attempt * (1 + jitter()))
            try:
                kd = client.get_kd(namespace, name)
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


# --- pruning -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PruneOutcome:
    """What a prune pass did: deleted (or would delete), kept as managed, and the errors."""

    deleted: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


def prune(
    client: Client, kd_names: Collection[str], options: SyncOptions, *, out: TextIO
) -> PruneOutcome:
    """Delete the objects labelled for KDs that no longer exist, as Kuscia's clean-up does.

    Kuscia's selector is ``kd-name=<name>,owner_namespace=cross-domain`` (no UID). What may be
    deleted is decided by ``kdgen.controller.prune``: objects a GitOps tool manages are kept
    (unless ``options.prune_gitops_managed``), and nothing is deleted when ``kd_names`` is
    empty but labelled objects exist, or when a listing failed. Before deleting anything for
    a KD name, the KD is read once more, so a KD created since the list keeps its objects.
    """
    labelled: list[tuple[str, dict[str, Any]]] = []
    errors: list[str] = []
    for kind in PRUNE_KINDS:
        try:
            found = client.list_labelled(kind, prune_selector(options.kd_namespace))
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
            record = {"action": "keep", "resource": target.resource, "kd": target.kd}
            print_json(out, {**record, "managedBy": who})
    done: list[str] = []
    gone: dict[str, bool] = {}
    for target in plan.delete:
        if target.kd not in gone:
            gone[target.kd] = not _kd_exists(client, options.kd_namespace, target.kd, errors)
        if not gone[target.kd]:
            continue
        if options.dry_run:
            print_json(out, {"action": "delete", "resource": target.resource, "kd": target.kd})
            done.append(target.resource)
            continue
        try:
            client.delete(target.kind, target.namespace, target.name)
        except ClusterError as exc:
            errors.append(f"prune: {exc}")
            continue
        log.info("pruned %s (KusciaDeployment %s is gone)", target.resource, target.kd)
        done.append(target.resource)
    kept = tuple(target.resource for target, _ in plan.kept)
    return PruneOutcome(tuple(done), kept, tuple(errors))


def _kd_exists(client: Client, namespace: str, name: str, errors: list[str]) -> bool:
    try:
        client.get_kd(namespace, name)
    except ClusterError as exc:
        if exc.status == 404:
            return False
        errors.append(f"prune: {exc}")
    return True
