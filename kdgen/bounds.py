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
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from kdgen import limits
from kdgen.errors import Problem
from kdgen.load import Document
from kdgen.model import KIND_APP_IMAGE, KIND_KUSCIA_DEPLOYMENT

_QUANTITY_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


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


def _container_problems(doc: Document, pod: Any, where: str) -> Iterator[Problem]:
    if not isinstance(pod, dict):
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
    if match is None:
        return False
    try:
        return Decimal(match.group()) < 0
    except InvalidOperation:
        return False


def _long_strings(doc: Document) -> list[tuple[str, str]]:
    """Return ``(path, message)`` for every string over its bound, walking iteratively."""
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
            and _size(value) > limits.MAX_FIELD_BYTES
        ):
            message = f"value of {_size(value)} bytes; kdgen takes at most {limits.MAX_FIELD_BYTES}"
            found.append((path, message))
    return sorted(found)


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
