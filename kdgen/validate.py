"""Check inputs against the CRD schemas and Kuscia's KD-level rules, collecting every problem.

Pure. Each document is defaulted the way the apiserver would (CRD ``default``s), then checked
against its schema; KusciaDeployments then get the controller's ``validate`` rules (reason
``ValidateFailed``) and the stricter checks of spec §15 row 17 that Kuscia leaves to chance.
Per-party rules that need the AppImage (template selection, ports) live in ``plan.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kdgen.bounds import bound_problems, metadata_problems
from kdgen.errors import Problem
from kdgen.kusciamessages import initiator_not_a_party, parties_empty
from kdgen.load import Document, Inputs
from kdgen.model import (
    KUSCIA_CROSS_DOMAIN,
    DomainFacts,
    Inventory,
    Reason,
)
from kdgen.naming import generate_deployment_name, invalid_service_name_prefix
from kdgen.schemas import (
    APP_IMAGE_SCHEMA,
    INVENTORY_SCHEMA,
    KUSCIA_DEPLOYMENT_SCHEMA,
    apply_defaults,
    schema_problems,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
"""RFC 1123 label, as Kubernetes requires for namespaces, Deployment selector values and more."""
_DNS_LABEL_MAX = 63
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PORT_NAME_MAX = 15
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclass(frozen=True, slots=True)
class Checked:
    """Inputs after defaulting and checking.

    Attributes:
        kusciadeployments: the KDs that passed every check here, defaulted, in input order.
        app_images: every schema-valid AppImage by name, defaulted.
        inventory: the cluster facts (defaults when no Inventory was given).
        problems: errors and warnings found, in a stable order.
        invalid_app_images: names of AppImages given but failing their schema, so a KD that
            refers to one is told so rather than that the AppImage does not exist.
    """

    kusciadeployments: tuple[Document, ...]
    app_images: Mapping[str, Document]
    inventory: Inventory
    problems: tuple[Problem, ...]
    invalid_app_images: frozenset[str] = frozenset()


def validate(inputs: Inputs) -> Checked:
    """Default and check every document; never raises for bad input, returns the problems."""
    problems: list[Problem] = []
    kds = _schema_checked(inputs.kusciadeployments, KUSCIA_DEPLOYMENT_SCHEMA, problems)
    images = _schema_checked(inputs.app_images, APP_IMAGE_SCHEMA, problems)
    inventories = _schema_checked(inputs.inventories, INVENTORY_SCHEMA, problems)

    app_images: dict[str, Document] = {}
    for image in images:
        image_problems = list(_check_app_image(image))
        if image.name in app_images:
            image_problems.append(
                image.problem("metadata.name", f"AppImage {image.name!r} is defined twice")
            )
        problems.extend(image_problems)
        app_images.setdefault(image.name, image)

    seen_kds: set[str] = set()
    good_kds: list[Document] = []
    for kd in kds:
        kd_problems = list(_check_kusciadeployment(kd))
        if kd.name in seen_kds:
            kd_problems.append(
                kd.problem("metadata.name", f"KusciaDeployment {kd.name!r} is defined twice")
            )
        seen_kds.add(kd.name)
        problems.extend(kd_problems)
        if not any(p.severity == "error" for p in kd_problems):
            good_kds.append(kd)

    if len(inventories) > 1:
        problems.extend(
            doc.problem("", "only one Inventory document may be given") for doc in inventories[1:]
        )
    inventory = _inventory(inventories[0]) if inventories else Inventory()
    invalid = frozenset(doc.name for doc in inputs.app_images) - set(app_images)
    return Checked(tuple(good_kds), app_images, inventory, tuple(problems), invalid)


def _schema_checked(
    documents: Iterable[Document], schema: Mapping[str, Any], problems: list[Problem]
) -> list[Document]:
    valid = []
    for doc in documents:
        body = apply_defaults(schema, doc.body)
        found = [doc.problem(path, message) for path, message in schema_problems(schema, body)]
        found.extend(doc.problem(path, message) for path, message in unknown_fields(schema, body))
        found.extend(metadata_problems(doc))
        if not found:
            found = bound_problems(replace(doc, body=body))
        problems.extend(found)
        if not found:
            valid.append(replace(doc, body=body))
    return valid


def unknown_fields(
    schema: Mapping[str, Any], obj: Any, path: str = ""
) -> Iterable[tuple[str, str]]:
    """Yield ``(path, message)`` for each field the schema does not know.

    A CRD schema cannot say ``additionalProperties: false``, but the apiserver's strict field
    validation (kubectl's default) rejects unknown fields all the same, so kdgen reports them.
    Subtrees that keep unknown fields (``x-kubernetes-preserve-unknown-fields``) and free-form
    maps are not checked.

    >>> list(unknown_fields({"properties": {"a": {"type": "string"}}}, {"a": "", "b": 1}))
    [('', 'unknown field "b"')]
    """
    if isinstance(obj, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(properties, Mapping) and key in properties:
                yield from unknown_fields(properties[key], value, child)
            elif isinstance(extra, Mapping):
                yield from unknown_fields(extra, value, f"{path}[{key}]")
            elif properties is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                yield path, f'unknown field "{key}"'
    elif isinstance(obj, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(obj):
            yield from unknown_fields(schema["items"], item, f"{path}[{i}]")


def _check_app_image(image: Document) -> Iterable[Problem]:
    spec = image.body["spec"]
    for key in spec.get("configTemplates") or {}:
        if not _CONFIG_KEY.fullmatch(key):
            yield image.problem(
                f"spec.configTemplates[{key}]",
                "a config template name must be a valid ConfigMap key "
                "(letters, digits, '-', '_' and '.')",
            )
    for t, template in enumerate(spec["deployTemplates"]):
        containers = template["spec"].get("containers") or []
        for c, container in enumerate(containers):
            where = f"spec.deployTemplates[{t}].spec.containers[{c}]"
            yield from _check_dns_label(image, f"{where}.name", container["name"], "container name")
            for p, port in enumerate(container.get("ports") or []):
                yield from _check_port_name(image, f"{where}.ports[{p}].name", port["name"])


def _check_port_name(doc: Document, field: str, name: str) -> Iterable[Problem]:
    if not (
        len(name) <= _PORT_NAME_MAX
        and _PORT_NAME.fullmatch(name)
        and "--" not in name
        and any(ch.isalpha() for ch in name)
    ):
        yield doc.problem(
            field,
            f"port name {name!r} must be an IANA service name: at most 15 lower-case letters, "
            "digits and '-', with at least one letter",
        )


def _check_dns_label(doc: Document, field: str, value: str, what: str) -> Iterable[Problem]:
    if len(value) > _DNS_LABEL_MAX or not DNS_LABEL.fullmatch(value):
        yield doc.problem(
            field,
            f"{what} {value!r} must be a DNS label: at most 63 lower-case letters, digits "
            "and '-', starting and ending with a letter or digit",
        )


def _check_kusciadeployment(kd: Document) -> Iterable[Problem]:
    spec = kd.body["spec"]
    name = kd.name
    parties = spec["parties"]
    if kd.namespace and kd.namespace != KUSCIA_CROSS_DOMAIN:
        yield kd.problem(
            "metadata.namespace",
            f"namespace must be {KUSCIA_CROSS_DOMAIN!r}: Kuscia reconciles KusciaDeployments "
            f"only there, got {kd.namespace!r}",
        )
    yield from _check_dns_label(kd, "metadata.name", name, "KusciaDeployment name")
    if not parties:
        yield kd.problem(
            "spec.parties",
            parties_empty(name),
            reason=Reason.VALIDATE_FAILED.value,
        )
    domain_ids = [party["domainID"] for party in parties]
    if parties and spec["initiator"] not in domain_ids:
        yield kd.problem(
            "spec.initiator",
            initiator_not_a_party(name, spec["initiator"]),
            reason=Reason.VALIDATE_FAILED.value,
        )
    seen: dict[tuple[str, str], int] = {}
    for i, party in enumerate(parties):
        yield from _check_party(kd, i, party)
        key = (party["domainID"], party.get("role", ""))
        if key in seen:
            yield kd.problem(
                f"spec.parties[{i}]",
                f"party {key[0]}/{key[1]} repeats spec.parties[{seen[key]}]: each domainID "
                "and role pair may appear once",
            )
        seen.setdefault(key, i)
    yield from _check_input_config(kd, spec["inputConfig"])


def _check_party(kd: Document, i: int, party: Mapping[str, Any]) -> Iterable[Problem]:
    where = f"spec.parties[{i}]"
    yield from _check_dns_label(kd, f"{where}.domainID", party["domainID"], "domainID")
    role = party.get("role", "")
    deploy_name = generate_deployment_name(kd.name, role)
    if role and (len(deploy_name) > _DNS_LABEL_MAX or not DNS_LABEL.fullmatch(deploy_name)):
        yield kd.problem(
            f"{where}.role",
            f"role {role!r} makes the Deployment name {deploy_name!r}, which must be a DNS "
            "label: at most 63 lower-case letters, digits and '-'",
        )
    bad_prefix = invalid_service_name_prefix(party.get("serviceNamePrefix", ""))
    if bad_prefix is not None:
        # Kuscia's message; its trailing space would only pad the printed line.
        yield kd.problem(
            f"{where}.serviceNamePrefix", bad_prefix.rstrip(), reason=Reason.VALIDATE_FAILED.value
        )
    template_spec = (party.get("template") or {}).get("spec") or {}
    for c, container in enumerate(template_spec.get("containers") or []):
        if "workingDir" not in container:
            yield kd.problem(
                f"{where}.template.spec.containers[{c}].workingDir",
                "Kuscia's KusciaDeployment CRD requires workingDir here; a real apiserver "
                'rejects this KD until it has workingDir: ""',
                severity="warning",
            )


INPUT_CONFIG_MAX_BYTES = 1 << 20
"""The largest ``inputConfig`` kdgen accepts (UTF-8 bytes).

Kuscia passes any string through as ``INPUT_CONFIG`` (its own ``reconcile_test.go`` uses
``"test"``) and checks no size, but the value is copied into the KD and into every container
of every Deployment, and the apiserver refuses objects over about 1.5 MiB.
"""


def _check_input_config(kd: Document, input_config: str) -> Iterable[Problem]:
    size = len(input_config.encode("utf-8", "surrogatepass"))
    if size > INPUT_CONFIG_MAX_BYTES:
        yield kd.problem(
            "spec.inputConfig",
            f"inputConfig is {size} bytes; kdgen accepts at most {INPUT_CONFIG_MAX_BYTES}, as "
            "every container of every Deployment carries it and the apiserver stores objects "
            "of at most about 1.5 MiB",
        )


def _inventory(doc: Document) -> Inventory:
    spec = doc.body.get("spec") or {}
    domains = {
        d["domainID"]: DomainFacts(
            is_partner=d.get("role", "") == "partner",
            interconn_protocol=d.get("interConnProtocol", "kuscia"),
            namespace_is_partner=d.get("namespaceRole", "") == "partner",
        )
        for d in spec.get("domains") or []
    }
    taken: dict[str, frozenset[int]] = {}
    for entry in spec.get("takenPorts") or []:
        ns = entry["namespace"]
        taken[ns] = taken.get(ns, frozenset()) | frozenset(entry.get("ports") or [])
    return Inventory(
        domains=domains,
        kd_uids={k["name"]: k["uid"] for k in spec.get("kusciaDeployments") or []},
        taken_ports=taken,
        template_values=dict(spec.get("templateValues") or {}),
    )
