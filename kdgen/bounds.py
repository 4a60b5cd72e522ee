"""Check a schema-valid document against kdgen's bounds and the apiserver's value ranges.

Pure. ``kdgen.limits`` holds the numbers. Two kinds of check live here, both run on a document
that already passed its schema (so its shape is known) and before any stage whose work grows
with what is checked:

- bounds: parties per KD, ports per deploy template, bytes of a config template or of any
  other string (``inputConfig``, annotations);
- ranges the CRD schema leaves open but the apiserver enforces on the objects kdgen writes
  from them (``ValidateContainerPorts``, ``ValidateServicePort``,
  ``ValidateResourceQuantityValue`` in ``k8s.io/kubernetes/pkg/apis/core/validation``): a port
  number in 1-65535, a resource quantity that is not negative.

``metadata_problems`` runs on every document, schema-valid or not: the CRD schemas say only
``metadata: object``, but the apiserver decodes ``metadata`` into ``ObjectMeta`` (strings for
names, ``map[string]string`` for labels and annotations, ``ValidateObjectMeta`` for their keys
and label values, at most 256 KiB of annotations), and kdgen reads those fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from kdgen import limits
from kdgen.errors import Problem
from kdgen.load import Document
from kdgen.model import KIND_APP_IMAGE, KIND_KUSCIA_DEPLOYMENT

_QUANTITY_NUMBER = re.compile(r"^([+-]?)(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_STRING_FIELDS = ("name", "namespace", "uid", "generateName", "resourceVersion")
_ANNOTATIONS_MAX = 256 * 1024


def metadata_problems(doc: Document) -> list[Problem]:
    """Return what the apiserver's ``ObjectMeta`` decoding and validation would reject.

    >>> from kdgen.load import Document
    >>> meta = {"name": "x", "labels": ["a"], "annotations": {"a": 1, "b/c/d": "x"}}
    >>> for p in metadata_problems(Document("f", 1, {"kind": "AppImage", "metadata": meta})):
    ...     print(p.field, "|", p.message[:44])
    metadata.labels | must be a mapping of strings to strings, got
    metadata.annotations[a] | must be a string, got 1; quote it
    metadata.annotations[b/c/d] | key 'b/c/d' is not a qualified name (an opti
    """
    metadata = doc.body.get("metadata")
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        return [doc.problem("metadata", f"must be a mapping, got {_type(metadata)}")]
    problems = [
        doc.problem(f"metadata.{name}", f"must be a string, got {_short(metadata[name])}")
        for name in _STRING_FIELDS
        if metadata.get(name) is not None and not isinstance(metadata[name], str)
    ]
    for section in ("labels", "annotations"):
        values = metadata.get(section)
        where = f"metadata.{section}"
        if values is None:
            continue
        if not isinstance(values, dict):
            message = f"must be a mapping of strings to strings, got {_type(values)}"
            problems.append(doc.problem(where, message))
            continue
        for key, value in values.items():
            if not isinstance(value, str):
                message = f"must be a string, got {_short(value)}; quote it"
                problems.append(doc.problem(f"{where}[{key}]", message))
            elif section == "labels" and value and not _label_value(value):
                problems.append(
                    doc.problem(
                        f"{where}[{key}]",
                        f"label value {_short(value)} must be at most 63 letters, digits, '-', "
                        "'_' and '.', starting and ending with a letter or digit",
                    )
                )
            if not _qualified_name(key):
                problems.append(
                    doc.problem(
                        f"{where}[{key}]",
                        f"key {_short(key)} is not a qualified name (an optional DNS prefix and "
                        "'/', then at most 63 letters, digits, '-', '_' and '.')",
                    )
                )
        if section == "annotations":
            size = sum(_size(k) + _size(v) for k, v in values.items() if isinstance(v, str))
            if size > _ANNOTATIONS_MAX:
                problems.append(
                    doc.problem(
                        where, f"annotations of {size} bytes; the apiserver takes at most 256 KiB"
                    )
                )
    return problems


def _qualified_name(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_NAME_PART.match(name))


def _label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_NAME_PART.match(value))


def _type(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    return "a list" if isinstance(value, list) else _short(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def bound_problems(doc: Document) -> list[Problem]:
    """Return every bound or range ``doc`` breaks (empty when it breaks none).

    >>> from kdgen.load import Document
    >>> kd = Document("kd.yaml", 1, {"kind": "KusciaDeployment", "metadata": {"name": "x"},
    ...     "spec": {"parties": [{"domainID": "a"}] * 101}})
    >>> print(bound_problems(kd)[0])  # doctest: +NORMALIZE_WHITESPACE
    kd.yaml#1: KusciaDeployment x: spec.parties: 101 parties; kdgen takes at most 100 per
    KusciaDeployment (each self party's CLUSTER_DEFINE lists every party)
    """
    problems = [doc.problem(path, message) for path, message in _long_strings(doc)]
    spec = doc.body.get("spec")
    if not isinstance(spec, dict):
        return problems
    if doc.kind == KIND_KUSCIA_DEPLOYMENT:
        problems.extend(_kd_problems(doc, spec))
    elif doc.kind == KIND_APP_IMAGE:
        problems.extend(_app_image_problems(doc, spec))
    return problems


def _kd_problems(doc: Document, spec: dict[str, Any]) -> Iterator[Problem]:
    parties = spec.get("parties")
    if not isinstance(parties, list):
        return
    if len(parties) > limits.MAX_PARTIES:
        yield doc.problem(
            "spec.parties",
            f"{len(parties)} parties; kdgen takes at most {limits.MAX_PARTIES} per "
            "KusciaDeployment (each self party's CLUSTER_DEFINE lists every party)",
        )
        return
    for i, party in enumerate(parties):
        template = party.get("template") if isinstance(party, dict) else None
        pod = template.get("spec") if isinstance(template, dict) else None
        where = f"spec.parties[{i}].template.spec"
        yield from _container_problems(doc, pod, where)


def _app_image_problems(doc: Document, spec: dict[str, Any]) -> Iterator[Problem]:
    templates = spec.get("configTemplates")
    if isinstance(templates, dict):
        for key, text in templates.items():
            if isinstance(text, str) and _size(text) > limits.MAX_TEMPLATE_BYTES:
                yield doc.problem(
                    f"spec.configTemplates[{key}]",
                    f"config template of {_size(text)} bytes; kdgen takes at most "
                    f"{limits.MAX_TEMPLATE_BYTES} (a ConfigMap holds at most 1 MiB)",
                )
    for t, template in enumerate(_list(spec.get("deployTemplates"))):
        pod = template.get("spec") if isinstance(template, dict) else None
        where = f"spec.deployTemplates[{t}].spec"
        yield from _container_problems(doc, pod, where)
        containers = _list(pod.get("containers")) if isinstance(pod, dict) else []
        ports = sum(len(_list(c.get("ports"))) for c in containers if isinstance(c, dict))
        if ports > limits.MAX_PORTS:
            yield doc.problem(
                f"{where}.containers",
                f"{ports} ports in one deploy template; kdgen takes at most {limits.MAX_PORTS}",
            )


def output_size(objects: Iterable[Any]) -> int:
    """Return about how many bytes ``objects`` take as YAML: strings, keys, a few per node.

    Walks iteratively; a string shared by several objects counts each time it is written.

    >>> output_size([{"kind": "ConfigMap", "data": {"a": "x" * 10}}])
    44
    """
    size = 0
    pending: list[Any] = list(objects)
    while pending:
        value = pending.pop()
        size += 4
        if isinstance(value, dict):
            size += sum(len(str(key)) for key in value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            size += len(value)
    return size


OBJECT_BYTES = 2048
"""Allowance per generated object in ``party_output_bytes``: metadata, labels, names, specs."""
PORT_BYTES = 128
"""Allowance per port in every container: its ``KUSCIA_PORT_*`` env and ALLOCATED_PORTS entry."""


def party_output_bytes(
    *,
    objects: int,
    containers: int,
    ports: int,
    cluster_define: int,
    input_config: int,
    pod_spec: int,
    config: int,
) -> int:
    """Return about how many bytes of YAML one self party's objects take, before building them.

    Generous: a fixed allowance per object, the strings every container carries (its
    CLUSTER_DEFINE, ``inputConfig`` and per-port env), the pod spec as read and the ConfigMap's
    data. Within a small factor of the written size, never far below it (tests/test_bounds.py).

    >>> party_output_bytes(objects=5, containers=1, ports=3, cluster_define=600,
    ...                    input_config=20, pod_spec=1500, config=800)
    13544
    """
    carried = cluster_define + input_config + ports * PORT_BYTES
    return objects * OBJECT_BYTES + containers * carried + pod_spec + config


def kd_objects_problem(kd: Document, objects: int) -> Problem:
    """The problem for a KD that would generate more than ``MAX_KD_OBJECTS`` objects."""
    return kd.problem(
        "spec.parties",
        f"this KusciaDeployment would generate {objects} objects; kdgen makes at most "
        f"{limits.MAX_KD_OBJECTS} from one (every self party gets a Service per serviced port)",
    )


def kd_bytes_problem(kd: Document, size: int) -> Problem:
    """The problem for a KD whose objects would take more than ``MAX_KD_OUTPUT_BYTES``."""
    return kd.problem(
        "spec.parties",
        f"this KusciaDeployment would generate about {size} bytes of objects; kdgen writes at "
        f"most {limits.MAX_KD_OUTPUT_BYTES} from one (every container of every self party "
        "carries a CLUSTER_DEFINE listing every party's services, and the inputConfig; with "
        "the plain profile, each ConfigMap holds the config templates rendered)",
    )


def run_objects_problem(kd: Document) -> Problem:
    """The problem for a run that would pass ``MAX_OBJECTS`` with ``kd``'s objects."""
    return kd.problem(
        "spec.parties",
        f"with this KusciaDeployment the run would generate more than {limits.MAX_OBJECTS} "
        "objects, kdgen's bound for one run; split the inputs into several runs",
    )


def run_bytes_problem(kd: Document) -> Problem:
    """The problem for a run that would pass ``MAX_OUTPUT_BYTES`` with ``kd``'s objects."""
    return kd.problem(
        "spec.parties",
        f"with this KusciaDeployment the run would generate more than about "
        f"{limits.MAX_OUTPUT_BYTES} bytes of objects, kdgen's bound for one run; split the "
        "inputs into several runs",
    )


def _container_problems(doc: Document, pod: Any, where: str) -> Iterator[Problem]:
    if not isinstance(pod, dict):
        return
    containers = _list(pod.get("containers"))
    if len(containers) > limits.MAX_CONTAINERS:
        yield doc.problem(
            f"{where}.containers",
            f"{len(containers)} containers; kdgen takes at most {limits.MAX_CONTAINERS} "
            "(each carries CLUSTER_DEFINE)",
        )
        return
    for c, container in enumerate(_list(pod.get("containers"))):
        if not isinstance(container, dict):
            continue
        at = f"{where}.containers[{c}]"
        for p, port in enumerate(_list(container.get("ports"))):
            number = port.get("port") if isinstance(port, dict) else None
            if isinstance(number, int) and not limits.PORT_MIN <= number <= limits.PORT_MAX:
                yield doc.problem(
                    f"{at}.ports[{p}].port",
                    f"port number {number} is out of range: the apiserver takes "
                    f"{limits.PORT_MIN}-{limits.PORT_MAX}",
                )
        resources = container.get("resources")
        if not isinstance(resources, dict):
            continue
        for section in ("requests", "limits"):
            values = resources.get(section)
            for name, value in values.items() if isinstance(values, dict) else ():
                if _negative(value):
                    yield doc.problem(
                        f"{at}.resources.{section}[{name}]",
                        f"quantity {value!r} is negative: the apiserver requires a resource "
                        "quantity of at least 0",
                    )


def _negative(value: Any) -> bool:
    """Tell whether a quantity (``-1``, ``"-500m"``, ``"-1e3"``) is below zero.

    >>> [_negative(v) for v in (-1, "-500m", "-0", "2Gi", "-.5Ki", 0)]
    [True, True, False, False, True, False]
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value < 0
    match = _QUANTITY_NUMBER.match(value) if isinstance(value, str) else None
    # Below zero: a minus sign and a digit other than 0 before the exponent (-0e5 is zero).
    return match is not None and match[1] == "-" and match[2].strip("0.") != ""


def _long_strings(doc: Document) -> list[tuple[str, str]]:
    """Return ``(path, message)`` for every string over its bound, walking iteratively.

    Paths are only worked out for a document that holds a long string at all.
    """
    if not _has_long_string(doc.body):
        return []
    found = []
    pending: list[tuple[str, Any]] = [("", doc.body)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                pending.append((f"{path}.{key}" if path else str(key), item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif (
            isinstance(value, str)
            and len(value) > limits.MAX_FIELD_BYTES // 4
            and not path.startswith("spec.configTemplates.")  # the template bound covers these
            and path != "spec.inputConfig"  # validate.py bounds it, saying why
            and _size(value) > limits.MAX_FIELD_BYTES
        ):
            message = f"value of {_size(value)} bytes; kdgen takes at most {limits.MAX_FIELD_BYTES}"
            found.append((path, message))
    return sorted(found)


def _has_long_string(body: Any) -> bool:
    """Tell whether any string in ``body`` is long enough to need a closer look."""
    pending = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and len(value) > limits.MAX_FIELD_BYTES // 4:
            return True
    return False


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
