"""kdgen.manifests against spec §4.2.4, §4.3, §4.4 and the profile decisions of §15.

The input builders are shared with ``test_plan.py``.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from kdgen.appconfig import cluster_define, cluster_define_parties
from kdgen.manifests import (
    PartyContext,
    build_affinity,
    build_configmap,
    build_container,
    build_deployment,
    build_party_objects,
    build_service,
)
from kdgen.model import DomainFacts, Inventory, PortMode, Profile
from kdgen.ports import assign_ports, party_numbers
from tests.test_plan import app_image, container, kd, ok_plan, party, port, template

UID = "11111111-2222-3333-4444-555555555555"
INVENTORY = Inventory(kd_uids={"kd": UID})
COMMON = {
    "kuscia.secretflow/controller": "KusciaDeployment",
    "kuscia.secretflow/deployment-name": "kd",
    "kuscia.secretflow/kd-name": "kd",
    "kuscia.secretflow/kd-uid": UID,
    "kuscia.secretflow/owner_namespace": "cross-domain",
}
SELECTOR = {
    "kuscia.secretflow/communication-role-client": "true",
    "kuscia.secretflow/communication-role-server": "true",
    **COMMON,
}
DEFAULT_AFFINITY = {
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"kuscia.secretflow/deployment-name": "kd"}},
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    }
}
KUSCIA_SCHEDULING = {
    "nodeSelector": {"kuscia.secretflow/namespace": "alice"},
    "schedulerName": "kuscia-scheduler",
    "tolerations": [
        {"key": "kuscia.secretflow/agent", "operator": "Exists", "effect": "NoSchedule"}
    ],
}


def context(
    kd_body: dict[str, Any],
    image: dict[str, Any],
    *,
    index: int = 0,
    profile: Profile = Profile.KUSCIA,
    inventory: Inventory = INVENTORY,
    ports: PortMode = PortMode.DECLARED,
) -> PartyContext:
    """Plan the KD and return the context of its ``index``-th party, as expand builds it."""
    plan = ok_plan(kd_body, image, inventory=inventory)
    assignment = assign_ports([plan], inventory, ports)
    party_plan = plan.parties[index]
    return PartyContext(
        kd=plan,
        party=party_plan,
        numbers=party_numbers(assignment, plan, party_plan),
        cluster_define=cluster_define(
            cluster_define_parties(plan, assignment, profile), party_plan
        ),
        profile=profile,
        domain=inventory.domain(party_plan.domain_id),
        config_data=dict(image["spec"].get("configTemplates") or {}),
    )


def simple(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return app_image("img", template("t", "", *containers), **spec)


# --- Service (spec §4.2.4) --------------------------------------------------------------------


def test_build_service_cluster_scope() -> None:
    image = simple(container("c", port("svc", 8080, scope="Cluster", protocol="GRPC")))
    ctx = context(kd(party("alice"), party("bob")), image)
    assert build_service(ctx, ctx.party.ports[0]) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kd-svc",
            "namespace": "alice",
            "labels": {
                **COMMON,
                "kuscia.secretflow/loadbalancer": "domainroute",
                "kuscia.secretflow/port-scope": "Cluster",
            },
            "annotations": {
                "kuscia.secretflow/access-domain": "alice,bob",
                "kuscia.secretflow/initiator": "alice",
                "kuscia.secretflow/protocol": "GRPC",
                "kuscia.secretflow/sticky-session-cookie": "KUSCIA_SESSION",
                "kuscia.secretflow/sticky-session-ttl": "86400s",
            },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "None",
            "sessionAffinity": "None",
            "selector": {"kuscia.secretflow/deployment-name": "kd"},
            "ports": [{"name": "svc", "port": 8080, "protocol": "TCP", "targetPort": "svc"}],
        },
    }


def test_build_service_domain_scope() -> None:
    image = simple(container("c", port("http", 80, scope="Domain")))
    ctx = context(kd(party("alice"), party("bob")), image, index=1)
    service = build_service(ctx, ctx.party.ports[0])
    assert service["metadata"]["namespace"] == "bob"
    assert service["metadata"]["labels"] == {**COMMON, "kuscia.secretflow/port-scope": "Domain"}
    assert service["metadata"]["annotations"]["kuscia.secretflow/access-domain"] == ""
    assert service["metadata"]["annotations"]["kuscia.secretflow/protocol"] == "HTTP"


def test_build_service_uses_the_assigned_number() -> None:
    image = simple(container("c", port("http", 80, scope="Domain")))
    ctx = context(kd(), image, ports=PortMode.ALLOCATED)
    [spec_port] = build_service(ctx, ctx.party.ports[0])["spec"]["ports"]
    assert spec_port == {
        "name": "http",
        "port": ctx.numbers["http"],
        "protocol": "TCP",
        "targetPort": "http",
    }
    assert 20000 <= spec_port["port"] <= 32766


# --- ConfigMap (spec §4.3) --------------------------------------------------------------------


def test_build_configmap_holds_the_raw_templates() -> None:
    image = simple(container("c"), configTemplates={"b.conf": "{{.B}}\n", "a.conf": "x"})
    ctx = context(kd(party("alice", "host")), image)
    assert build_configmap(ctx) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "kd-host-configtemplate",
            "namespace": "alice",
            "labels": {**COMMON, "kuscia.secretflow/deployment-name": "kd-host"},
            "annotations": {"kuscia.secretflow/initiator": "alice"},
        },
        "data": {"b.conf": "{{.B}}\n", "a.conf": "x"},
    }


# --- Deployment (spec §4.4) -------------------------------------------------------------------


def test_build_deployment_whole_object() -> None:
    image = simple(
        container(
            "app",
            port("http", 80, scope="Domain"),
            configVolumeMounts=[{"mountPath": "/etc/app.conf", "subPath": "app.conf"}],
        ),
        configTemplates={"app.conf": "x"},
    )
    image["spec"]["image"]["id"] = "sha256:abc"
    ctx = context(kd(labels={"kuscia.secretflow/app-type": "serving"}), image)
    labels = {**SELECTOR, "kuscia.secretflow/app-type": "serving"}
    assert build_deployment(ctx) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "kd",
            "namespace": "alice",
            "labels": labels,
            "annotations": {"kuscia.secretflow/initiator": "alice"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "kuscia.secretflow/config-template-volumes": "config-template",
                        "kuscia.secretflow/image-id": "sha256:abc",
                    },
                },
                "spec": {
                    "affinity": DEFAULT_AFFINITY,
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "app",
                            "image": "repo/app:1.0",
                            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                            "env": [
                                {"name": "KUSCIA_DOMAIN_ID", "value": "alice"},
                                {"name": "CLUSTER_DEFINE", "value": ctx.cluster_define},
                                {
                                    "name": "ALLOCATED_PORTS",
                                    "value": '{"ports":[{"name":"http","port":80,'
                                    '"scope":"Domain","protocol":"HTTP"}]}',
                                },
                                {"name": "INPUT_CONFIG", "value": ""},
                                {"name": "KUSCIA_PORT_HTTP_NUMBER", "value": "80"},
                                {"name": "SERVING_ID", "value": "kd"},
                            ],
                            "volumeMounts": [
                                {
                                    "name": "config-template",
                                    "mountPath": "/etc/app.conf",
                                    "subPath": "app.conf",
                                }
                            ],
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "imagePullPolicy": "IfNotPresent",
                        }
                    ],
                    **KUSCIA_SCHEDULING,
                    "volumes": [
                        {"name": "config-template", "configMap": {"name": "kd-configtemplate"}}
                    ],
                },
            },
        },
    }


def test_build_deployment_plain_profile_drops_kuscia_scheduling() -> None:
    image = simple(
        container("app", configVolumeMounts=[{"mountPath": "/a", "subPath": "a"}]),
        configTemplates={"a": "x"},
    )
    kuscia = build_deployment(context(kd(), image))["spec"]["template"]
    plain = build_deployment(context(kd(), image, profile=Profile.PLAIN))["spec"]["template"]
    assert plain["metadata"] == {"labels": SELECTOR}
    assert plain["spec"] == {k: v for k, v in kuscia["spec"].items() if k not in KUSCIA_SCHEDULING}
    assert kuscia["metadata"]["annotations"] == {
        "kuscia.secretflow/config-template-volumes": "config-template"
    }


@pytest.mark.parametrize(
    ("facts", "want"),
    [
        pytest.param(DomainFacts(), "kuscia-scheduler", id="self-namespace"),
        pytest.param(
            DomainFacts(namespace_is_partner=True),
            "alice-kuscia-scheduler",
            id="namespace-labelled-partner",
        ),
    ],
)
def test_scheduler_name(facts: DomainFacts, want: str) -> None:
    inventory = Inventory(domains={"alice": facts})
    ctx = context(kd(), simple(container("c")), inventory=inventory)
    assert build_deployment(ctx)["spec"]["template"]["spec"]["schedulerName"] == want


@pytest.mark.parametrize(
    ("party_template", "want_replicas", "want_strategy"),
    [
        pytest.param(
            {"replicas": 3, "strategy": {"type": "Recreate"}},
            3,
            {"type": "Recreate"},
            id="party-overrides",
        ),
        pytest.param(
            {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
            1,
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            id="strategy-as-given",
        ),
    ],
)
def test_replicas_and_strategy(party_template: Any, want_replicas: int, want_strategy: Any) -> None:
    ctx = context(kd(party("alice", template=party_template)), simple(container("c")))
    spec = build_deployment(ctx)["spec"]
    assert (spec["replicas"], spec["strategy"]) == (want_replicas, want_strategy)


def test_pod_without_annotations_or_volumes() -> None:
    template_ = build_deployment(context(kd(), simple(container("c"))))["spec"]["template"]
    assert template_["metadata"] == {"labels": SELECTOR}
    assert "volumes" not in template_["spec"]


def test_config_mounts_without_templates_still_mount_the_volume() -> None:
    """Spec §4.3 edge: the volume points at a ConfigMap nobody creates."""
    image = simple(container("c", configVolumeMounts=[{"mountPath": "/a", "subPath": "a"}]))
    ctx = context(kd(), image)
    assert build_deployment(ctx)["spec"]["template"]["spec"]["volumes"] == [
        {"name": "config-template", "configMap": {"name": "kd-configtemplate"}}
    ]
    assert [o["kind"] for o in build_party_objects(ctx)] == ["Deployment"]


@pytest.mark.parametrize(
    ("probes", "want"),
    [
        pytest.param(
            [{"path": "/metrics", "port": "metrics"}, {}],
            {"path": "/metrics", "port": "9091"},
            id="one-container",
        ),
        pytest.param(
            [{"path": "/a", "port": "metrics"}, {"path": "/b", "port": "admin"}],
            {"path": "/b", "port": "9092"},
            id="later-container-overwrites",
        ),
        pytest.param(
            [{"path": "", "port": "metrics"}, {"path": "/b"}],
            None,
            id="path-and-port-both-needed",
        ),
    ],
)
def test_metric_annotations(probes: list[Any], want: Any) -> None:
    first: dict[str, Any] = {"metricProbe": probes[0]} if probes[0] else {}
    second: dict[str, Any] = {"metricProbe": probes[1]} if probes[1] else {}
    image = simple(
        container("a", port("metrics", 9091), **first),
        container("b", port("admin", 9092), **second),
    )
    annotations = build_deployment(context(kd(), image))["spec"]["template"]["metadata"].get(
        "annotations"
    )
    if want is None:
        assert annotations is None
    else:
        assert annotations == {
            "kuscia.secretflow/metric_path": want["path"],
            "kuscia.secretflow/metric_port": want["port"],
            "kuscia.secretflow/should_be_scraped": "true",
        }


# --- affinity (spec §4.4.3) -------------------------------------------------------------------

OTHER_SELECTOR = {"matchLabels": {"app": "x"}}
OWN_SELECTOR = {"matchLabels": {"kuscia.secretflow/deployment-name": "kd"}}


def _affinity(selector: Any) -> dict[str, Any]:
    term = {"labelSelector": selector, "topologyKey": "zone", "namespaces": ["a"]}
    return {
        "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5}]},
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [copy.deepcopy(term)],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "podAffinityTerm": copy.deepcopy(term)}
            ],
        },
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [copy.deepcopy(term)],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 20, "podAffinityTerm": copy.deepcopy(term)}
            ],
        },
    }


@pytest.mark.parametrize(
    ("appimage_affinity", "party_affinity", "annotations", "want"),
    [
        pytest.param(None, None, {}, DEFAULT_AFFINITY, id="default-anti-affinity"),
        pytest.param(
            None,
            None,
            {"kuscia.secretflow/affinity-mode": "anti-affinity"},
            DEFAULT_AFFINITY,
            id="other-mode-default",
        ),
        pytest.param(None, None, {"kuscia.secretflow/affinity-mode": "none"}, {}, id="mode-none"),
        pytest.param(
            _affinity(OTHER_SELECTOR),
            None,
            {"kuscia.secretflow/affinity-mode": "none"},
            _affinity(OWN_SELECTOR),
            id="appimage-affinity-selectors-rewritten",
        ),
        pytest.param(
            {"podAffinity": {}},
            _affinity(None),
            {},
            _affinity(OWN_SELECTOR),
            id="party-affinity-replaces-appimage",
        ),
        pytest.param({}, None, {}, {}, id="empty-appimage-affinity-means-no-default"),
        pytest.param(
            _affinity(OTHER_SELECTOR), {}, {}, {}, id="empty-party-affinity-replaces-appimage"
        ),
    ],
)
def test_build_affinity(
    appimage_affinity: Any, party_affinity: Any, annotations: Any, want: Any
) -> None:
    image = simple(container("c"))
    if appimage_affinity is not None:
        image["spec"]["deployTemplates"][0]["spec"]["affinity"] = appimage_affinity
    party_body = party("alice")
    if party_affinity is not None:
        party_body["template"] = {"spec": {"affinity": party_affinity}}
    ctx = context(kd(party_body, annotations=annotations), image)
    assert build_affinity(ctx) == want
    pod_spec = build_deployment(ctx)["spec"]["template"]["spec"]
    assert pod_spec.get("affinity") == (want or None)


# --- containers (spec §4.4.4-§4.4.6) -----------------------------------------------------------

FULL = container(
    "full",
    port("http", 8080, scope="Domain"),
    port("admin", 8081),
    command=["run"],
    args=["--x"],
    workingDir="/work",
    env=[
        {"name": "A", "value": "1"},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ],
    envFrom=[{"configMapRef": {"name": "cm"}, "prefix": "P_"}],
    resources={"limits": {"cpu": "1"}},
    livenessProbe={"httpGet": {"path": "/l", "port": 8080}},
    readinessProbe={"tcpSocket": {"port": "http"}},
    startupProbe={"grpc": {"port": 9999}, "periodSeconds": 1},
    imagePullPolicy="Always",
    securityContext={"runAsUser": 1000},
)
SIDE = container("side", port("brpc-builtin", 8082, scope="Cluster"))


def test_build_container_kuscia_profile() -> None:
    ctx = context(kd(), simple(FULL, SIDE))
    built = build_container(ctx, ctx.party.pod_spec["containers"][0])
    assert built == {
        "name": "full",
        "image": "repo/app:1.0",
        "command": ["run"],
        "args": ["--x"],
        "workingDir": "/work",
        "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "admin", "containerPort": 8081, "protocol": "TCP"},
        ],
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "P_"}],
        "env": [
            {"name": "A", "value": "1"},
            {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "KUSCIA_DOMAIN_ID", "value": "alice"},
            {"name": "CLUSTER_DEFINE", "value": ctx.cluster_define},
            {
                "name": "ALLOCATED_PORTS",
                "value": '{"ports":[{"name":"http","port":8080,"scope":"Domain","protocol":"HTTP"},'
                '{"name":"admin","port":8081,"scope":"Local","protocol":"HTTP"},'
                '{"name":"brpc-builtin","port":8082,"scope":"Cluster","protocol":"HTTP"}]}',
            },
            {"name": "INPUT_CONFIG", "value": ""},
            {"name": "KUSCIA_PORT_HTTP_NUMBER", "value": "8080"},
            {"name": "KUSCIA_PORT_ADMIN_NUMBER", "value": "8081"},
            {"name": "KUSCIA_PORT_BRPC_BUILTIN_NUMBER", "value": "8082"},
        ],
        "resources": {"limits": {"cpu": "1"}},
        "livenessProbe": {"httpGet": {"path": "/l", "port": 8080}},
        "readinessProbe": {"tcpSocket": {"port": "http"}},
        "startupProbe": {"grpc": {"port": 9999}, "periodSeconds": 1},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "imagePullPolicy": "Always",
        "securityContext": {"runAsUser": 1000},
    }


def test_every_container_gets_every_port_env_but_only_its_own_ports() -> None:
    ctx = context(kd(), simple(FULL, SIDE))
    side = build_container(ctx, ctx.party.pod_spec["containers"][1])
    assert side["ports"] == [{"name": "brpc-builtin", "containerPort": 8082, "protocol": "TCP"}]
    assert [e["name"] for e in side["env"]] == [
        "KUSCIA_DOMAIN_ID",
        "CLUSTER_DEFINE",
        "ALLOCATED_PORTS",
        "INPUT_CONFIG",
        "KUSCIA_PORT_HTTP_NUMBER",
        "KUSCIA_PORT_ADMIN_NUMBER",
        "KUSCIA_PORT_BRPC_BUILTIN_NUMBER",
    ]
    assert side["imagePullPolicy"] == "IfNotPresent"
    assert "workingDir" not in side  # "" is omitted, as Go's omitempty does


def test_plain_profile_points_numeric_probe_ports_at_assigned_numbers() -> None:
    ctx = context(kd(), simple(FULL, SIDE), profile=Profile.PLAIN, ports=PortMode.ALLOCATED)
    built = build_container(ctx, ctx.party.pod_spec["containers"][0])
    assert (built["livenessProbe"], built["readinessProbe"], built["startupProbe"]) == (
        {"httpGet": {"path": "/l", "port": ctx.numbers["http"]}},
        {"tcpSocket": {"port": "http"}},
        {"grpc": {"port": 9999}, "periodSeconds": 1},
    )


def test_kuscia_profile_keeps_numeric_probe_ports() -> None:
    ctx = context(kd(), simple(FULL, SIDE), ports=PortMode.ALLOCATED)
    built = build_container(ctx, ctx.party.pod_spec["containers"][0])
    assert built["livenessProbe"] == {"httpGet": {"path": "/l", "port": 8080}}
    assert built["ports"][0]["containerPort"] == ctx.numbers["http"] != 8080


def test_image_with_empty_tag() -> None:
    image = simple(container("c"))
    image["spec"]["image"]["tag"] = ""
    ctx = context(kd(), image)
    assert build_container(ctx, ctx.party.pod_spec["containers"][0])["image"] == "repo/app:"


def test_input_config_is_verbatim_and_serving_id_only_for_serving() -> None:
    body = kd(labels={"kuscia.secretflow/app-type": "scql"})
    body["spec"]["inputConfig"] = '{"a": [1, 2]}'
    ctx = context(body, simple(container("c")))
    env = build_container(ctx, ctx.party.pod_spec["containers"][0])["env"]
    assert env[3] == {"name": "INPUT_CONFIG", "value": '{"a": [1, 2]}'}
    assert [e["name"] for e in env] == [
        "KUSCIA_DOMAIN_ID",
        "CLUSTER_DEFINE",
        "ALLOCATED_PORTS",
        "INPUT_CONFIG",
    ]


def test_party_resources_reach_the_container() -> None:
    party_body = party(
        "alice",
        template={
            "spec": {"containers": [{"name": "full", "resources": {"requests": {"cpu": "2"}}}]}
        },
    )
    ctx = context(kd(party_body), simple(FULL, SIDE))
    built = build_container(ctx, ctx.party.pod_spec["containers"][0])
    assert built["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}


# --- the objects of a party -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "want"),
    [
        pytest.param(
            {"a": "x"},
            [
                ("Service", "kd-http"),
                ("Service", "kd-brpc-builtin"),
                ("ConfigMap", "kd-configtemplate"),
                ("Deployment", "kd"),
            ],
            id="with-templates",
        ),
        pytest.param(
            {},
            [("Service", "kd-http"), ("Service", "kd-brpc-builtin"), ("Deployment", "kd")],
            id="no-templates-no-configmap",
        ),
    ],
)
def test_build_party_objects(config: dict[str, str], want: list[tuple[str, str]]) -> None:
    ctx = replace(context(kd(), simple(FULL, SIDE)), config_data=config)
    assert [(o["kind"], o["metadata"]["name"]) for o in build_party_objects(ctx)] == want
