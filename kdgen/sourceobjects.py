"""The KusciaDeployments and AppImages themselves, as kdgen emits them beside their objects.

Pure. A GitOps engine applies what kdgen prints, so the loop *commit KD, the engine applies it,
status-sync writes its status, ``kubectl get kd`` shows it* needs the KD and the AppImages it
names in the output too. They are emitted as written, less what only a server or a tool in
between may set:

- ``status`` and the server-set metadata (``uid``, ``resourceVersion``, ``generation``,
  ``creationTimestamp``, ``managedFields``, ...): a live export carries them, and an apply that
  names them fails (``resourceVersion``) or claims fields that are not the user's;
- ``ownerReferences`` and ``finalizers``: they name objects and controllers of the cluster an
  export came from; in a GitOps cluster nothing removes a KD's finalizer, so a delete would hang;
- annotations that tools add while passing documents along (kubectl's last-applied
  configuration, kustomize's and kpt's ``config.kubernetes.io/*``) and kdgen's own plugin
  settings (``kdgen.kuscia.secretflow/*``), which configure a run, not the KD. One of kdgen's
  is kept: ``kdgen.kuscia.secretflow/kd-uid`` (``kdgen import`` writes it) records the uid in
  the objects' labels and immutable selectors, so a later export of a KD the engine
  re-created (with a new ``metadata.uid``) still says which uid they carry.

A KD without a namespace gets ``cross-domain``, the only namespace Kuscia reconciles (and the
one ``validate`` accepts); an AppImage, cluster-scoped, loses any namespace it was written with,
as the apiserver would drop it. Under ``--ports allocated`` the KD carries the numbers kdgen gave in
Kuscia's ``kuscia.secretflow/allocated-ports`` annotation (spec §15 row 19), so a Kuscia
controller that later reconciles it reuses them instead of allocating others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kdgen.load import Document
from kdgen.model import (
    ANNOTATION_ALLOCATED_PORTS,
    ANNOTATION_KDGEN_KD_UID,
    KIND_APP_IMAGE,
    KIND_KUSCIA_DEPLOYMENT,
    KUSCIA_CROSS_DOMAIN,
    Manifest,
)

SOURCE_KINDS = (KIND_APP_IMAGE, KIND_KUSCIA_DEPLOYMENT)
"""The input kinds kdgen emits back, in output order."""

SERVER_SET_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "ownerReferences",
    "finalizers",
)
"""Metadata fields a live object carries that a source file must not."""

TOOL_ANNOTATION_PREFIXES = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "config.kubernetes.io/",
    "internal.config.kubernetes.io/",
    "config.k8s.io/",
    "kustomize.config.k8s.io/",
    "kdgen.kuscia.secretflow/",
)
"""Annotations added by the tools a document passes through, or read by kdgen as settings."""


def clean_source(body: Mapping[str, Any]) -> Manifest:
    """Return ``body`` as a source file should hold it: no status, no server- or tool-set fields.

    Key order is kept, so the result is as stable as the input. ``body`` is not changed.

    >>> clean_source({"apiVersion": "v", "kind": "K", "status": {},
    ...               "metadata": {"name": "a", "uid": "1", "annotations": {
    ...                   "kdgen.kuscia.secretflow/ports": "allocated"}}})
    {'apiVersion': 'v', 'kind': 'K', 'metadata': {'name': 'a'}}
    """
    cleaned: Manifest = {key: value for key, value in body.items() if key != "status"}
    metadata = body.get("metadata")
    if not isinstance(metadata, Mapping):
        return cleaned
    kept = {k: v for k, v in metadata.items() if k not in SERVER_SET_METADATA}
    annotations = kept.pop("annotations", None)
    if isinstance(annotations, Mapping):
        annotations = {
            k: v
            for k, v in annotations.items()
            if k == ANNOTATION_KDGEN_KD_UID or not str(k).startswith(TOOL_ANNOTATION_PREFIXES)
        }
    if annotations:
        kept["annotations"] = annotations
    cleaned["metadata"] = kept
    return cleaned


def source_objects(
    app_images: Iterable[Document],
    kusciadeployments: Iterable[Document],
    allocated_ports: Mapping[str, str],
) -> list[Manifest]:
    """Return the AppImages and KDs to emit, cleaned, KDs in ``cross-domain``.

    Args:
        app_images: the AppImage documents as read (not defaulted).
        kusciadeployments: the KD documents as read (not defaulted).
        allocated_ports: per KD name, the allocated-ports annotation to record (empty unless
            the ports were allocated).
    """
    objects = [_cluster_scoped(clean_source(doc.body)) for doc in app_images]
    for doc in kusciadeployments:
        kd = clean_source(doc.body)
        metadata = _with_namespace(kd.get("metadata") or {}, KUSCIA_CROSS_DOMAIN)
        pinned = allocated_ports.get(doc.name)
        if pinned is not None:
            metadata["annotations"] = {
                **(metadata.get("annotations") or {}),
                ANNOTATION_ALLOCATED_PORTS: pinned,
            }
        kd["metadata"] = metadata
        objects.append(kd)
    return objects


def _cluster_scoped(obj: Manifest) -> Manifest:
    """Return ``obj`` without ``metadata.namespace``: the apiserver stores none for it."""
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping) and "namespace" in metadata:
        obj["metadata"] = {k: v for k, v in metadata.items() if k != "namespace"}
    return obj


def _with_namespace(metadata: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """Return ``metadata`` with ``namespace`` after ``name`` when it has none."""
    if metadata.get("namespace"):
        return dict(metadata)
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if key != "namespace":
            out[key] = value
        if key == "name":
            out["namespace"] = namespace
    out.setdefault("namespace", namespace)
    return out
