"""Turn a live export (``kubectl get kd,appimage -o yaml``) into clean source files.

Pure: sources in, ``(file name, object)`` pairs and problems out. A user moving from Kuscia's
controller to GitOps exports the KDs and AppImages of a running cluster; the export holds what
only the apiserver and the controller may set. ``import_live_export``:

- reads every document, and every item of a ``List`` (``kubectl get`` of several objects, or
  ``KusciaDeploymentList``/``AppImageList`` from the API), keeping KusciaDeployments and
  AppImages and warning about anything else;
- cleans each one with ``sourceobjects.source_objects``, the same cleaning kdgen applies to
  the KDs and AppImages it emits (status, server-set metadata, tool annotations; AppImages lose
  their namespace);
- keeps what the objects need: every annotation Kuscia's controller wrote (``allocated-ports``
  above all, whose numbers the running pods use, and the §8 ones, so a controller that still
  runs has nothing to change), and the KD's ``metadata.uid``, moved into kdgen's
  ``kdgen.kuscia.secretflow/kd-uid`` annotation: the uid is in every object's ``kd-uid`` label
  and in each Deployment's immutable selector, but the apiserver owns ``metadata.uid`` and a
  source that sets it cannot be applied to a cluster where the KD does not exist yet.

A KD that already has the annotation keeps it (it records what the objects were made with; a
KD re-created by GitOps has a new ``metadata.uid``), with a warning when the two differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kdgen.errors import InputError, Problem
from kdgen.load import Document, Source
from kdgen.model import (
    ANNOTATION_KDGEN_KD_UID,
    KIND_APP_IMAGE,
    KIND_KUSCIA_DEPLOYMENT,
    KUSCIA_API_VERSION,
    Manifest,
)
from kdgen.sourceobjects import source_objects
from kdgen.yamlio import read_documents

_TOP_ORDER = ("apiVersion", "kind", "metadata", "spec")
_METADATA_ORDER = ("name", "namespace", "labels", "annotations")


@dataclass(frozen=True, slots=True)
class Imported:
    """The clean source files of an export.

    Attributes:
        files: file name (``kusciadeployment-<name>.yaml``, ``appimage-<name>.yaml``) to the
            object it holds, AppImages first, each kind in name order.
        problems: warnings (skipped documents, a KD without uid) and errors (a name given
            twice, an object without a name).
    """

    files: Mapping[str, Manifest]
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    document: Document
    field: str
    """Where the object sits in its document: ``""``, or ``items[<i>]`` inside a List."""

    def problem(self, field: str, message: str, **extra: Any) -> Problem:
        path = ".".join(p for p in (self.field, field) if p)
        return self.document.problem(path, message, **extra)


def import_live_export(sources: Sequence[Source]) -> Imported:
    """Clean every KD and AppImage of ``sources`` into the source file it should be.

    Raises:
        InputError: a source is not valid YAML (every such source at once).
    """
    entries, problems = _entries(sources)
    kds = [e for e in entries if e.document.kind == KIND_KUSCIA_DEPLOYMENT]
    images = [e for e in entries if e.document.kind == KIND_APP_IMAGE]
    files: dict[str, Manifest] = {}
    owners: dict[str, _Entry] = {}
    cleaned = source_objects([e.document for e in images], [e.document for e in kds], {})
    for entry, obj in zip([*images, *kds], cleaned, strict=True):
        if entry.document.kind == KIND_KUSCIA_DEPLOYMENT:
            obj = _with_uid_annotation(entry, obj, problems)
        name = entry.document.name
        if not name:
            problems.append(entry.problem("metadata.name", "the object has no name"))
            continue
        file = f"{entry.document.kind.lower()}-{name}.yaml"
        if file in owners:
            earlier = owners[file].document
            problems.append(
                entry.problem(
                    "metadata.name",
                    f"{entry.document.kind} {name!r} is exported twice (also "
                    f"{earlier.source}#{earlier.index}); keep one",
                )
            )
            continue
        owners[file] = entry
        files[file] = _ordered(obj)
    return Imported(dict(sorted(files.items(), key=_file_order)), tuple(problems))


def _file_order(item: tuple[str, Manifest]) -> tuple[int, str]:
    return (0 if item[0].startswith("appimage-") else 1, item[0])


def _entries(sources: Sequence[Source]) -> tuple[list[_Entry], list[Problem]]:
    entries: list[_Entry] = []
    problems: list[Problem] = []
    unreadable: list[Problem] = []
    for source in sources:
        try:
            documents = read_documents(source.text, source.name)
        except InputError as err:
            unreadable.extend(err.problems)
            continue
        for index, body in documents:
            for field, item in _items(body):
                entry = _Entry(
                    Document(source.name, index, item if isinstance(item, dict) else {}), field
                )
                if not isinstance(item, dict):
                    problems.append(entry.problem("", "not a mapping; skipped", severity="warning"))
                elif (item.get("apiVersion"), item.get("kind")) in _KEPT:
                    entries.append(entry)
                else:
                    problems.append(
                        entry.problem(
                            "",
                            f"not a {KUSCIA_API_VERSION} {KIND_KUSCIA_DEPLOYMENT} or "
                            f"{KIND_APP_IMAGE}; skipped (kdgen makes the other objects)",
                            severity="warning",
                        )
                    )
    if unreadable:
        raise InputError(unreadable)
    return entries, problems


_KEPT = {(KUSCIA_API_VERSION, KIND_KUSCIA_DEPLOYMENT), (KUSCIA_API_VERSION, KIND_APP_IMAGE)}


def _items(body: Any) -> Iterable[tuple[str, Any]]:
    """Yield each object of a document: the document, or the items of a List."""
    if (
        isinstance(body, dict)
        and str(body.get("kind", "")).endswith("List")
        and isinstance(body.get("items"), list)
    ):
        for i, item in enumerate(body["items"]):
            yield f"items[{i}]", item
    else:
        yield "", body


def _with_uid_annotation(entry: _Entry, obj: Manifest, problems: list[Problem]) -> Manifest:
    """Record the live KD's ``metadata.uid`` in kdgen's ``kd-uid`` annotation."""
    metadata = entry.document.body.get("metadata") or {}
    uid = str(metadata.get("uid") or "")
    annotations = metadata.get("annotations") or {}
    pinned = str(annotations.get(ANNOTATION_KDGEN_KD_UID, ""))
    if pinned and uid and pinned != uid:
        problems.append(
            entry.problem(
                "metadata.uid",
                f"metadata.uid {uid!r} differs from the {ANNOTATION_KDGEN_KD_UID} annotation "
                f"{pinned!r}, kept because the existing objects' labels and selectors carry it",
                severity="warning",
            )
        )
    value = pinned or uid
    if not value:
        problems.append(
            entry.problem(
                "metadata.uid",
                "no metadata.uid: the kd-uid labels will use kdgen's stand-in, not the uid in "
                "the labels and selectors of the objects Kuscia made (export the KD from the "
                "cluster, or set the uid in the Inventory)",
                severity="warning",
            )
        )
        return obj
    out_metadata = dict(obj.get("metadata") or {})
    out_metadata["annotations"] = {
        **(out_metadata.get("annotations") or {}),
        ANNOTATION_KDGEN_KD_UID: value,
    }
    return {**obj, "metadata": out_metadata}


def _ordered(obj: Manifest) -> Manifest:
    """Put the keys in the order people write them (kubectl prints them sorted)."""
    out = _reorder(obj, _TOP_ORDER)
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = _reorder(out["metadata"], _METADATA_ORDER)
    return out


def _reorder(mapping: Mapping[str, Any], first: Sequence[str]) -> dict[str, Any]:
    out = {key: mapping[key] for key in first if key in mapping}
    out.update((key, value) for key, value in mapping.items() if key not in out)
    return out
