"""Work out, per party, everything the manifests need: Kuscia's ``PartyKitInfo``, offline.

Pure. Mirrors ``buildPartyKitInfo`` in Kuscia's ``util.go``: select the AppImage deploy
template for the party's role, merge the party's template over it, collect the ports, and
name the Deployment, ConfigMap and Services. Where the controller iterates Go maps (random
order) this module uses declaration order: containers in order, ports in order within each.
It never looks anything up: cluster facts arrive in the ``Inventory``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from kdgen.errors import Problem
from kdgen.kusciamessages import kit_info_failed
from kdgen.load import Document
from kdgen.model import (
    ANNOTATION_AFFINITY_MODE,
    ANNOTATION_KDGEN_KD_UID,
    APP_TYPE_SERVING,
    KUSCIA_CROSS_DOMAIN,
    LABEL_KUSCIA_DEPLOYMENT_APP_TYPE,
    SCOPE_CLUSTER,
    SERVICED_SCOPES,
    DeployTemplate,
    Inventory,
    KusciaContainer,
    KusciaPodSpec,
    Party,
    Reason,
)
from kdgen.naming import generate_configmap_name, generate_deployment_name, generate_service_name
from kdgen.parties import is_self as is_self_domain

KD_UID_NAMESPACE = uuid.UUID("6f0b1c7e-4d52-5a8e-9c1d-2b7f3e9a0c44")
"""Namespace of the UUIDv5 that stands in for a KD's uid when the inventory has none."""


@dataclass(frozen=True, slots=True)
class PortPlan:
    """One AppImage container port of a party, after CRD defaulting.

    ``declared`` is the AppImage's ``port`` number (``None`` when absent); the number the
    objects use is decided later by ``ports.py``.
    """

    name: str
    declared: int | None
    scope: str
    protocol: str
    container: str

    @property
    def is_serviced(self) -> bool:
        """Whether the port gets a Service: Kuscia's ``generateServicedPorts``."""
        return self.scope in SERVICED_SCOPES


@dataclass(frozen=True, slots=True)
class PartyPlan:
    """One party of a KD, ready to become objects (or, for a partner, a CLUSTER_DEFINE entry).

    Attributes:
        index: position in ``spec.parties``.
        domain_id: the party's domain, which is also the namespace of its objects.
        role: the party's role, ``""`` when none.
        is_self: hosted in this cluster, so it gets objects.
        app_image: the AppImage document the party refers to.
        template_name: the chosen deploy template's name (for messages).
        replicas: merged replicas (party, else AppImage, else 1).
        strategy: the party's strategy, or ``None`` for the Deployment default.
        pod_spec: the AppImage pod spec with the party's resources and affinity merged in.
        network_policy: the chosen template's networkPolicy, or ``None``.
        ports: every container port, containers in order, ports in order within each.
        deploy_name: name of the Deployment.
        configmap_name: name of the config-template ConfigMap.
        service_names: serviced port name -> Service name, in port order.
        access_domains: serviced port name -> ``access-domain`` annotation value.
    """

    index: int
    domain_id: str
    role: str
    is_self: bool
    app_image: Document
    template_name: str
    replicas: int
    strategy: Mapping[str, Any] | None
    pod_spec: KusciaPodSpec
    network_policy: Mapping[str, Any] | None
    ports: tuple[PortPlan, ...]
    deploy_name: str
    configmap_name: str
    service_names: Mapping[str, str]
    access_domains: Mapping[str, str]

    @property
    def field(self) -> str:
        """The party's field path in the KD."""
        return f"spec.parties[{self.index}]"


@dataclass(frozen=True, slots=True)
class KdPlan:
    """A KusciaDeployment with all its parties planned (``name``: the KD's name)."""

    kd: Document
    uid: str
    initiator: str
    input_config: str
    app_type: str
    affinity_mode: str
    parties: tuple[PartyPlan, ...]
    name: str

    @property
    def is_serving(self) -> bool:
        """Labelled ``app-type: serving``, which adds ``SERVING_ID`` to the env."""
        return self.app_type == APP_TYPE_SERVING

    @property
    def self_parties(self) -> tuple[PartyPlan, ...]:
        """The parties hosted in this cluster, in spec order."""
        return tuple(p for p in self.parties if p.is_self)


def plan_kusciadeployment(
    kd: Document,
    app_images: Mapping[str, Document],
    inventory: Inventory,
    invalid_app_images: Collection[str] = (),
) -> tuple[KdPlan | None, list[Problem]]:
    """Plan every party of a checked KD; return the plan, or ``None`` with the problems.

    ``invalid_app_images`` names AppImages that were given but failed validation: a party
    referring to one fails as if it were missing (a real apiserver would not have stored it),
    with a message that points at the AppImage's own problems instead of "not found".
    """
    spec = kd.body["spec"]
    parties: list[Party] = spec["parties"]
    problems: list[Problem] = []
    planned: list[PartyPlan] = []
    for index, party in enumerate(parties):
        party_plan = _plan_party(
            kd, index, party, parties, app_images, inventory, invalid_app_images, problems
        )
        if party_plan is not None:
            planned.append(party_plan)
    problems.extend(_service_name_clashes(kd, planned))
    uid, uid_problems = kd_uid(kd, inventory)
    problems.extend(uid_problems)
    if any(p.severity == "error" for p in problems):
        return None, problems
    metadata = kd.body.get("metadata") or {}
    plan = KdPlan(
        kd=kd,
        uid=uid,
        initiator=spec["initiator"],
        input_config=spec["inputConfig"],
        app_type=(metadata.get("labels") or {}).get(LABEL_KUSCIA_DEPLOYMENT_APP_TYPE, ""),
        affinity_mode=(metadata.get("annotations") or {}).get(ANNOTATION_AFFINITY_MODE, ""),
        parties=tuple(planned),
        name=kd.name,
    )
    return plan, problems


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_VALUE_MAX = 63


def kd_uid(kd: Document, inventory: Inventory) -> tuple[str, list[Problem]]:
    """Return the value of the KD's ``kd-uid`` labels, and any problem with the choice.

    Kuscia's ``generateService``, ``generateConfigMap`` and ``generateDeployment`` label every
    object (and the Deployment's immutable selector) with ``string(kd.UID)``. Offline, the
    first of these that is set wins:

    1. the KD's ``kdgen.kuscia.secretflow/kd-uid`` annotation (``kdgen import`` writes it);
    2. the Inventory's ``kusciaDeployments[].uid`` for the KD's name;
    3. the KD's own ``metadata.uid``, as a live export carries it (what Kuscia reads);
    4. the stand-in ``default_kd_uid``.

    The pins come before ``metadata.uid`` because they say what the existing objects' selectors
    already carry; a KD deleted and re-created gets a new ``metadata.uid`` that Kuscia never
    writes into existing Deployments (``updateDeployment`` leaves labels alone). When the given
    sources disagree, a warning names the value kept.
    """
    metadata = kd.body.get("metadata") or {}
    annotation = (metadata.get("annotations") or {}).get(ANNOTATION_KDGEN_KD_UID, "")
    candidates = [
        (f"metadata.annotations.{ANNOTATION_KDGEN_KD_UID}", annotation),
        ("the Inventory's kusciaDeployments[].uid", inventory.kd_uids.get(kd.name, "")),
        ("metadata.uid", str(metadata.get("uid") or "")),
    ]
    given = [(where, value) for where, value in candidates if value]
    if not given:
        return default_kd_uid(kd.name), []
    (chosen_from, chosen), *others = given
    problems = []
    if len(chosen) > _LABEL_VALUE_MAX or not _LABEL_VALUE.fullmatch(chosen):
        problems.append(
            kd.problem(
                chosen_from if chosen_from.startswith("metadata") else "metadata.name",
                f"kd-uid {chosen!r} (from {chosen_from}) is not a valid label value: at most "
                "63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
            )
        )
    for where, value in others:
        if value != chosen:
            problems.append(
                kd.problem(
                    where if where.startswith("metadata") else "metadata.name",
                    f"kd-uid {value!r} from {where} differs from {chosen!r} from {chosen_from}; "
                    f"the kd-uid labels use {chosen!r}",
                    severity="warning",
                )
            )
    return chosen, problems


def default_kd_uid(kd_name: str) -> str:
    """Return the stand-in uid for a KD whose real uid the inventory does not give.

    A UUIDv5 of ``cross-domain/<name>``: stable across runs, so the Deployment selector (which
    carries the ``kd-uid`` label and is immutable) never changes between generations.

    >>> default_kd_uid("secretflow-serving") == default_kd_uid("secretflow-serving")
    True
    """
    return str(uuid.uuid5(KD_UID_NAMESPACE, f"{KUSCIA_CROSS_DOMAIN}/{kd_name}"))


def _plan_party(
    kd: Document,
    index: int,
    party: Party,
    parties: Sequence[Party],
    app_images: Mapping[str, Document],
    inventory: Inventory,
    invalid_app_images: Collection[str],
    problems: list[Problem],
) -> PartyPlan | None:
    domain_id = party["domainID"]
    role = party.get("role", "")
    where = f"spec.parties[{index}]"
    kit_failed = kit_info_failed(domain_id)
    reason = Reason.BUILD_PARTY_KIT_INFO_FAILED.value
    image = app_images.get(party["appImageRef"])
    if image is None:
        ref = party["appImageRef"]
        detail = (
            "it is invalid (see the problems reported for it)"
            if ref in invalid_app_images
            else f'appimage.kuscia.secretflow "{ref}" not found'
        )
        problems.append(
            kd.problem(
                f"{where}.appImageRef",
                f'{kit_failed}, failed to get appImage "{ref}", {detail}',
                reason=reason,
            )
        )
        return None
    template, error = select_deploy_template(image.body["spec"]["deployTemplates"], role)
    if template is None:
        problems.append(
            kd.problem(
                where,
                f"{kit_failed}, failed to select appropriate deploy template from appImage "
                f'"{image.name}" for party {domain_id}/{role}, {error}',
                reason=reason,
            )
        )
        return None
    ports, duplicate = merge_container_ports(template["spec"].get("containers") or [])
    if duplicate:
        problems.append(
            kd.problem(
                where,
                f"{kit_failed}, failed to merge ports in deploy template "
                f"'{template['name']}/{template.get('role', '')}' for party {domain_id}, "
                f'duplicate port "{duplicate}"',
                reason=reason,
            )
        )
        return None
    problems.extend(_unknown_party_containers(kd, where, party, template, image.name))
    deploy_name = generate_deployment_name(kd.name, role)
    is_self = is_self_domain(domain_id, inventory.partner_domains)
    if is_self:  # only a self party gets a Deployment, where Kuscia checks the metric port
        problems.extend(_unknown_metric_ports(kd, where, template, ports, deploy_name))
    prefix = party.get("serviceNamePrefix", "")
    serviced = [p for p in ports if p.is_serviced]
    return PartyPlan(
        index=index,
        domain_id=domain_id,
        role=role,
        is_self=is_self,
        app_image=image,
        template_name=template["name"],
        replicas=_merged_replicas(party, template),
        strategy=(party.get("template") or {}).get("strategy"),
        pod_spec=merge_deploy_template(party, template),
        network_policy=template.get("networkPolicy"),
        ports=ports,
        deploy_name=deploy_name,
        configmap_name=generate_configmap_name(deploy_name),
        service_names={
            p.name: generate_service_name(deploy_name, p.name, prefix) for p in serviced
        },
        access_domains=generate_port_access_domains(parties, serviced, template),
    )


def select_deploy_template(
    templates: Sequence[DeployTemplate], role: str
) -> tuple[DeployTemplate | None, str]:
    """Pick the deploy template for ``role``: Kuscia's ``SelectDeployTemplate``.

    The first template whose comma-separated ``role`` list names the role wins at once. A
    template with an empty role is the fallback (the last such one); with no fallback an empty
    role takes the first template. Returns ``(template, "")`` or ``(None, error text)``.

    >>> ts = [{"name": "a", "role": "server,client"}, {"name": "b", "role": ""}]
    >>> select_deploy_template(ts, "client")[0]["name"], select_deploy_template(ts, "x")[0]["name"]
    ('a', 'b')
    >>> select_deploy_template([{"name": "a", "role": "server"}], "client")
    (None, 'not found deploy template for role "client"')
    """
    if not templates:
        return None, "deploy templates are empty"
    fallback: DeployTemplate | None = None
    for template in templates:
        template_role = template.get("role", "")
        if role in template_role.strip(",").split(","):
            return template, ""
        if template_role == "":
            fallback = template
    if fallback is not None:
        return fallback, ""
    if role == "":
        return templates[0], ""
    return None, f'not found deploy template for role "{role}"'


def merge_container_ports(
    containers: Sequence[KusciaContainer],
) -> tuple[tuple[PortPlan, ...], str]:
    """Collect every container port in order: Kuscia's ``mergeContainersPorts``.

    Returns the ports and ``""``, or the first duplicated port name.
    """
    seen: set[str] = set()
    ports: list[PortPlan] = []
    for container in containers:
        for port in container.get("ports") or []:
            if port["name"] in seen:
                return (), port["name"]
            seen.add(port["name"])
            ports.append(
                PortPlan(
                    name=port["name"],
                    declared=port.get("port"),
                    scope=port["scope"],
                    protocol=port["protocol"],
                    container=container["name"],
                )
            )
    return tuple(ports), ""


def merge_deploy_template(party: Party, template: DeployTemplate) -> KusciaPodSpec:
    """Return the AppImage pod spec with the party's overrides: Kuscia's ``mergeDeployTemplate``.

    Only two things of the party's ``template.spec`` count. For a party container named like an
    AppImage container, a non-empty ``resources.requests`` replaces the AppImage's requests map
    whole (no per-key merge), and likewise ``limits``. A party ``affinity`` replaces the
    AppImage's. Everything else of the party's pod spec is ignored, as in Kuscia.
    """
    # Copy only what the merge changes: the spec, its container list and each container it
    # overrides. The rest is shared with the AppImage, read-only: the builders copy what they
    # put into an object (manifests.py), so no output ever aliases an input.
    merged = cast(KusciaPodSpec, dict(template["spec"]))
    party_spec: KusciaPodSpec = (party.get("template") or {}).get("spec") or {}
    overrides = {
        c.get("name"): c.get("resources") or {} for c in party_spec.get("containers") or []
    }
    if overrides and merged.get("containers"):
        containers = []
        for source in merged["containers"]:
            override = overrides.get(source["name"])
            if override:
                resources = dict(source.get("resources") or {})
                for key in ("requests", "limits"):
                    if override.get(key):
                        resources[key] = override[key]
                source = cast(Any, {**source, "resources": resources})
            containers.append(source)
        merged["containers"] = containers
    if party_spec.get("affinity") is not None:
        merged["affinity"] = party_spec["affinity"]
    return merged


def _merged_replicas(party: Party, template: DeployTemplate) -> int:
    party_replicas = (party.get("template") or {}).get("replicas")
    if party_replicas is not None:
        return party_replicas
    template_replicas = template.get("replicas")
    return 1 if template_replicas is None else template_replicas


def generate_port_access_domains(
    parties: Sequence[Party], serviced: Sequence[PortPlan], template: DeployTemplate
) -> dict[str, str]:
    """Return each serviced port's ``access-domain`` value: ``generatePortAccessDomains``.

    Empty for a single-party KD. Without a networkPolicy, Cluster-scope ports list every
    distinct domain (when more than one). With one, each listed port names the domains of the
    parties whose role its ingresses allow. Domains are joined in order of first appearance in
    ``spec.parties`` (Kuscia joins in random map order).
    """
    result = {p.name: "" for p in serviced}
    if len(parties) <= 1:
        return result
    domains = list(dict.fromkeys(p["domainID"] for p in parties))
    policy = template.get("networkPolicy")
    if not policy:
        for port in serviced:
            if port.scope == SCOPE_CLUSTER and len(domains) > 1:
                result[port.name] = ",".join(domains)
        return result
    roles_by_port: dict[str, list[str]] = {}
    for ingress in policy.get("ingresses") or []:
        roles = (ingress.get("from") or {}).get("roles") or []
        for port in ingress.get("ports") or []:
            roles_by_port.setdefault(port["port"], []).extend(roles)
    for port in serviced:
        allowed = set(roles_by_port.get(port.name, ()))
        if allowed:
            chosen = [p["domainID"] for p in parties if p.get("role", "") in allowed]
            result[port.name] = ",".join(dict.fromkeys(chosen))
    return result


def _unknown_party_containers(
    kd: Document, where: str, party: Party, template: DeployTemplate, image: str
) -> list[Problem]:
    names = {c["name"] for c in template["spec"].get("containers") or []}
    party_spec = (party.get("template") or {}).get("spec") or {}
    return [
        kd.problem(
            f"{where}.template.spec.containers[{c}].name",
            f"container {container.get('name')!r} is not in deploy template "
            f"{template['name']!r} of AppImage {image!r}; Kuscia ignores its resources",
            severity="warning",
        )
        for c, container in enumerate(party_spec.get("containers") or [])
        if container.get("name") not in names
    ]


def _unknown_metric_ports(
    kd: Document,
    where: str,
    template: DeployTemplate,
    ports: Sequence[PortPlan],
    deploy_name: str,
) -> list[Problem]:
    """Report metric probes naming a port the party lacks, as ``generateDeployment`` does."""
    names = {p.name for p in ports}
    problems = []
    for container in template["spec"].get("containers") or []:
        probe = container.get("metricProbe") or {}
        port = probe.get("port", "")
        if probe.get("path") and port and port not in names:
            problems.append(
                kd.problem(
                    where,
                    f"metric port name {port} not found for deployment {deploy_name}",
                    reason=Reason.CREATE_DEPLOYMENT_FAILED.value,
                )
            )
    return problems


def _service_name_clashes(kd: Document, parties: Sequence[PartyPlan]) -> list[Problem]:
    owners: dict[tuple[str, str], str] = {}
    problems = []
    for party in parties:
        if not party.is_self:
            continue
        for _port, service in party.service_names.items():
            key = (party.domain_id, service)
            if key in owners and owners[key] != party.deploy_name:
                problems.append(
                    kd.problem(
                        f"{party.field}.serviceNamePrefix",
                        f"domain {party.domain_id} service {service} already exist, please "
                        "ensure that the service name can't be duplicated",
                        reason=Reason.CREATE_SERVICE_FAILED.value,
                    )
                )
            owners.setdefault(key, party.deploy_name)
    return problems
