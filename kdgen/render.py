"""Order and serialise manifests: the stream, the per-domain tree, and the golden diff.

Pure. The sources (AppImages, then KusciaDeployments) come first; then objects are sorted by
namespace, then kind (ConfigMap, Service, Deployment: what a pod needs exists before the pod),
then name, so the output never depends on input order. The tree for ``--output-dir`` is
returned as ``{relative path: text}``; writing it is the CLI's job.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kdgen.model import KUSCIA_CROSS_DOMAIN, Manifest
from kdgen.sourceobjects import SOURCE_KINDS
from kdgen.yamlio import dump_document, dump_documents, iter_documents

KIND_RANK = {"Namespace": 0, "ConfigMap": 1, "Service": 2, "Deployment": 3}
SOURCES_FOLDER = KUSCIA_CROSS_DOMAIN
"""Tree folder of the KDs (their namespace) and of the cluster-scoped AppImages they name."""
KUSTOMIZATION = "kustomization.yaml"
MARKER = ".kdgen"
"""File kdgen leaves in an output tree, listing the files it wrote there: only those may a later
run replace or remove."""
_MARKER_HEAD = (
    "# This folder is written by `kdgen generate --output-dir`; edits are overwritten.\n"
    "# kdgen replaces or removes only the files listed below, one a line.\n"
)


def marker_text(names: Iterable[str]) -> str:
    r"""Return the marker's content, recording ``names`` (paths relative to the tree).

    >>> print(marker_text(["kustomization.yaml", "alice/kustomization.yaml"]), end="")
    # This folder is written by `kdgen generate --output-dir`; edits are overwritten.
    # kdgen replaces or removes only the files listed below, one a line.
    alice/kustomization.yaml
    kustomization.yaml
    """
    return _MARKER_HEAD + "".join(f"{name}\n" for name in sorted(set(names)))


def recorded_files(text: str) -> list[str]:
    """Return the names a marker records (lines that are not comments or blank)."""
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def sort_key(obj: Manifest) -> tuple[int, str, int, str, str]:
    """Return the position of ``obj`` in the output."""
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind", ""))
    if kind in SOURCE_KINDS:
        return (0, "", SOURCE_KINDS.index(kind), str(meta.get("namespace", "")), str(meta["name"]))
    return (
        1,
        str(meta.get("namespace", "")),
        KIND_RANK.get(kind, len(KIND_RANK)),
        kind,
        str(meta.get("name", "")),
    )


def sort_manifests(objects: Iterable[Manifest]) -> list[Manifest]:
    """Return the objects in output order."""
    return sorted(objects, key=sort_key)


def render_stream(objects: Iterable[Manifest]) -> str:
    """Return the objects as one multi-document YAML stream."""
    return dump_documents(objects)


def iter_stream(objects: Iterable[Manifest]) -> Iterator[str]:
    """Yield the stream of ``render_stream`` one object at a time (the same bytes in all)."""
    return iter_documents(objects)


def file_name(obj: Manifest) -> str:
    """Return the file an object gets in the tree: ``<kind>-<name>.yaml``, lower case.

    >>> file_name({"kind": "ConfigMap", "metadata": {"name": "a-configtemplate"}})
    'configmap-a-configtemplate.yaml'
    """
    return f"{str(obj['kind']).lower()}-{obj['metadata']['name']}.yaml"


def folder(obj: Manifest) -> str:
    """Return the tree folder of ``obj``: its namespace; the sources folder if it has none.

    >>> folder({"kind": "AppImage", "metadata": {"name": "img"}})
    'cross-domain'
    """
    return str((obj.get("metadata") or {}).get("namespace") or SOURCES_FOLDER)


def tree_path(obj: Manifest) -> str:
    """Return the path of ``obj`` in an output tree: ``<folder>/<kind>-<name>.yaml``."""
    return f"{folder(obj)}/{file_name(obj)}"


def render_tree(objects: Iterable[Manifest]) -> dict[str, str]:
    """Return the files of an output tree: one folder per namespace, each a kustomization.

    Every domain folder holds one file per object and a ``kustomization.yaml`` listing them,
    so an Argo CD Application or a Flux Kustomization can point at the folder; the KDs and
    AppImages go to ``cross-domain/``, listed first, so the CRDs' objects can be applied (and
    health-checked) apart from the workloads. The top folder has a ``kustomization.yaml``
    listing every folder, for tools that take one path.
    """
    files: dict[str, str] = {}
    by_folder: dict[str, list[str]] = {}
    for obj in sort_manifests(objects):
        name = file_name(obj)
        files[tree_path(obj)] = dump_document(obj)
        by_folder.setdefault(folder(obj), []).append(name)
    for name, names in by_folder.items():
        files[f"{name}/{KUSTOMIZATION}"] = _kustomization(names)
    top = sorted(by_folder, key=lambda name: (name != SOURCES_FOLDER, name))
    files[KUSTOMIZATION] = _kustomization(top)
    files[MARKER] = marker_text(files)
    return dict(sorted(files.items()))


def _kustomization(resources: list[str]) -> str:
    body: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    return dump_document(body)


def unified_diff(expected: str, actual: str, *, name: str) -> str:
    r"""Return a unified diff from the committed text to the regenerated one ("" if equal).

    >>> unified_diff("a\n", "a\n", name="x")
    ''
    >>> print(unified_diff("a\n", "b\n", name="x"), end="")
    --- x (committed)
    +++ x (generated)
    @@ -1 +1 @@
    -a
    +b
    """
    import difflib  # only check shows diffs; generate's start-up does not pay for it

    lines = difflib.unified_diff(
        expected.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        fromfile=f"{name} (committed)",
        tofile=f"{name} (generated)",
    )
    return "".join(lines)


def tree_diff(expected: Mapping[str, str], actual: Mapping[str, str]) -> str:
    """Return the diff of two trees, file by file, in path order ("" if equal)."""
    return "".join(
        unified_diff(expected.get(path, ""), actual.get(path, ""), name=path)
        for path in sorted(set(expected) | set(actual))
    )
