"""Which labelled objects ``--prune`` may delete: never a GitOps tool's, never on an empty list.

Kuscia's clean-up deletes the Services, ConfigMaps and Deployments labelled
``kd-name=<kd>,owner_namespace=<kd namespace>`` once their KD is gone. In a GitOps cluster those
objects are applied (and pruned) by Argo CD or Flux; deleting them here would only make the
GitOps tool re-create them, for ever. So an object counts as *managed*, and is kept unless the
caller asks for it explicitly, when it carries:

- Argo CD's tracking label ``app.kubernetes.io/instance`` or annotation
  ``argocd.argoproj.io/tracking-id`` (Argo CD's label and annotation tracking methods);
- any ``kustomize.toolkit.fluxcd.io/*`` label (what Flux's kustomize-controller sets);
- any owner reference (status-sync never sets one, so someone else owns the object).

And when the KD list is empty but labelled objects exist, nothing is deleted: an empty list
far more often means the wrong context or namespace than that every KD was removed.

Pure: the caller lists the objects and the KDs, this module decides.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kdgen.model import KIND_KUSCIA_DEPLOYMENT, LABEL_KUSCIA_DEPLOYMENT_NAME, LABEL_OWNER_NAMESPACE

ARGOCD_TRACKING_LABEL = "app.kubernetes.io/instance"
ARGOCD_TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
FLUX_LABEL_PREFIX = "kustomize.toolkit.fluxcd.io/"

PRUNE_KINDS = ("Service", "Deployment", "ConfigMap")
"""The kinds Kuscia's clean-up deletes, in its order."""


@dataclass(frozen=True, slots=True)
class Target:
    """One labelled object: its kind, namespace, name and the KD its label names."""

    kd: str
    kind: str
    namespace: str
    name: str

    @property
    def resource(self) -> str:
        """``Kind namespace/name``, as status-sync prints objects."""
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """What a prune pass should do.

    Attributes:
        delete: objects of vanished KDs, by KD, then in Kuscia's kind order, namespace, name.
        kept: managed objects of vanished KDs, each with who manages it.
        refused: when not empty, why nothing at all may be deleted (then ``delete`` is empty).
    """

    delete: tuple[Target, ...] = ()
    kept: tuple[tuple[Target, str], ...] = ()
    refused: str = ""


def selector(kd_namespace: str) -> str:
    """The label selector of every object labelled for a KD of ``kd_namespace``.

    >>> selector("cross-domain")
    'kuscia.secretflow/owner_namespace=cross-domain,kuscia.secretflow/kd-name'
    """
    return f"{LABEL_OWNER_NAMESPACE}={kd_namespace},{LABEL_KUSCIA_DEPLOYMENT_NAME}"


def manager(obj: Mapping[str, Any]) -> str | None:
    """Return who manages ``obj`` (for the log line), or ``None`` when nobody visible does.

    >>> manager({"metadata": {"labels": {"app.kubernetes.io/instance": "demo"}}})
    'Argo CD (label app.kubernetes.io/instance=demo)'
    >>> manager({"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "r"}]}})
    'an owner reference (ReplicaSet r)'
    >>> manager({"metadata": {"labels": {"kuscia.secretflow/kd-name": "x"}}}) is None
    True
    """
    metadata = _mapping(obj.get("metadata"))
    labels = _mapping(metadata.get("labels"))
    annotations = _mapping(metadata.get("annotations"))
    if ARGOCD_TRACKING_LABEL in labels:
        return f"Argo CD (label {ARGOCD_TRACKING_LABEL}={labels[ARGOCD_TRACKING_LABEL]})"
    if ARGOCD_TRACKING_ANNOTATION in annotations:
        return f"Argo CD (annotation {ARGOCD_TRACKING_ANNOTATION})"
    flux = sorted(key for key in labels if str(key).startswith(FLUX_LABEL_PREFIX))
    if flux:
        return f"Flux (label {flux[0]}={labels[flux[0]]})"
    owners = metadata.get("ownerReferences")
    if isinstance(owners, list) and owners:
        first = _mapping(owners[0])
        return f"an owner reference ({first.get('kind', '')} {first.get('name', '')})"
    return None


def plan_prune(
    labelled: Iterable[tuple[str, Mapping[str, Any]]],
    kd_names: Collection[str],
    *,
    kd_namespace: str,
    include_managed: bool = False,
) -> PrunePlan:
    """Decide what to delete among ``labelled`` ``(kind, object)`` pairs.

    Args:
        labelled: every object the prune selector matched, with its kind.
        kd_names: the names of the KDs that exist in ``kd_namespace``.
        kd_namespace: where the KDs live (for the refusal message).
        include_managed: delete GitOps-managed and owned objects too (``--prune-gitops-managed``).

    >>> obj = {"metadata": {"name": "a", "namespace": "alice",
    ...                     "labels": {"kuscia.secretflow/kd-name": "gone"}}}
    >>> plan_prune([("Service", obj)], {"live"}, kd_namespace="cd").delete
    (Target(kd='gone', kind='Service', namespace='alice', name='a'),)
    >>> print(plan_prune([("Service", obj)], (), kd_namespace="cd").refused)  # doctest: +ELLIPSIS
    refusing to prune: no KusciaDeployment in namespace cd, but 1 object is labelled for one ...
    """
    found = [(_target(kind, obj), obj) for kind, obj in labelled]
    if found and not kd_names:
        count = len(found)
        noun = "object is" if count == 1 else "objects are"
        kinds = ",".join(kind.lower() for kind in PRUNE_KINDS)
        return PrunePlan(
            refused=(
                f"refusing to prune: no {KIND_KUSCIA_DEPLOYMENT} in namespace {kd_namespace}, "
                f"but {count} {noun} labelled for one (wrong context or --kd-namespace?); if "
                f"every KD really is gone, delete them with: kubectl delete {kinds} "
                f"--all-namespaces -l {selector(kd_namespace)}"
            )
        )
    delete: list[Target] = []
    kept: list[tuple[Target, str]] = []
    for target, obj in found:
        if target.kd in kd_names:
            continue
        who = manager(obj)
        if who is not None and not include_managed:
            kept.append((target, who))
        else:
            delete.append(target)
    return PrunePlan(
        tuple(sorted(delete, key=_order)), tuple(sorted(kept, key=lambda k: _order(k[0])))
    )


def _order(target: Target) -> tuple[str, int, str, str]:
    rank = PRUNE_KINDS.index(target.kind) if target.kind in PRUNE_KINDS else len(PRUNE_KINDS)
    return target.kd, rank, target.namespace, target.name


def _target(kind: str, obj: Mapping[str, Any]) -> Target:
    metadata = _mapping(obj.get("metadata"))
    labels = _mapping(metadata.get("labels"))
    return Target(
        kd=str(labels.get(LABEL_KUSCIA_DEPLOYMENT_NAME, "")),
        kind=kind,
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
