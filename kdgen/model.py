"""The vocabulary every stage shares: Kuscia's keys and names, the input shapes, and Options.

Label, annotation and env names are constants here, named after Kuscia's ``common.*`` Go
constants, and nowhere else is a key written as a string literal. Raw Kubernetes and Kuscia
objects stay plain dicts; the TypedDicts below name the fields kdgen reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict

# --- API groups and kinds -----------------------------------------------------------------

KUSCIA_API_VERSION = "kuscia.secretflow/v1alpha1"
KUSCIA_GROUP = "kuscia.secretflow"
KIND_KUSCIA_DEPLOYMENT = "KusciaDeployment"
KIND_APP_IMAGE = "AppImage"
KD_PLURAL = "kusciadeployments"

INVENTORY_API_VERSION = "kdgen.kuscia.secretflow/v1alpha1"
KIND_INVENTORY = "Inventory"

KUSCIA_CROSS_DOMAIN = "cross-domain"
"""The only namespace whose KDs the controller reconciles, and the owner_namespace label."""

# --- labels (pkg/common/constants.go) -----------------------------------------------------

LABEL_CONTROLLER = "kuscia.secretflow/controller"
LABEL_KUSCIA_DEPLOYMENT_UID = "kuscia.secretflow/kd-uid"
LABEL_KUSCIA_DEPLOYMENT_NAME = "kuscia.secretflow/kd-name"
LABEL_OWNER_NAMESPACE = "kuscia.secretflow/owner_namespace"
LABEL_DEPLOYMENT_NAME = "kuscia.secretflow/deployment-name"
LABEL_PORT_SCOPE = "kuscia.secretflow/port-scope"
LABEL_LOADBALANCER = "kuscia.secretflow/loadbalancer"
LABEL_COMMUNICATION_ROLE_SERVER = "kuscia.secretflow/communication-role-server"
LABEL_COMMUNICATION_ROLE_CLIENT = "kuscia.secretflow/communication-role-client"
LABEL_KUSCIA_DEPLOYMENT_APP_TYPE = "kuscia.secretflow/app-type"
LABEL_NODE_NAMESPACE = "kuscia.secretflow/namespace"
LABEL_DOMAIN_ROLE = "kuscia.secretflow/role"

CONTROLLER_KUSCIA_DEPLOYMENT = "KusciaDeployment"
LOADBALANCER_DOMAIN_ROUTE = "domainroute"
APP_TYPE_SERVING = "serving"
DOMAIN_ROLE_PARTNER = "partner"

# --- annotations --------------------------------------------------------------------------

ANNOTATION_INITIATOR = "kuscia.secretflow/initiator"
ANNOTATION_PROTOCOL = "kuscia.secretflow/protocol"
ANNOTATION_ACCESS_DOMAIN = "kuscia.secretflow/access-domain"
ANNOTATION_STICKY_SESSION_COOKIE = "kuscia.secretflow/sticky-session-cookie"
ANNOTATION_STICKY_SESSION_TTL = "kuscia.secretflow/sticky-session-ttl"
ANNOTATION_IMAGE_ID = "kuscia.secretflow/image-id"
ANNOTATION_CONFIG_TEMPLATE_VOLUMES = "kuscia.secretflow/config-template-volumes"
ANNOTATION_SHOULD_BE_SCRAPED = "kuscia.secretflow/should_be_scraped"
ANNOTATION_METRIC_PATH = "kuscia.secretflow/metric_path"
ANNOTATION_METRIC_PORT = "kuscia.secretflow/metric_port"
ANNOTATION_ALLOCATED_PORTS = "kuscia.secretflow/allocated-ports"
ANNOTATION_AFFINITY_MODE = "kuscia.secretflow/affinity-mode"
ANNOTATION_SELF_CLUSTER_AS_INITIATOR = "kuscia.secretflow/self-cluster-as-initiator"
ANNOTATION_INTERCONN_KUSCIA_PARTIES = "kuscia.secretflow/interconn-kuscia-parties"
ANNOTATION_INTERCONN_SELF_PARTIES = "kuscia.secretflow/interconn-self-parties"

ANNOTATION_KDGEN_KD_UID = "kdgen.kuscia.secretflow/kd-uid"
"""kdgen's own KD annotation: the uid the ``kd-uid`` labels carry, pinned in the source file.

``kdgen import`` moves a live KD's ``metadata.uid`` here, because the apiserver owns
``metadata.uid`` and a GitOps source must not set it. Kuscia's controller ignores it.
"""

STICKY_SESSION_COOKIE = "KUSCIA_SESSION"
STICKY_SESSION_TTL = "86400s"
AFFINITY_MODE_NONE = "none"

# --- pod-level constants ------------------------------------------------------------------

CONFIG_TEMPLATE_VOLUME = "config-template"
CONFIGMAP_SUFFIX = "-configtemplate"
TOLERATION_AGENT = "kuscia.secretflow/agent"
KUSCIA_SCHEDULER = "kuscia-scheduler"
PORT_RANGE = (20000, 32767)
"""Kuscia's allocator range, ``[start, stop)``: 20000-32766."""

# --- env names ----------------------------------------------------------------------------

ENV_DOMAIN_ID = "KUSCIA_DOMAIN_ID"
ENV_CLUSTER_DEFINE = "CLUSTER_DEFINE"
ENV_ALLOCATED_PORTS = "ALLOCATED_PORTS"
ENV_INPUT_CONFIG = "INPUT_CONFIG"
ENV_SERVING_ID = "SERVING_ID"
ENV_PORT_NUMBER = "KUSCIA_PORT_{}_NUMBER"

# --- port scopes and protocols (AppImage CRD enums) ---------------------------------------

SCOPE_CLUSTER = "Cluster"
SCOPE_DOMAIN = "Domain"
SCOPE_LOCAL = "Local"
SERVICED_SCOPES = (SCOPE_CLUSTER, SCOPE_DOMAIN)


class Phase(StrEnum):
    """KusciaDeployment and per-party phases (``KusciaDeploymentPhase``)."""

    PROGRESSING = "Progressing"
    PARTIAL_AVAILABLE = "PartialAvailable"
    AVAILABLE = "Available"
    FAILED = "Failed"


class Reason(StrEnum):
    """Kuscia's ``KdStatusReason`` names, used for problems the controller would also hit."""

    VALIDATE_FAILED = "ValidateFailed"
    BUILD_PARTY_KIT_INFO_FAILED = "BuildPartyKitInfoFailed"
    GET_SELF_PARTY_KIT_INFO_FAILED = "GetSelfPartyKitInfoFailed"
    ALLOCATE_PORTS_FAILED = "AllocatePortsFailed"
    FILL_PARTY_CLUSTER_DEFINES_FAILED = "FillPartyClusterDefinesFailed"
    CREATE_SERVICE_FAILED = "CreateServiceFailed"
    CREATE_CONFIGMAP_FAILED = "CreateConfigMapFailed"
    CREATE_DEPLOYMENT_FAILED = "CreateDeploymentFailed"
    RETRY_PROCESSING_FAILED = "RetryProcessingFailed"


class Profile(StrEnum):
    """Which cluster the manifests target."""

    KUSCIA = "kuscia"
    """Faithful to the controller: raw config templates, kuscia-scheduler, agent tolerations."""
    PLAIN = "plain"
    """Plain Kubernetes: templates rendered by kdgen, default scheduler, no Kuscia-only fields."""


class PortMode(StrEnum):
    """Where port numbers come from."""

    DECLARED = "declared"
    """The AppImage's declared ``port`` values, as the seed document shows."""
    ALLOCATED = "allocated"
    """Deterministic numbers in 20000-32766, or the KD's pre-set allocated-ports annotation."""


@dataclass(frozen=True, slots=True)
class Options:
    """Every switch of a generation run, in one place (black's ``Mode``)."""

    profile: Profile = Profile.KUSCIA
    ports: PortMode = PortMode.DECLARED
    include_sources: bool = True
    """Emit the KDs and AppImages themselves before their objects (``sourceobjects.py``)."""


# --- cluster facts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DomainFacts:
    """What the controller would read from a party's ``Domain`` and ``Namespace``.

    Attributes:
        is_partner: the Domain's ``spec.role`` is ``partner``: hosted by another cluster, so
            the party gets no objects here but still appears in CLUSTER_DEFINE.
        interconn_protocol: the Domain's first ``interConnProtocols`` entry.
        namespace_is_partner: the Namespace is labelled ``kuscia.secretflow/role=partner``,
            which switches the scheduler to ``<domain>-kuscia-scheduler``.
    """

    is_partner: bool = False
    interconn_protocol: str = "kuscia"
    namespace_is_partner: bool = False


@dataclass(frozen=True, slots=True)
class Inventory:
    """Cluster facts an offline generator cannot look up; every field has a safe default.

    Attributes:
        domains: facts per domainID; a domain not listed is a self domain.
        kd_uids: the real ``metadata.uid`` per KD name, for the ``kd-uid`` label.
        taken_ports: port numbers already in use, per namespace, that allocation must skip.
        template_values: values for config-template keys that neither the env nor the AppImage
            provide (Kuscia's config manager and agent keys), for the plain profile.
    """

    domains: Mapping[str, DomainFacts] = field(default_factory=dict)
    kd_uids: Mapping[str, str] = field(default_factory=dict)
    taken_ports: Mapping[str, frozenset[int]] = field(default_factory=dict)
    template_values: Mapping[str, str] = field(default_factory=dict)

    def domain(self, domain_id: str) -> DomainFacts:
        """Return the facts for ``domain_id``; an unlisted domain is self."""
        return self.domains.get(domain_id, DomainFacts())

    @property
    def partner_domains(self) -> frozenset[str]:
        """The domains marked ``role: partner`` (``kdgen.parties`` decides self from these)."""
        return frozenset(d for d, facts in self.domains.items() if facts.is_partner)


# --- raw object shapes --------------------------------------------------------------------

Manifest = dict[str, Any]
"""A Kubernetes object as a plain dict, ready to serialise."""


class ObjectMeta(TypedDict, total=False):
    """The ``metadata`` fields kdgen reads."""

    name: str
    namespace: str
    uid: str
    labels: dict[str, str]
    annotations: dict[str, str]


class ContainerPort(TypedDict, total=False):
    """An AppImage container port, after CRD defaulting."""

    name: str
    port: int
    protocol: str
    scope: str


class KusciaContainer(TypedDict, total=False):
    """A Kuscia ``Container`` (AppImage deploy template or KD party template)."""

    name: str
    command: list[str]
    args: list[str]
    workingDir: str
    configVolumeMounts: list[dict[str, str]]
    ports: list[ContainerPort]
    envFrom: list[dict[str, Any]]
    env: list[dict[str, Any]]
    resources: dict[str, Any]
    livenessProbe: dict[str, Any]
    readinessProbe: dict[str, Any]
    startupProbe: dict[str, Any]
    metricProbe: dict[str, str]
    imagePullPolicy: str
    securityContext: dict[str, Any]


class KusciaPodSpec(TypedDict, total=False):
    """A Kuscia ``PodSpec``."""

    restartPolicy: str
    containers: list[KusciaContainer]
    affinity: dict[str, Any]


class DeployTemplate(TypedDict, total=False):
    """One ``AppImage.spec.deployTemplates[]`` entry."""

    name: str
    role: str
    replicas: int
    networkPolicy: dict[str, Any]
    spec: KusciaPodSpec


class PartyTemplate(TypedDict, total=False):
    """A KD party's ``template`` override."""

    replicas: int
    strategy: dict[str, Any]
    spec: KusciaPodSpec


class Party(TypedDict, total=False):
    """One ``KusciaDeployment.spec.parties[]`` entry."""

    domainID: str
    appImageRef: str
    role: str
    serviceNamePrefix: str
    template: PartyTemplate


class KusciaDeploymentSpec(TypedDict, total=False):
    """``KusciaDeployment.spec``."""

    initiator: str
    inputConfig: str
    parties: list[Party]


class KusciaDeployment(TypedDict, total=False):
    """A KusciaDeployment object."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: KusciaDeploymentSpec
    status: dict[str, Any]


class AppImageSpec(TypedDict, total=False):
    """``AppImage.spec``."""

    image: dict[str, str]
    configTemplates: dict[str, str]
    deployTemplates: list[DeployTemplate]


class AppImage(TypedDict, total=False):
    """An AppImage object (cluster-scoped)."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: AppImageSpec
