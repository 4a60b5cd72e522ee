"""KRM function: a ``ResourceList`` on stdin, a ``ResourceList`` on stdout (the KRM functions spec).

The same function runs under ``kustomize build --enable-alpha-plugins --enable-exec`` (as a
generator: ``items`` holds only the function config) and under ``kpt fn eval --exec`` /
``kpt fn render`` (``items`` holds the package). It reads its inputs from three places, in this
order:

- ``functionConfig.spec.files``: files or directories, relative to the working directory,
  which kustomize sets to the kustomization directory (kpt leaves it where kpt was started);
  each must resolve inside the checkout holding that directory (or inside the directory when
  it is in none), symbolic links followed (``kdgen.confine``, like kustomize's load
  restrictor), or the function fails naming the entry;
- ``functionConfig.spec.inline``: KusciaDeployment, AppImage and Inventory documents;
- ``items`` of those three kinds (a kpt package holding its KDs and AppImages).

``functionConfig`` is a ``kdgen.kuscia.secretflow/v1alpha1`` ``KusciaDeploymentGenerator``
(``spec.profile``, ``spec.ports``, ``spec.includeSources``, ``spec.files``, ``spec.inline``), or
a ``ConfigMap`` with ``data.profile``, ``data.ports``, ``data.includeSources`` and
``data.files`` (comma-separated), which is what ``kpt fn eval -- profile=plain`` passes; it may
also be absent.

Output ``items``: every input item, in order, except items labelled
``kuscia.secretflow/controller: KusciaDeployment`` (objects made from a KD: an earlier run's
output, replaced so ``kpt fn render`` is idempotent and a removed KD's objects go away),
followed by the generated objects in ``kdgen generate`` order: with ``includeSources`` (the
default), first the KDs and AppImages read from ``files`` and ``inline`` (those that came as
items are already among the kept items), then the objects made from them. Input items are kept
because kpt deletes the file of any item a function drops. Each generated object carries
``internal.config.kubernetes.io/path: <folder>/<kind>-<name>.yaml``, the layout of
``kdgen generate --output-dir``, so kpt writes it to a stable file; kustomize removes that
annotation from its output.

Problems become ``results[]`` (``severity``, ``message``, ``resourceRef``, ``field.path``,
``file.path``/``file.index`` when the document came from a file, ``tags.reason``), with exit
status 1 when any is an error; the input items are then returned unchanged. The same problems
also go to stderr in the CLI's form, because ``kustomize build`` shows a function's stderr but
not its results.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdgen import limits
from kdgen.adapters import Outcome, read_options
from kdgen.confine import checkout_root
from kdgen.errors import InputError, KdgenError, Problem, escape_controls, problem_lines
from kdgen.expand import expand
from kdgen.load import Source, parse_sources
from kdgen.model import (
    CONTROLLER_KUSCIA_DEPLOYMENT,
    INVENTORY_API_VERSION,
    KIND_APP_IMAGE,
    KIND_INVENTORY,
    KIND_KUSCIA_DEPLOYMENT,
    KUSCIA_API_VERSION,
    KUSCIA_CROSS_DOMAIN,
    LABEL_CONTROLLER,
    Manifest,
    Options,
)
from kdgen.render import tree_path
from kdgen.sources import read_sources
from kdgen.yamlio import dump_document, dump_documents, read_documents

RESOURCE_LIST_API_VERSION = "config.kubernetes.io/v1"
RESOURCE_LIST_KIND = "ResourceList"
FUNCTION_API_VERSION = INVENTORY_API_VERSION
FUNCTION_KIND = "KusciaDeploymentGenerator"
FUNCTION_CONFIG = "<functionConfig>"
INLINE_SOURCE = "<functionConfig spec.inline>"
ITEMS_SOURCE = "<items>"
PATH_ANNOTATION = "internal.config.kubernetes.io/path"
INDEX_ANNOTATION = "internal.config.kubernetes.io/index"
_LEGACY_PATH_ANNOTATION = "config.kubernetes.io/path"
_LEGACY_INDEX_ANNOTATION = "config.kubernetes.io/index"
_ORCHESTRATOR_PREFIXES = (
    "internal.config.kubernetes.io/",
    "config.kubernetes.io/",
    "config.k8s.io/",
    "kustomize.config.k8s.io/",
)
_INPUT_KINDS = {
    (KUSCIA_API_VERSION, KIND_KUSCIA_DEPLOYMENT),
    (KUSCIA_API_VERSION, KIND_APP_IMAGE),
    (INVENTORY_API_VERSION, KIND_INVENTORY),
}
_API_VERSIONS = {kind: api_version for api_version, kind in _INPUT_KINDS}
_SPEC_FIELDS = ("profile", "ports", "includeSources", "files", "inline")
_CONFIGMAP_FIELDS = ("profile", "ports", "includeSources", "files")


@dataclass(frozen=True, slots=True)
class _Config:
    options: Options = field(default_factory=Options)
    files: tuple[str, ...] = ()
    files_field: str = "spec.files"
    inline: tuple[Any, ...] = ()


def process(text: str) -> Outcome:
    """Run the function on one serialized ``ResourceList``.

    Args:
        text: the ``ResourceList`` the orchestrator wrote on stdin (YAML or JSON).

    Returns:
        The output ``ResourceList`` on stdout, problems on stderr too, and exit status 1 if any
        problem is an error.
    """
    items: list[Any] = []
    try:
        resource_list = _resource_list(text)
        items = _items(resource_list)
        config = _function_config(resource_list.get("functionConfig"))
        sources = [
            *read_sources(
                config.files,
                stdin=io.StringIO(),
                root=checkout_root(Path.cwd()),
                parameters=[f"{config.files_field}[{i}]" for i in range(len(config.files))],
                origin=FUNCTION_CONFIG,
            ),
            *_inline_sources(config.inline),
            *_item_sources(items),
        ]
        expansion = expand(parse_sources(sources), config.options)
    except KdgenError as err:
        return _outcome(items, getattr(err, "problems", ()), exit_code=1)
    kept = [item for item in items if not _made_from_kd(item)]
    present = {_identity(item) for item in kept if isinstance(item, dict)}
    generated = [_with_path(obj) for obj in expansion.objects if _identity(obj) not in present]
    return _outcome([*kept, *generated], expansion.warnings, exit_code=0)


def _resource_list(text: str) -> dict[str, Any]:
    documents = read_documents(text, "<stdin>")
    body = documents[0][1] if len(documents) == 1 else None
    if not isinstance(body, dict) or (body.get("apiVersion"), body.get("kind")) != (
        RESOURCE_LIST_API_VERSION,
        RESOURCE_LIST_KIND,
    ):
        raise InputError(
            [
                Problem(
                    f"standard input must be one {RESOURCE_LIST_API_VERSION} "
                    f"{RESOURCE_LIST_KIND} document",
                    source="<stdin>",
                )
            ]
        )
    return body


def _items(resource_list: dict[str, Any]) -> list[Any]:
    items = resource_list.get("items") or []
    if not isinstance(items, list):
        raise InputError([Problem("items must be a list", source="<stdin>", field="items")])
    return items


def _function_config(body: Any) -> _Config:
    """Read the options and inputs out of the function config (absent means defaults)."""
    if not body:
        return _Config()
    key = (body.get("apiVersion"), body.get("kind")) if isinstance(body, dict) else None
    if key == (FUNCTION_API_VERSION, FUNCTION_KIND):
        return _from_spec(body.get("spec") or {}, "spec")
    if key == ("v1", "ConfigMap"):
        data = body.get("data") or {}
        files = str(data.get("files") or "") if isinstance(data, dict) else ""
        spec = {**(data if isinstance(data, dict) else {}), "files": _comma_list(files)}
        return _from_spec(spec, "data", allowed=_CONFIGMAP_FIELDS)
    raise _config_error(
        "", f"functionConfig must be a {FUNCTION_API_VERSION} {FUNCTION_KIND} or a v1 ConfigMap"
    )


def _from_spec(spec: Any, at: str, allowed: Sequence[str] = _SPEC_FIELDS) -> _Config:
    if not isinstance(spec, dict):
        raise _config_error(at, "must be a mapping")
    problems = [
        _config_problem(f"{at}.{name}", f"unknown field; expected one of {', '.join(allowed)}")
        for name in spec
        if name not in allowed
    ]
    files, inline = spec.get("files") or [], spec.get("inline") or []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        problems.append(_config_problem(f"{at}.files", "must be a list of paths"))
    if not isinstance(inline, list):
        problems.append(_config_problem(f"{at}.inline", "must be a list of documents"))
    options = Options()
    try:
        options = read_options(
            spec.get("profile"),
            spec.get("ports"),
            spec.get("includeSources"),
            at=lambda name: _config_problem(f"{at}.{name}", ""),
        )
    except InputError as err:
        problems.extend(err.problems)
    if problems:
        raise InputError(problems)
    return _Config(
        options=options, files=tuple(files), files_field=f"{at}.files", inline=tuple(inline)
    )


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _config_problem(path: str, message: str) -> Problem:
    return Problem(message, source=FUNCTION_CONFIG, field=path)


def _config_error(path: str, message: str) -> InputError:
    return InputError([_config_problem(path, message)])


def _inline_sources(documents: Sequence[Any]) -> list[Source]:
    return [Source(INLINE_SOURCE, dump_documents(documents))] if documents else []


def _item_sources(items: Sequence[Any]) -> list[Source]:
    """Turn the input-kind items back into Sources, one per file the orchestrator read.

    Each document is put at its position in its file (the orchestrator's ``index``
    annotation, or its position among the items when there is no file), so problems name the
    same file and document number an editor shows.
    """
    by_file: dict[str, dict[int, Any]] = {}
    for position, item in enumerate(items):
        if not isinstance(item, dict) or _kind_of(item) not in _INPUT_KINDS:
            continue
        annotations = _annotations(item)
        path = annotations.get(PATH_ANNOTATION) or annotations.get(_LEGACY_PATH_ANNOTATION)
        index = annotations.get(INDEX_ANNOTATION) or annotations.get(_LEGACY_INDEX_ANNOTATION)
        if path:
            at = _file_index(index, position)
            by_file.setdefault(str(path), {})[at] = _without_orchestrator(item)
        else:
            by_file.setdefault(ITEMS_SOURCE, {})[position] = _without_orchestrator(item)
    slots = sum(max(docs) + 1 for docs in by_file.values())
    if slots > limits.MAX_DOCUMENTS:
        raise InputError(
            [
                Problem(
                    f"the items' index annotations place {slots} documents; kdgen reads at "
                    f"most {limits.MAX_DOCUMENTS} in one run",
                    source=ITEMS_SOURCE,
                )
            ]
        )
    return [Source(name, _stream_at(docs)) for name, docs in by_file.items()]


def _file_index(index: Any, position: int) -> int:
    """Read an orchestrator's index annotation: a document number below the documents bound."""
    text = str(index if index is not None else 0).strip() or "0"
    if not text.isdigit() or not text.isascii() or int(text) >= limits.MAX_DOCUMENTS:
        raise InputError(
            [
                Problem(
                    f"must be a document index from 0 to {limits.MAX_DOCUMENTS - 1}, "
                    f"not {str(index)[:40]!r}",
                    source=ITEMS_SOURCE,
                    field=f"items[{position}].metadata.annotations[{INDEX_ANNOTATION}]",
                )
            ]
        )
    return int(text)


def _kind_of(item: dict[str, Any]) -> tuple[str, str]:
    return str(item.get("apiVersion")), str(item.get("kind"))


def _stream_at(documents: dict[int, Any]) -> str:
    """Return a YAML stream with each document at its 0-based position, gaps left empty."""
    last = max(documents)
    return "".join(
        "---\n" + (dump_document(documents[i]) if i in documents else "") for i in range(last + 1)
    )


def _annotations(item: dict[str, Any]) -> dict[str, Any]:
    metadata = item.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return annotations if isinstance(annotations, dict) else {}


def _without_orchestrator(item: dict[str, Any]) -> dict[str, Any]:
    """Return the item without the annotations kpt and kustomize add while passing it along."""
    annotations = {
        key: value
        for key, value in _annotations(item).items()
        if not str(key).startswith(_ORCHESTRATOR_PREFIXES)
    }
    original = item.get("metadata")
    if not isinstance(original, dict):
        return item
    metadata = {k: v for k, v in original.items() if k != "annotations"}
    if annotations:
        metadata["annotations"] = annotations
    return {**item, "metadata": metadata}


def _made_from_kd(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    metadata = item.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return isinstance(labels, dict) and labels.get(LABEL_CONTROLLER) == (
        CONTROLLER_KUSCIA_DEPLOYMENT
    )


def _identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """Return what names an object in a package: apiVersion, kind, namespace and name.

    A KD without a namespace is the one kdgen emits in ``cross-domain``; an AppImage is
    cluster-scoped, so a namespace written on it names nothing.
    """
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    kind = str(obj.get("kind"))
    namespace = str(metadata.get("namespace") or "")
    if kind == KIND_KUSCIA_DEPLOYMENT:
        namespace = namespace or KUSCIA_CROSS_DOMAIN
    elif kind == KIND_APP_IMAGE:
        namespace = ""
    return (str(obj.get("apiVersion")), kind, namespace, str(metadata.get("name") or ""))


def _with_path(obj: Manifest) -> Manifest:
    """Return ``obj`` annotated with the file kpt should write it to."""
    metadata = dict(obj["metadata"])
    path = tree_path(obj)
    metadata["annotations"] = {**metadata.get("annotations", {}), PATH_ANNOTATION: path}
    return {**obj, "metadata": metadata}


def rejected(problems: Iterable[Problem]) -> Outcome:
    """Return the outcome for standard input that could not be read at all (exit status 1)."""
    return _outcome([], problems, exit_code=1)


def _outcome(items: list[Any], problems: Iterable[Problem], *, exit_code: int) -> Outcome:
    problems = tuple(problems)
    body: dict[str, Any] = {
        "apiVersion": RESOURCE_LIST_API_VERSION,
        "kind": RESOURCE_LIST_KIND,
        "items": items,
    }
    if problems:
        body["results"] = [result(problem) for problem in problems]
    return Outcome(stdout=dump_document(body), stderr=problem_lines(problems), exit_code=exit_code)


def result(problem: Problem) -> dict[str, Any]:
    """Return ``problem`` as a KRM function ``results[]`` entry.

    >>> result(Problem("bad", source="kd.yaml", doc_index=2, field="spec.parties",
    ...        resource="KusciaDeployment cross-domain/x", reason="ValidateFailed"))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'message': 'bad', 'severity': 'error', 'resourceRef': {'apiVersion':
    'kuscia.secretflow/v1alpha1', 'kind': 'KusciaDeployment', 'name': 'x', 'namespace':
    'cross-domain'}, 'field': {'path': 'spec.parties'}, 'file': {'path': 'kd.yaml', 'index': 1},
    'tags': {'reason': 'ValidateFailed'}}
    """
    entry: dict[str, Any] = {
        "message": escape_controls(problem.message),
        "severity": problem.severity,
    }
    reference = _resource_ref(problem.resource)
    if reference:
        entry["resourceRef"] = reference
    if problem.field:
        entry["field"] = {"path": escape_controls(problem.field)}
    if problem.source:
        entry["file"] = {
            "path": escape_controls(problem.source),
            "index": max(problem.doc_index - 1, 0),
        }
    if problem.reason:
        entry["tags"] = {"reason": problem.reason}
    return entry


def _resource_ref(resource: str) -> dict[str, str]:
    """Split a Problem's ``Kind namespace/name`` back into a KRM resource reference."""
    kind, _, name = resource.partition(" ")
    if kind not in _API_VERSIONS or not name:
        return {}
    namespace, _, short = name.rpartition("/")
    reference = {"apiVersion": _API_VERSIONS[kind], "kind": kind, "name": escape_controls(short)}
    return {**reference, "namespace": escape_controls(namespace)} if namespace else reference
