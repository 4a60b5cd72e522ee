"""Turn a planned party into its Service, ConfigMap and Deployment objects.

Pure. Ported from Kuscia's ``generateService``, ``generateConfigMap`` and
``generateDeployment`` (``reconcile.go``), split into small builders. Objects are plain dicts
whose key order is fixed here, so serialising them is deterministic. The two profiles differ
only where documented: ``kuscia`` reproduces the controller; ``plain`` renders the config
templates, drops the Kuscia scheduler, toleration and node selector, and points numeric probe
ports at the allocated numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from kdgen.appconfig import allocated_ports
from kdgen.model import (
    AFFINITY_MODE_NONE,
    ANNOTATION_ACCESS_DOMAIN,
    ANNOTATION_CONFIG_TEMPLATE_VOLUMES,
    ANNOTATION_IMAGE_ID,
    ANNOTATION_INITIATOR,
    ANNOTATION_METRIC_PATH,
    ANNOTATION_METRIC_PORT,
    ANNOTATION_PROTOCOL,
    ANNOTATION_SHOULD_BE_SCRAPED,
    ANNOTATION_STICKY_SESSION_COOKIE,
    ANNOTATION_STICKY_SESSION_TTL,
    CONFIG_TEMPLATE_VOLUME,
    CONTROLLER_KUSCIA_DEPLOYMENT,
    ENV_ALLOCATED_PORTS,
    ENV_CLUSTER_DEFINE,
    ENV_DOMAIN_ID,
    ENV_INPUT_CONFIG,
    ENV_PORT_NUMBER,
    ENV_SERVING_ID,
    KUSCIA_CROSS_DOMAIN,
    KUSCIA_SCHEDULER,
    LABEL_COMMUNICATION_ROLE_CLIENT,
    LABEL_COMMUNICATION_ROLE_SERVER,
    LABEL_CONTROLLER,
    LABEL_DEPLOYMENT_NAME,
    LABEL_KUSCIA_DEPLOYMENT_APP_TYPE,
    LABEL_KUSCIA_DEPLOYMENT_NAME,
    LABEL_KUSCIA_DEPLOYMENT_UID,
    LABEL_LOADBALANCER,
    LABEL_NODE_NAMESPACE,
    LABEL_OWNER_NAMESPACE,
    LABEL_PORT_SCOPE,
    LOADBALANCER_DOMAIN_ROUTE,
    SCOPE_CLUSTER,
    STICKY_SESSION_COOKIE,
    STICKY_SESSION_TTL,
    TOLERATION_AGENT,
    DomainFacts,
    KusciaContainer,
    Manifest,
    Profile,
)
from kdgen.plan import KdPlan, PartyPlan, PortPlan

_T = TypeVar("_T")
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_PROBE_HANDLERS = ("httpGet", "tcpSocket", "grpc")
DEFAULT_STRATEGY: Mapping[str, Any] = {
    "type": "RollingUpdate",
    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
}


@dataclass(frozen=True, slots=True)
class PartyContext:
    """What the builders need to know about one self party beyond its plan.

    Attributes:
        kd: the KD's plan.
        party: the party's plan.
        numbers: port name -> the number its objects use.
        cluster_define: the party's CLUSTER_DEFINE JSON.
        profile: which cluster the objects target.
        domain: the inventory's facts about the party's domain.
        config_data: the ConfigMap data: raw templates (kuscia) or rendered ones (plain).
    """

    kd: KdPlan
    party: PartyPlan
    numbers: Mapping[str, int]
    cluster_define: str
    profile: Profile
    domain: DomainFacts
    config_data: Mapping[str, str]


def _copied(value: _T) -> _T:
    """Return a copy of a parsed YAML tree (dicts and lists copied, scalars shared).

    The objects kdgen builds never alias its inputs; this is ``copy.deepcopy`` for the only
    shapes a YAML load gives, without its memo bookkeeping (it was a tenth of a run's time).
    """
    if isinstance(value, dict):
        return cast(_T, {key: _copied(item) for key, item in value.items()})
    if isinstance(value, list):
        return cast(_T, [_copied(item) for item in value])
    return value


def build_party_objects(ctx: PartyContext) -> list[Manifest]:
    """Return the Services, the ConfigMap (if the AppImage has templates) and the Deployment."""
    objects = [build_service(ctx, port) for port in ctx.party.ports if port.is_serviced]
    if ctx.config_data:
        objects.append(build_configmap(ctx))
    objects.append(build_deployment(ctx))
    return objects


def common_labels(ctx: PartyContext) -> dict[str, str]:
    """Return the five labels every object of a party carries (the ownership labels)."""
    return {
        LABEL_CONTROLLER: CONTROLLER_KUSCIA_DEPLOYMENT,
        LABEL_KUSCIA_DEPLOYMENT_UID: ctx.kd.uid,
        LABEL_KUSCIA_DEPLOYMENT_NAME: ctx.kd.name,
        LABEL_OWNER_NAMESPACE: KUSCIA_CROSS_DOMAIN,
        LABEL_DEPLOYMENT_NAME: ctx.party.deploy_name,
    }


def _metadata(ctx: PartyContext, name: str, labels: dict[str, str], **annotations: str) -> Manifest:
    return {
        "name": name,
        "namespace": ctx.party.domain_id,
        "labels": dict(sorted(labels.items())),
        "annotations": dict(
            sorted({ANNOTATION_INITIATOR: ctx.kd.initiator, **annotations}.items())
        ),
    }


def build_service(ctx: PartyContext, port: PortPlan) -> Manifest:
    """Return the headless Service of one Cluster- or Domain-scope port.

    ``sessionAffinityConfig`` is left out: Kuscia v1.1.0 sets it beside ``sessionAffinity:
    None``, which a real apiserver rejects (spec §4.2.4, §15 row 11). The two sticky-session
    annotations are kept.
    """
    labels = {**common_labels(ctx), LABEL_PORT_SCOPE: port.scope}
    if port.scope == SCOPE_CLUSTER:
        labels[LABEL_LOADBALANCER] = LOADBALANCER_DOMAIN_ROUTE
    annotations = {
        ANNOTATION_PROTOCOL: port.protocol,
        ANNOTATION_ACCESS_DOMAIN: ctx.party.access_domains.get(port.name, ""),
        ANNOTATION_STICKY_SESSION_COOKIE: STICKY_SESSION_COOKIE,
        ANNOTATION_STICKY_SESSION_TTL: STICKY_SESSION_TTL,
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(ctx, ctx.party.service_names[port.name], labels, **annotations),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "None",
            "sessionAffinity": "None",
            "selector": {LABEL_DEPLOYMENT_NAME: ctx.party.deploy_name},
            "ports": [
                {
                    "name": port.name,
                    "port": ctx.numbers[port.name],
                    "protocol": "TCP",
                    "targetPort": port.name,
                }
            ],
        },
    }


def build_configmap(ctx: PartyContext) -> Manifest:
    """Return the ``<deploy>-configtemplate`` ConfigMap."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(ctx, ctx.party.configmap_name, common_labels(ctx)),
        "data": dict(ctx.config_data),
    }


def selector_labels(ctx: PartyContext) -> dict[str, str]:
    """Return the Deployment's labels, which are also its selector and its pods' labels."""
    labels = {
        **common_labels(ctx),
        LABEL_COMMUNICATION_ROLE_SERVER: "true",
        LABEL_COMMUNICATION_ROLE_CLIENT: "true",
    }
    if ctx.kd.app_type:
        labels[LABEL_KUSCIA_DEPLOYMENT_APP_TYPE] = ctx.kd.app_type
    return dict(sorted(labels.items()))


def build_deployment(ctx: PartyContext) -> Manifest:
    """Return the party's Deployment."""
    labels = selector_labels(ctx)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(ctx, ctx.party.deploy_name, labels),
        "spec": {
            "replicas": ctx.party.replicas,
            "selector": {"matchLabels": labels},
            "strategy": _copied(dict(ctx.party.strategy or DEFAULT_STRATEGY)),
            "template": {
                "metadata": {"labels": labels, **_pod_annotations(ctx)},
                "spec": _pod_spec(ctx),
            },
        },
    }


def _has_config_mounts(ctx: PartyContext) -> bool:
    return any(c.get("configVolumeMounts") for c in ctx.party.pod_spec.get("containers") or [])


def _pod_annotations(ctx: PartyContext) -> dict[str, dict[str, str]]:
    annotations: dict[str, str] = {}
    image_id = ctx.party.app_image.body["spec"]["image"].get("id", "")
    if image_id:
        annotations[ANNOTATION_IMAGE_ID] = image_id
    for container in ctx.party.pod_spec.get("containers") or []:
        probe = container.get("metricProbe") or {}
        if probe.get("path") and probe.get("port"):
            annotations[ANNOTATION_SHOULD_BE_SCRAPED] = "true"
            annotations[ANNOTATION_METRIC_PATH] = probe["path"]
            annotations[ANNOTATION_METRIC_PORT] = str(ctx.numbers[probe["port"]])
    if _has_config_mounts(ctx) and ctx.profile is Profile.KUSCIA:
        annotations[ANNOTATION_CONFIG_TEMPLATE_VOLUMES] = CONFIG_TEMPLATE_VOLUME
    return {"annotations": dict(sorted(annotations.items()))} if annotations else {}


def _pod_spec(ctx: PartyContext) -> Manifest:
    spec: Manifest = {}
    affinity = build_affinity(ctx)
    if affinity:
        spec["affinity"] = affinity
    spec["automountServiceAccountToken"] = False
    spec["containers"] = [
        build_container(ctx, c) for c in ctx.party.pod_spec.get("containers") or []
    ]
    if ctx.profile is Profile.KUSCIA:
        spec["nodeSelector"] = {LABEL_NODE_NAMESPACE: ctx.party.domain_id}
        spec["schedulerName"] = (
            f"{ctx.party.domain_id}-{KUSCIA_SCHEDULER}"
            if ctx.domain.namespace_is_partner
            else KUSCIA_SCHEDULER
        )
        spec["tolerations"] = [
            {"key": TOLERATION_AGENT, "operator": "Exists", "effect": "NoSchedule"}
        ]
    if _has_config_mounts(ctx):
        spec["volumes"] = [
            {"name": CONFIG_TEMPLATE_VOLUME, "configMap": {"name": ctx.party.configmap_name}}
        ]
    return spec


def build_affinity(ctx: PartyContext) -> Manifest:
    """Return the pod affinity: ``buildAffinity`` / ``buildDefaultPodAntiAffinity``.

    A template affinity is kept, but every pod (anti-)affinity term's ``labelSelector`` is
    replaced by one matching this party's pods. Without one, pods of the party prefer
    different nodes, unless the KD's ``affinity-mode`` annotation is ``none``.
    """
    own_pods = {"matchLabels": {LABEL_DEPLOYMENT_NAME: ctx.party.deploy_name}}
    affinity = _copied(ctx.party.pod_spec.get("affinity"))
    if affinity is not None:  # even an empty one: Kuscia tests the pointer, not the content
        for kind in ("podAffinity", "podAntiAffinity"):
            rules = affinity.get(kind) or {}
            for term in rules.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
                term["labelSelector"] = _copied(own_pods)
            for weighted in rules.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
                weighted.setdefault("podAffinityTerm", {})["labelSelector"] = _copied(own_pods)
        return affinity
    if ctx.kd.affinity_mode == AFFINITY_MODE_NONE:
        return {}
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": own_pods,
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }


def build_container(ctx: PartyContext, source: KusciaContainer) -> Manifest:
    """Return one pod container from an AppImage container (party resources merged in)."""
    image = ctx.party.app_image.body["spec"]["image"]
    container: Manifest = {"name": source["name"], "image": f"{image['name']}:{image['tag']}"}
    for key in ("command", "args", "workingDir"):
        if source.get(key):
            container[key] = _copied(source[key])
    own_ports = [p for p in ctx.party.ports if p.container == source["name"]]
    if own_ports:
        container["ports"] = [
            {"name": p.name, "containerPort": ctx.numbers[p.name], "protocol": "TCP"}
            for p in own_ports
        ]
    if source.get("envFrom"):
        container["envFrom"] = _copied(source["envFrom"])
    container["env"] = [*_copied(source.get("env") or []), *_kuscia_env(ctx)]
    if source.get("resources"):
        container["resources"] = _copied(source["resources"])
    mounts = source.get("configVolumeMounts") or []
    if mounts:
        container["volumeMounts"] = [
            {"name": CONFIG_TEMPLATE_VOLUME, "mountPath": m["mountPath"], "subPath": m["subPath"]}
            for m in mounts
        ]
    for probe in _PROBES:
        if source.get(probe):
            container[probe] = _probe(ctx, source[probe])  # type: ignore[literal-required]
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    container["imagePullPolicy"] = source.get("imagePullPolicy") or "IfNotPresent"
    if source.get("securityContext"):
        container["securityContext"] = _copied(source["securityContext"])
    return container


def _probe(ctx: PartyContext, probe: Mapping[str, Any]) -> Manifest:
    """Copy a probe; in the plain profile a numeric port equal to a declared one follows it.

    Kuscia copies probes verbatim, so a numeric probe port keeps the AppImage number even when
    the container listens on an allocated one (spec §4.4.4); that is kept in the kuscia profile.
    """
    result = _copied(dict(probe))
    if ctx.profile is not Profile.PLAIN:
        return result
    by_declared = {p.declared: ctx.numbers[p.name] for p in ctx.party.ports if p.declared}
    for handler in _PROBE_HANDLERS:
        action = result.get(handler)
        if isinstance(action, dict) and isinstance(action.get("port"), int):
            action["port"] = by_declared.get(action["port"], action["port"])
    return result


def _kuscia_env(ctx: PartyContext) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in kuscia_env_values(ctx)]


def kuscia_env_values(ctx: PartyContext) -> Iterator[tuple[str, str]]:
    """Yield the env Kuscia appends to every container, in the controller's order."""
    yield ENV_DOMAIN_ID, ctx.party.domain_id
    yield ENV_CLUSTER_DEFINE, ctx.cluster_define
    yield ENV_ALLOCATED_PORTS, allocated_ports(ctx.party, ctx.numbers)
    yield ENV_INPUT_CONFIG, ctx.kd.input_config
    for port in ctx.party.ports:
        yield (
            ENV_PORT_NUMBER.format(port.name.replace("-", "_").upper()),
            str(ctx.numbers[port.name]),
        )
    if ctx.kd.is_serving:
        yield ENV_SERVING_ID, ctx.kd.name
