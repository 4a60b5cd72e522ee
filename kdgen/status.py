"""Compute a KusciaDeployment's ``status`` from observed Deployments, as Kuscia's controller does.

Pure: no I/O, no clock (``now`` is a parameter), no kubernetes or click imports. Level-based:
every call recomputes the status from the KD's stored status plus what the controller observed,
so running it twice on the same inputs gives the same answer.

This ports spec §9 (``refreshPartyDeploymentStatuses``, ``refreshPartyDeploymentStatus``,
``getPodInfoByKd``, ``handleError`` in ``pkg/controllers/kusciadeployment``), quirks included:

- a party's phase comes from ``status.replicas``, not ``spec.replicas``;
- a Deployment with zero replicas is ``Progressing`` forever;
- entries of parties no longer in ``spec.parties`` are never removed;
- ``totalParties`` is set once, to ``len(spec.parties)`` (partners included), and then sticks;
- when neither rollup rule fires, the KD phase is left as it was;
- ``reason``/``message`` are cleared only when the phase *changes* to Available/PartialAvailable.

One deliberate departure: a self party whose Deployment is not found *drops out*. Its entry
is removed and it counts as Progressing with Kuscia's own diagnosis (``kd's deployment: <name>
not found``). Kuscia skips it and keeps the stale entry (§9.1), which is harmless there because
the same reconcile re-creates the Deployment; nothing re-creates it for status-sync, and a kept
entry would report a deleted Deployment as Available for ever.

Where Go iterates a map (random order) this module walks domains and Deployment names in sorted
order, so "the last Progressing entry wins" is deterministic here.

``status_patch`` turns old and new status into a JSON merge patch for ``/status``, or ``None``
when only ``lastReconcileTime`` would change, so an unchanged pass writes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from kdgen.errors import Problem
from kdgen.kusciamessages import initiator_not_a_party, parties_empty
from kdgen.model import KIND_KUSCIA_DEPLOYMENT, Phase, Reason
from kdgen.naming import invalid_service_name_prefix
from kdgen.parties import SelfParty, self_parties

PodKey = tuple[str, str]
"""``(namespace, deployment name)``: the key of observed pods and of diagnosis targets."""

_BENIGN_WAITING_REASONS = frozenset({"PodInitializing", "ContainerCreating"})
_AVAILABLE_PHASES = (Phase.AVAILABLE.value, Phase.PARTIAL_AVAILABLE.value)


def party_status(deployment: Mapping[str, Any], role: str) -> dict[str, Any]:
    """Return the party status entry Kuscia builds from one Deployment.

    Port of ``refreshPartyDeploymentStatus``'s ``curDepStatus``: the four counters and the
    conditions are copied from ``deployment.status`` (``readyReplicas`` is ignored), and the
    phase is Available when ``availableReplicas >= status.replicas`` and more than zero,
    PartialAvailable when some but fewer replicas are available, and Progressing otherwise,
    including when the Deployment has zero replicas.

    >>> party_status({"status": {"replicas": 3, "availableReplicas": 2}}, "")["phase"]
    'PartialAvailable'
    >>> party_status({"status": {}}, "")["phase"]
    'Progressing'
    """
    observed = _mapping(deployment.get("status"))
    counters = {
        field: _int(observed.get(field))
        for field in ("replicas", "updatedReplicas", "availableReplicas", "unavailableReplicas")
    }
    entry: dict[str, Any] = {"phase": _deployment_phase(observed).value}
    if role:
        entry["role"] = role
    entry.update(counters)
    conditions = observed.get("conditions")
    if isinstance(conditions, list) and conditions:
        entry["conditions"] = _copied(conditions)
    created = _mapping(deployment.get("metadata")).get("creationTimestamp")
    if created:
        entry["creationTimestamp"] = created
    return entry


def _deployment_phase(observed: Mapping[str, Any]) -> Phase:
    """The phase of a party entry, from its Deployment's ``status`` (see ``party_status``)."""
    available = _int(observed.get("availableReplicas"))
    if available <= 0:
        return Phase.PROGRESSING
    # Quirk: status.replicas, not spec.replicas; during a surge it exceeds spec.
    is_all = available >= _int(observed.get("replicas"))
    return Phase.AVAILABLE if is_all else Phase.PARTIAL_AVAILABLE


def diagnose_pods(
    deployment_name: str,
    deployment: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]] | None,
) -> tuple[str, str]:
    """Return ``(reason, message)`` explaining why a Deployment's pods are not available.

    Port of ``getPodInfoByKd``. ``deployment`` is ``None`` when it was not found; ``pods`` is
    the list of pods matching its selector, in API order, or ``None`` when listing them failed
    (Kuscia then logs the error and reports an empty reason and message).

    >>> diagnose_pods("web", None, None)
    ("kd's deployment: web not found", "kd's deployment: web not found")
    >>> diagnose_pods("web", {"spec": {"selector": {"matchLabels": {"app": "web"}}}}, [])
    ("kd's pods: web not found", "kd's pods: web not found")
    """
    if deployment is None:
        text = f"kd's deployment: {deployment_name} not found"
        return text, text
    selector = _mapping(_mapping(deployment.get("spec")).get("selector"))
    if selector.get("matchLabels") is None:
        text = f"kd's deployment: {deployment_name} labels selector is nil"
        return text, text
    if pods is None:
        return "", ""
    if not pods:
        text = f"kd's pods: {deployment_name} not found"
        return text, text
    for pod in pods:
        for container in _list(_mapping(pod.get("status")).get("containerStatuses")):
            state = _mapping(_mapping(container).get("state"))
            terminated = state.get("terminated")
            if isinstance(terminated, Mapping):
                return _str(terminated.get("reason")), _str(terminated.get("message"))
            waiting = _mapping(state.get("waiting"))
            reason = _str(waiting.get("reason"))
            if reason and reason not in _BENIGN_WAITING_REASONS:
                return reason, _str(waiting.get("message"))
    return "", ""


def validate_kd(kd: Mapping[str, Any]) -> Problem | None:
    """Return the first reason Kuscia (or a sane reader) would refuse the KD, or ``None``.

    Kuscia's controller ``validate`` checks, in its order and with its messages: parties not
    empty, each non-empty ``serviceNamePrefix`` matching the DNS-label rule, and the initiator
    being a party. Before those, the fields status computation reads must have the right types
    (the CRD guarantees this on a real cluster, but a hand-written CRD might not). Every
    problem carries reason ``ValidateFailed``.

    >>> print(validate_kd({"metadata": {"name": "x"}, "spec": {"parties": []}}))
    KusciaDeployment x: parties can't be empty for kusciaDeployment x [ValidateFailed]
    """
    metadata = _mapping(kd.get("metadata"))
    name = _str(metadata.get("name"))
    namespace = _str(metadata.get("namespace"))
    resource = (
        f"{KIND_KUSCIA_DEPLOYMENT} {namespace}/{name}"
        if namespace
        else f"{KIND_KUSCIA_DEPLOYMENT} {name}"
    )
    spec = kd.get("spec")
    structural = _structural_problem(spec)
    if structural is not None:
        field, message = structural
        return _validate_failed(resource, message, field)
    parties = _parties(kd)
    if not parties:
        return _validate_failed(resource, parties_empty(name))
    for party in parties:
        bad_prefix = invalid_service_name_prefix(_str(party.get("serviceNamePrefix")))
        if bad_prefix is not None:
            return _validate_failed(resource, bad_prefix)  # trailing space included, as Kuscia's
    initiator = _str(_mapping(spec).get("initiator"))
    if initiator not in {_str(party.get("domainID")) for party in parties}:
        return _validate_failed(resource, initiator_not_a_party(name, initiator))
    return None


def diagnosis_targets(
    kd: Mapping[str, Any],
    observed: Iterable[Mapping[str, Any]],
    *,
    partner_domains: Collection[str] = frozenset(),
) -> list[PodKey]:
    """Return the Deployments whose pods ``compute_status`` will inspect, sorted.

    These are the Progressing entries in a self party's namespace whose Deployment was
    observed and has a ``matchLabels`` selector. ``kdgen.controller.reconcile`` lists their
    pods and passes them to ``compute_status`` as ``pods``; everything else is diagnosed
    without pods.
    """
    deployments = _index(observed)
    kits = {kit.key for kit in self_parties(kd, partner_domains)}
    self_domains = {domain_id for domain_id, _ in kits}
    # The entries compute_status would hold (_refreshed_entries), phases only: a self party's
    # found Deployment gives its entry's phase; any other stored entry keeps its own. Only an
    # entry whose Deployment was observed can be diagnosed, so a missing one never counts.
    stored = _mapping(_mapping(kd.get("status")).get("partyDeploymentStatuses"))
    phases = {
        (str(domain_id), str(name)): _phase_of(entry)
        for domain_id, by_name in stored.items()
        if str(domain_id) in self_domains and isinstance(by_name, Mapping)
        for name, entry in by_name.items()
    }
    targets = []
    for key in sorted(kits | set(phases)):
        deployment = deployments.get(key)
        if deployment is None:
            continue
        if key in kits:
            phase = _deployment_phase(_mapping(deployment.get("status"))).value
        else:
            phase = phases[key]
        selector = _mapping(_mapping(deployment.get("spec")).get("selector"))
        if phase == Phase.PROGRESSING.value and selector.get("matchLabels") is not None:
            targets.append(key)
    return targets


REASON_PARTNER_NOT_OBSERVED = "PartnerNotObserved"
"""kdgen's reason while some party's Deployments cannot be seen from here at all.

Kuscia's controller learns a partner's state through its interconnection (spec §10: the
partner cluster fills in a KusciaDeploymentSummary) and until then leaves the phase as it was
(§9.2 step 6), with no reason. status-sync has no interconnection, so it says which partner it
cannot see, and why, instead of staying Progressing without explanation.
"""


def compute_status(
    kd: Mapping[str, Any],
    observed: Iterable[Mapping[str, Any]],
    *,
    now: str,
    partner_domains: Collection[str] = frozenset(),
    pods: Mapping[PodKey, Sequence[Mapping[str, Any]]] | None = None,
    problem: Problem | None = None,
    unobserved: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return the KD's new ``status``, computed as Kuscia's controller would (spec §9).

    Args:
        kd: the KusciaDeployment as read from the API, including its current ``status``.
        observed: Deployments as read from the API (any namespaces, any extra ones). The
            Deployment of party ``(domainID, role)`` is ``<kd>`` or ``<kd>-<role>`` in namespace
            ``<domainID>``, matched by name as Kuscia does.
        now: RFC 3339 UTC time for ``lastReconcileTime``, e.g. ``2023-09-19T08:37:27Z``.
        partner_domains: domains hosted by another cluster: they get no entry refresh and no
            pod diagnostics here. Default: every party is self.
        pods: per ``(namespace, deployment)`` from ``diagnosis_targets``, the pods matching the
            Deployment's selector, in API order. A target missing from the mapping counts as a
            failed pod list: empty reason and message, as Kuscia logs and moves on.
        problem: a failure found before status computation (a bad KD, a missing or unreadable
            namespace). As in Kuscia's ``handleError`` (§9.5) the phase becomes ``Failed`` with
            the problem's reason and message, no entry is refreshed, and the rollup still runs
            over the stored entries, which may turn ``Failed`` into another phase.
        unobserved: domain to why its Deployments cannot be seen (they should be among
            ``partner_domains``). While the KD is not available and nothing else explains it,
            ``reason`` is ``PartnerNotObserved`` and ``message`` names each such party.

    Returns:
        The full status object, with ``lastReconcileTime`` set to ``now``. Empty ``phase``,
        ``reason`` and ``message`` are left out, as Go's ``omitempty`` does.
    """
    deployments = _index(observed)
    stored = _mapping(kd.get("status"))
    kits = [] if problem is not None else self_parties(kd, partner_domains)
    entries, missing = _refreshed_entries(kd, kits, deployments)
    total = _int(stored.get("totalParties"))
    if total == 0:
        # Quirk: set once, counting every party (partners included), and never recomputed.
        total = len(_parties(kd))
    phase = _str(stored.get("phase"))
    reason = _str(stored.get("reason"))
    message = _str(stored.get("message"))
    if problem is not None:
        phase, reason, message = Phase.FAILED.value, problem.reason, _status_message(problem)
    phase_before = phase
    self_domains = {kit.domain_id for kit in kits}
    available = progressing = 0
    has_partial = False
    gone = [(domain_id, name, None) for domain_id, name in missing]
    for domain_id, name, entry in sorted([*_walk(entries), *gone], key=lambda t: t[:2]):
        # A missing self Deployment (entry None) is Progressing: see the module docstring.
        entry_phase = Phase.PROGRESSING.value if entry is None else _phase_of(entry)
        if entry_phase in _AVAILABLE_PHASES:
            available += 1
            has_partial = has_partial or entry_phase == Phase.PARTIAL_AVAILABLE.value
        elif entry_phase == Phase.PROGRESSING.value:
            progressing += 1
            if domain_id in self_domains:
                key = (domain_id, name)
                listed = None if pods is None else pods.get(key)
                pod_reason, message = diagnose_pods(name, deployments.get(key), listed)
                reason = f"domainID: {domain_id}, reason: {pod_reason}" if pod_reason else ""
    if progressing > 0:
        phase = Phase.PROGRESSING.value
    if available == total:
        phase = Phase.PARTIAL_AVAILABLE.value if has_partial else Phase.AVAILABLE.value
    # Otherwise the phase is left as it was: "", Failed, or Progressing.
    if phase != phase_before and phase in _AVAILABLE_PHASES:
        reason = message = ""
    if problem is None and phase not in _AVAILABLE_PHASES:
        if unobserved and reason in ("", REASON_PARTNER_NOT_OBSERVED):
            reason = REASON_PARTNER_NOT_OBSERVED
            message = "; ".join(
                f"party {domain} is not observed: {why}" for domain, why in unobserved.items()
            )
        elif not unobserved and reason == REASON_PARTNER_NOT_OBSERVED:
            reason = message = ""
    return _status_object(phase, reason, message, total, available, entries, now)


def status_patch(
    old_status: Mapping[str, Any] | None, new_status: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Return the JSON merge patch body that turns ``old_status`` into ``new_status``.

    The body is ``{"status": {...}}`` for ``PATCH .../status`` with content type
    ``application/merge-patch+json``. Only differing keys are sent; keys that disappear are
    sent as ``null``; lists are sent whole. ``lastReconcileTime`` is left out of the
    comparison and added only when something else changed.

    Returns:
        The patch body, or ``None`` when nothing but ``lastReconcileTime`` would change.

    >>> status_patch({"phase": "Available", "reason": "x"}, {"phase": "Available"})
    {'status': {'reason': None}}
    >>> status_patch({"phase": "Available", "lastReconcileTime": "a"},
    ...              {"phase": "Available", "lastReconcileTime": "b"}) is None
    True
    """
    old = dict(old_status or {})
    new = dict(new_status)
    old.pop("lastReconcileTime", None)
    reconciled = new.pop("lastReconcileTime", None)
    diff = _merge_diff(old, new)
    if not diff:
        return None
    if reconciled is not None:
        diff["lastReconcileTime"] = reconciled
    return {"status": diff}


# --- internals -----------------------------------------------------------------------------


def _status_object(
    phase: str,
    reason: str,
    message: str,
    total: int,
    available: int,
    entries: dict[str, dict[str, Any]],
    now: str,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    for key, value in (("phase", phase), ("reason", reason), ("message", message)):
        if value:
            status[key] = value
    status["totalParties"] = total
    status["availableParties"] = available
    if entries:
        status["partyDeploymentStatuses"] = entries
    status["lastReconcileTime"] = now
    return status


def _status_message(problem: Problem) -> str:
    """Kuscia's own messages carry no field; kdgen's structural ones name it up front."""
    return f"{problem.field}: {problem.message}" if problem.field else problem.message


def _refreshed_entries(
    kd: Mapping[str, Any],
    kits: Sequence[SelfParty],
    deployments: Mapping[PodKey, Mapping[str, Any]],
) -> tuple[dict[str, dict[str, Any]], list[PodKey]]:
    """Return the stored entries refreshed from the self Deployments, and the missing ones.

    A found Deployment's entry is replaced; a missing one's is removed (with its domain when
    that empties it) and its key returned. Every other entry is kept as stored.
    """
    stored = _mapping(_mapping(kd.get("status")).get("partyDeploymentStatuses"))
    # Entries are copied only where they are kept: a found Deployment's is built anew (copying
    # every stored entry first was about a tenth of an idle 1,000-KD pass in a profile).
    entries = {
        str(domain_id): dict(by_name)
        for domain_id, by_name in stored.items()
        if isinstance(by_name, Mapping)
    }
    replaced: set[PodKey] = set()
    missing = []
    for kit in kits:
        deployment = deployments.get((kit.domain_id, kit.deployment_name))
        if deployment is None:
            missing.append((kit.domain_id, kit.deployment_name))
            by_name = entries.get(kit.domain_id, {})
            by_name.pop(kit.deployment_name, None)
            if not by_name:
                entries.pop(kit.domain_id, None)
            continue
        entries.setdefault(kit.domain_id, {})[kit.deployment_name] = party_status(
            deployment, kit.role
        )
        replaced.add((kit.domain_id, kit.deployment_name))
    for domain_id, by_name in entries.items():
        for name, entry in by_name.items():
            if (domain_id, name) not in replaced:
                by_name[name] = _copied(entry)
    return entries, missing


def _copied(value: Any) -> Any:
    """Copy a value decoded from JSON (dicts, lists, scalars); ``copy.deepcopy`` is slower."""
    if isinstance(value, str | int | float) or value is None:
        return value
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _copied(item) for key, item in value.items()}
    return value


def _index(observed: Iterable[Mapping[str, Any]]) -> dict[PodKey, Mapping[str, Any]]:
    deployments: dict[PodKey, Mapping[str, Any]] = {}
    for deployment in observed:
        metadata = _mapping(deployment.get("metadata"))
        deployments[(_str(metadata.get("namespace")), _str(metadata.get("name")))] = deployment
    return deployments


def _walk(entries: Mapping[str, Mapping[str, Any]]) -> Iterable[tuple[str, str, Any]]:
    for domain_id in sorted(entries):
        by_name = entries[domain_id]
        for name in sorted(by_name):
            yield domain_id, name, by_name[name]


def _phase_of(entry: Any) -> str:
    return _str(entry.get("phase")) if isinstance(entry, Mapping) else ""


def _merge_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    diff: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key in old and old[key] == value:
            continue
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            diff[key] = _merge_diff(before, value)
        else:
            diff[key] = _copied(value)
    return diff


def _parties(kd: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    parties = _mapping(kd.get("spec")).get("parties")
    if not isinstance(parties, list):
        return []
    return [party for party in parties if isinstance(party, Mapping)]


def _structural_problem(spec: Any) -> tuple[str, str] | None:
    if not isinstance(spec, Mapping):
        return "spec", "spec must be an object"
    parties = spec.get("parties")
    if not isinstance(parties, list):
        return "spec.parties", "parties must be a list"
    for index, party in enumerate(parties):
        where = f"spec.parties[{index}]"
        if not isinstance(party, Mapping):
            return where, "party must be an object"
        domain_id = party.get("domainID")
        if not isinstance(domain_id, str) or not domain_id:
            return f"{where}.domainID", "domainID must be a non-empty string"
        for key in ("role", "serviceNamePrefix"):
            if not isinstance(party.get(key, ""), str):
                return f"{where}.{key}", f"{key} must be a string"
    if not isinstance(spec.get("initiator", ""), str):
        return "spec.initiator", "initiator must be a string"
    return None


def _validate_failed(resource: str, message: str, field: str = "") -> Problem:
    return Problem(
        message,
        resource=resource,
        field=field,
        reason=Reason.VALIDATE_FAILED.value,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
