"""kdgen.plan against spec §1.4-§1.5, §3, §4.1-§4.2 and Kuscia's util_test.go, appimages_test.go."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from kdgen.errors import Problem
from kdgen.load import Document, Inputs
from kdgen.model import DomainFacts, Inventory
from kdgen.plan import (
    KdPlan,
    PortPlan,
    default_kd_uid,
    generate_port_access_domains,
    merge_container_ports,
    merge_deploy_template,
    plan_kusciadeployment,
    select_deploy_template,
)
from kdgen.validate import validate

KD_SOURCE = "kd.yaml"
KD_RESOURCE = "KusciaDeployment cross-domain/kd"


# --- input builders -------------------------------------------------------------------------


def port(name: str, number: int | None = None, **fields: str) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, **fields}
    if number is not None:
        body["port"] = number
    return body


def container(name: str = "main", *ports: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "workingDir": "", **fields}
    if ports:
        body["ports"] = list(ports)
    return body


def template(name: str = "t", role: str | None = None, *containers: dict[str, Any], **fields: Any):
    body: dict[str, Any] = {"name": name, **fields}
    if role is not None:
        body["role"] = role
    body["spec"] = {"containers": list(containers or [container()])}
    return body


def app_image(name: str = "img", *templates: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "AppImage",
        "metadata": {"name": name},
        "spec": {
            "image": {"name": "repo/app", "tag": "1.0"},
            "deployTemplates": list(templates) if templates else [template()],
            **spec,
        },
    }


def party(domain: str, role: str = "", image: str = "img", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"domainID": domain, "appImageRef": image, **fields}
    if role:
        body["role"] = role
    return body


def kd(*parties: dict[str, Any], initiator: str = "alice", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "KusciaDeployment",
        "metadata": {"name": "kd", "namespace": "cross-domain", **metadata},
        "spec": {
            "initiator": initiator,
            "inputConfig": "",
            "parties": list(parties) if parties else [party("alice")],
        },
    }


def plan_of(
    kd_body: dict[str, Any], *images: dict[str, Any], inventory: Inventory | None = None
) -> tuple[KdPlan | None, list[Problem]]:
    """Default and check the inputs as the pipeline does, then plan the KD."""
    inputs = Inputs(
        kusciadeployments=(Document(KD_SOURCE, 1, kd_body),),
        app_images=tuple(
            Document("img.yaml", i, body) for i, body in enumerate(images or (app_image(),), 1)
        ),
    )
    checked = validate(inputs)
    assert [p for p in checked.problems if p.severity == "error"] == []
    return plan_kusciadeployment(
        checked.kusciadeployments[0], checked.app_images, inventory or Inventory()
    )


def ok_plan(kd_body: dict[str, Any], *images: dict[str, Any], **kwargs: Any) -> KdPlan:
    plan, problems = plan_of(kd_body, *images, **kwargs)
    assert plan is not None, problems
    return plan


def kd_problem(field: str, message: str, reason: str = "", **extra: Any) -> Problem:
    return Problem(
        message,
        source=KD_SOURCE,
        doc_index=1,
        resource=KD_RESOURCE,
        field=field,
        reason=reason,
        **extra,
    )


# --- SelectDeployTemplate (spec §1.4; appimages_test.go Test_selectDeployTemplate) ------------

CASE_1 = [
    {"name": "abc", "role": "server", "replicas": 0},
    {"name": "abc", "role": "server,client", "replicas": 1},
    {"name": "abc", "role": "", "replicas": 2},
]
CASE_2 = [
    {"name": "abc", "role": "server", "replicas": 0},
    {"name": "abc", "role": "server,client,", "replicas": 1},
]
TWO_DEFAULTS = [
    {"name": "first-default", "role": "", "replicas": 0},
    {"name": "server", "role": "server", "replicas": 1},
    {"name": "last-default", "replicas": 2},
]


@pytest.mark.parametrize(
    ("templates", "role", "want_replicas"),
    [
        pytest.param(CASE_1, "server", 0, id="kuscia-1-server-first-match"),
        pytest.param(CASE_1, "client", 1, id="kuscia-1-client-in-list"),
        pytest.param(CASE_1, "", 2, id="kuscia-1-empty-role-matches-empty"),
        pytest.param(CASE_1, "not-exist", 2, id="kuscia-1-fallback-to-empty-role"),
        pytest.param(CASE_2, "", 0, id="kuscia-2-empty-role-takes-first"),
        pytest.param(CASE_2, "client", 1, id="trailing-comma-stripped"),
        pytest.param(TWO_DEFAULTS, "", 0, id="empty-role-first-empty-template-at-once"),
        pytest.param(TWO_DEFAULTS, "other", 2, id="last-empty-role-template-is-fallback"),
        pytest.param(
            [{"name": "a", "role": "x"}, {"name": "b", "role": "a,,b", "replicas": 7}],
            "",
            7,
            id="empty-element-in-list-matches-empty-role",
        ),
        pytest.param(
            [{"name": "a", "role": ",server", "replicas": 3}], "server", 3, id="leading-comma"
        ),
    ],
)
def test_select_deploy_template(templates: Any, role: str, want_replicas: int) -> None:
    chosen, error = select_deploy_template(templates, role)
    assert error == ""
    assert chosen is not None
    assert chosen["replicas"] == want_replicas


@pytest.mark.parametrize(
    ("templates", "role", "want"),
    [
        pytest.param(
            CASE_2, "not-exist", 'not found deploy template for role "not-exist"', id="k-2"
        ),
        pytest.param([], "server", "deploy templates are empty", id="kuscia-empty-list"),
        pytest.param([], "", "deploy templates are empty", id="empty-list-empty-role"),
        pytest.param(
            [{"name": "a", "role": "Server"}],
            "server",
            'not found deploy template for role "server"',
            id="case-sensitive",
        ),
    ],
)
def test_select_deploy_template_fails(templates: Any, role: str, want: str) -> None:
    assert select_deploy_template(templates, role) == (None, want)


# --- mergeContainersPorts (spec §4.2.1) -------------------------------------------------------


def test_merge_container_ports_keeps_declaration_order_across_containers() -> None:
    containers: Any = [
        container("a", port("z-last", 3, scope="Cluster", protocol="GRPC")),
        container("b"),
        container(
            "c",
            port("b-first", 1, scope="Local", protocol="HTTP"),
            port("a-mid", None, scope="Domain", protocol="HTTP"),
        ),
    ]
    assert merge_container_ports(containers) == (
        (
            PortPlan("z-last", 3, "Cluster", "GRPC", "a"),
            PortPlan("b-first", 1, "Local", "HTTP", "c"),
            PortPlan("a-mid", None, "Domain", "HTTP", "c"),
        ),
        "",
    )


@pytest.mark.parametrize(
    "containers",
    [
        pytest.param(
            [
                container(
                    "a",
                    port("p", 1, scope="Local", protocol="HTTP"),
                    port("p", 1, scope="Local", protocol="HTTP"),
                )
            ],
            id="same-container",
        ),
        pytest.param(
            [
                container("a", port("p", 1, scope="Local", protocol="HTTP")),
                container("b", port("p", 2, scope="Domain", protocol="HTTP")),
            ],
            id="two-containers",
        ),
    ],
)
def test_merge_container_ports_duplicate(containers: Any) -> None:
    assert merge_container_ports(containers) == ((), "p")


@pytest.mark.parametrize(
    ("containers", "want"),
    [
        pytest.param([], (), id="no-containers"),
        pytest.param([container("test")], (), id="no-ports"),
    ],
)
def test_merge_container_ports_empty(containers: Any, want: tuple[PortPlan, ...]) -> None:
    assert merge_container_ports(containers) == (want, "")


@pytest.mark.parametrize(
    ("scope", "serviced"),
    [
        pytest.param("Cluster", True, id="cluster"),
        pytest.param("Domain", True, id="domain"),
        pytest.param("Local", False, id="local"),
        pytest.param("domain", False, id="lower-case-is-not-serviced"),
    ],
)
def test_port_plan_is_serviced(scope: str, serviced: bool) -> None:
    assert PortPlan("p", 1, scope, "HTTP", "c").is_serviced is serviced


# --- mergeDeployTemplate (spec §1.5) ----------------------------------------------------------

APP_RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
APP_AFFINITY: dict[str, Any] = {
    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}
}


def _app_template() -> Any:
    return {
        "name": "t",
        "spec": {
            "restartPolicy": "Never",
            "affinity": copy.deepcopy(APP_AFFINITY),
            "containers": [
                container("main", resources=copy.deepcopy(APP_RESOURCES), command=["run"]),
                container("side", resources={"requests": {"cpu": "50m"}}),
            ],
        },
    }


def _party_template(**spec: Any) -> Any:
    return {"domainID": "alice", "appImageRef": "img", "template": {"spec": spec}}


@pytest.mark.parametrize(
    ("party_spec", "want_main", "want_side", "want_affinity"),
    [
        pytest.param(
            {"containers": [{"name": "main", "resources": {"requests": {"cpu": "100m"}}}]},
            {"requests": {"cpu": "100m"}, "limits": APP_RESOURCES["limits"]},
            {"requests": {"cpu": "50m"}},
            APP_AFFINITY,
            id="requests-replaced-whole-memory-dropped",
        ),
        pytest.param(
            {"containers": [{"name": "main", "resources": {"limits": {"memory": "3Gi"}}}]},
            {"requests": APP_RESOURCES["requests"], "limits": {"memory": "3Gi"}},
            {"requests": {"cpu": "50m"}},
            APP_AFFINITY,
            id="limits-replaced-independently",
        ),
        pytest.param(
            {"containers": [{"name": "main", "resources": {"requests": {}, "limits": {}}}]},
            APP_RESOURCES,
            {"requests": {"cpu": "50m"}},
            APP_AFFINITY,
            id="empty-maps-keep-appimage",
        ),
        pytest.param(
            {"containers": [{"name": "side", "resources": {"limits": {"cpu": "1"}}}]},
            APP_RESOURCES,
            {"requests": {"cpu": "50m"}, "limits": {"cpu": "1"}},
            APP_AFFINITY,
            id="second-container-gets-limits",
        ),
        pytest.param(
            {"containers": [{"name": "serving", "resources": {"requests": {"cpu": "1m"}}}]},
            APP_RESOURCES,
            {"requests": {"cpu": "50m"}},
            APP_AFFINITY,
            id="unknown-container-ignored",
        ),
        pytest.param(
            {"affinity": {"podAffinity": {}}},
            APP_RESOURCES,
            {"requests": {"cpu": "50m"}},
            {"podAffinity": {}},
            id="affinity-replaced",
        ),
        pytest.param(
            {"affinity": {}},
            APP_RESOURCES,
            {"requests": {"cpu": "50m"}},
            {},
            id="empty-affinity-replaces-too",
        ),
    ],
)
def test_merge_deploy_template(
    party_spec: Any, want_main: Any, want_side: Any, want_affinity: Any
) -> None:
    app = _app_template()
    before = copy.deepcopy(app)
    merged: Any = merge_deploy_template(_party_template(**party_spec), app)
    assert merged == {
        "restartPolicy": "Never",
        "affinity": want_affinity,
        "containers": [
            container("main", resources=want_main, command=["run"]),
            container("side", resources=want_side),
        ],
    }
    assert app == before, "the AppImage template must not change"


def test_merge_deploy_template_ignores_everything_else_of_the_party() -> None:
    party_container = {
        "name": "main",
        "command": ["evil"],
        "args": ["x"],
        "env": [{"name": "A", "value": "1"}],
        "image": "other",
        "workingDir": "/tmp",
        "ports": [{"name": "extra", "port": 1}],
    }
    merged: Any = merge_deploy_template(
        _party_template(restartPolicy="Always", containers=[party_container]), _app_template()
    )
    assert merged == _app_template()["spec"]


# --- replicas and strategy (spec §1.5) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("party_template", "template_replicas", "want"),
    [
        pytest.param({"replicas": 3}, 2, 3, id="party-wins"),
        pytest.param({"replicas": 0}, 2, 0, id="party-zero-wins"),
        pytest.param({}, 2, 2, id="appimage-value"),
        pytest.param({}, 0, 0, id="appimage-explicit-zero-kept"),
        pytest.param({}, None, 1, id="default-one"),
    ],
)
def test_replicas(party_template: Any, template_replicas: int | None, want: int) -> None:
    fields = {} if template_replicas is None else {"replicas": template_replicas}
    plan = ok_plan(
        kd(party("alice", template=party_template)), app_image("img", template("t", None, **fields))
    )
    assert plan.parties[0].replicas == want


@pytest.mark.parametrize(
    ("party_template", "want"),
    [
        pytest.param({"strategy": {"type": "Recreate"}}, {"type": "Recreate"}, id="party-strategy"),
        pytest.param({}, None, id="unset-means-deployment-default"),
    ],
)
def test_strategy(party_template: Any, want: Any) -> None:
    plan = ok_plan(kd(party("alice", template=party_template)))
    assert plan.parties[0].strategy == want


# --- generatePortAccessDomains (spec §4.2.3, util_test.go TestGeneratePortAccessDomains) -------

ABC_PARTIES: Any = [
    {"domainID": "domain-a", "role": "server"},
    {"domainID": "domain-b", "role": "client"},
    {"domainID": "domain-c", "role": "client"},
]
ABC_PORTS = (
    PortPlan("port-10000", 10000, "Cluster", "HTTP", "c"),
    PortPlan("port-10001", 10001, "Domain", "HTTP", "c"),
)
ABC_POLICY = {
    "ingresses": [
        {"from": {"roles": ["client"]}, "ports": [{"port": "port-10000"}, {"port": "port-10001"}]},
        {"from": {"roles": ["client", "server"]}, "ports": [{"port": "port-10002"}]},
    ]
}


@pytest.mark.parametrize(
    ("parties", "ports", "policy", "want"),
    [
        pytest.param(
            ABC_PARTIES,
            ABC_PORTS,
            ABC_POLICY,
            {"port-10000": "domain-b,domain-c", "port-10001": "domain-b,domain-c"},
            id="kuscia-network-policy",
        ),
        pytest.param(
            ABC_PARTIES,
            (*ABC_PORTS, PortPlan("port-10002", 1, "Domain", "HTTP", "c")),
            ABC_POLICY,
            {
                "port-10000": "domain-b,domain-c",
                "port-10001": "domain-b,domain-c",
                "port-10002": "domain-a,domain-b,domain-c",
            },
            id="kuscia-network-policy-third-port",
        ),
        pytest.param(
            ABC_PARTIES,
            ABC_PORTS,
            None,
            {"port-10000": "domain-a,domain-b,domain-c", "port-10001": ""},
            id="kuscia-no-policy-cluster-port-only",
        ),
        pytest.param(
            [{"domainID": "zed"}, {"domainID": "alice"}, {"domainID": "zed", "role": "x"}],
            ABC_PORTS,
            None,
            {"port-10000": "zed,alice", "port-10001": ""},
            id="first-appearance-order-distinct",
        ),
        pytest.param(
            [{"domainID": "alice"}, {"domainID": "alice", "role": "x"}],
            ABC_PORTS,
            None,
            {"port-10000": "", "port-10001": ""},
            id="one-distinct-domain-is-empty",
        ),
        pytest.param(
            [{"domainID": "alice"}],
            ABC_PORTS,
            ABC_POLICY,
            {"port-10000": "", "port-10001": ""},
            id="single-party-always-empty",
        ),
        pytest.param(
            ABC_PARTIES,
            ABC_PORTS,
            {"ingresses": [{"from": {"roles": ["nobody"]}, "ports": [{"port": "port-10000"}]}]},
            {"port-10000": "", "port-10001": ""},
            id="policy-roles-without-parties",
        ),
        pytest.param(
            ABC_PARTIES,
            ABC_PORTS,
            {
                "ingresses": [
                    {"from": {"roles": ["server"]}, "ports": [{"port": "port-10001"}]},
                    {"from": {"roles": ["client"]}, "ports": [{"port": "port-10001"}]},
                ]
            },
            {"port-10000": "", "port-10001": "domain-a,domain-b,domain-c"},
            id="roles-of-several-ingresses-add-up",
        ),
    ],
)
def test_generate_port_access_domains(parties: Any, ports: Any, policy: Any, want: Any) -> None:
    app: Any = {"name": "t", "spec": {}}
    if policy is not None:
        app["networkPolicy"] = policy
    assert generate_port_access_domains(parties, ports, app) == want


# --- plan_kusciadeployment -------------------------------------------------------------------

SERVING_PORTS = (
    port("service", 53509, scope="Cluster"),
    port("internal", 53510, scope="Domain"),
    port("brpc-builtin", 53511, scope="Domain"),
    port("metrics", 53512),
)


def test_plan_names_and_ports_per_party() -> None:
    image = app_image("img", template("t", "", container("main", *SERVING_PORTS)))
    plan = ok_plan(kd(party("alice"), party("bob", "host", serviceNamePrefix="bob-svc")), image)
    alice, bob = plan.parties
    assert (alice.deploy_name, alice.configmap_name) == ("kd", "kd-configtemplate")
    assert (bob.deploy_name, bob.configmap_name) == ("kd-host", "kd-host-configtemplate")
    assert dict(alice.service_names) == {
        "service": "kd-service",
        "internal": "kd-internal",
        "brpc-builtin": "kd-brpc-builtin",
    }
    assert dict(bob.service_names) == {
        "service": "bob-svc-service",
        "internal": "bob-svc-internal",
        "brpc-builtin": "bob-svc-brpc-builtin",
    }
    assert alice.ports == (
        PortPlan("service", 53509, "Cluster", "HTTP", "main"),
        PortPlan("internal", 53510, "Domain", "HTTP", "main"),
        PortPlan("brpc-builtin", 53511, "Domain", "HTTP", "main"),
        PortPlan("metrics", 53512, "Local", "HTTP", "main"),
    )
    assert dict(alice.access_domains) == {
        "service": "alice,bob",
        "internal": "",
        "brpc-builtin": "",
    }
    assert [(p.index, p.domain_id, p.role, p.field) for p in plan.parties] == [
        (0, "alice", "", "spec.parties[0]"),
        (1, "bob", "host", "spec.parties[1]"),
    ]


def test_plan_metadata_values() -> None:
    plan = ok_plan(
        kd(
            labels={"kuscia.secretflow/app-type": "serving"},
            annotations={"kuscia.secretflow/affinity-mode": "none"},
        )
    )
    assert (plan.name, plan.initiator, plan.input_config) == ("kd", "alice", "")
    assert (plan.app_type, plan.is_serving, plan.affinity_mode) == ("serving", True, "none")


@pytest.mark.parametrize(
    ("labels", "want"),
    [
        pytest.param({"kuscia.secretflow/app-type": "scql"}, False, id="scql"),
        pytest.param({}, False, id="no-label"),
    ],
)
def test_plan_is_serving_only_for_serving(labels: Any, want: bool) -> None:
    assert ok_plan(kd(labels=labels)).is_serving is want


UID_ANNOTATION = "kdgen.kuscia.secretflow/kd-uid"
STAND_IN = str(uuid.uuid5(uuid.UUID("6f0b1c7e-4d52-5a8e-9c1d-2b7f3e9a0c44"), "cross-domain/kd"))


@pytest.mark.parametrize(
    ("metadata", "inventory", "want"),
    [
        pytest.param({}, Inventory(kd_uids={"kd": "inv-uid"}), "inv-uid", id="inventory"),
        pytest.param({}, Inventory(kd_uids={"other": "x"}), STAND_IN, id="uuid5-stand-in"),
        pytest.param({"uid": "live-uid"}, Inventory(), "live-uid", id="metadata-uid"),
        pytest.param(
            {"uid": "live-uid", "annotations": {UID_ANNOTATION: "pinned"}},
            Inventory(kd_uids={"kd": "inv-uid"}),
            "pinned",
            id="annotation-first",
        ),
        pytest.param(
            {"uid": "live-uid"},
            Inventory(kd_uids={"kd": "inv-uid"}),
            "inv-uid",
            id="then-inventory",
        ),
    ],
)
def test_plan_uid(metadata: dict[str, Any], inventory: Inventory, want: str) -> None:
    """The value Kuscia's generateService/ConfigMap/Deployment put in kd-uid: ``kd.UID``.

    Offline, the pins (annotation, Inventory) come before the export's ``metadata.uid``.
    """
    assert ok_plan(kd(**metadata), inventory=inventory).uid == want


def test_plan_uid_sources_that_disagree_warn() -> None:
    body = kd(uid="live-uid", annotations={UID_ANNOTATION: "pinned"})
    plan, problems = plan_of(body, inventory=Inventory(kd_uids={"kd": "pinned"}))
    assert plan is not None
    assert plan.uid == "pinned"
    assert problems == [
        kd_problem(
            "metadata.uid",
            "kd-uid 'live-uid' from metadata.uid differs from 'pinned' from "
            f"metadata.annotations.{UID_ANNOTATION}; the kd-uid labels use 'pinned'",
            severity="warning",
        )
    ]


def test_plan_uid_must_be_a_label_value() -> None:
    plan, problems = plan_of(kd(annotations={UID_ANNOTATION: "not a uid!"}))
    assert plan is None
    assert problems == [
        kd_problem(
            f"metadata.annotations.{UID_ANNOTATION}",
            f"kd-uid 'not a uid!' (from metadata.annotations.{UID_ANNOTATION}) is not a valid "
            "label value: at most 63 letters, digits, '-', '_' and '.', starting and ending "
            "with a letter or digit",
        )
    ]


def test_default_kd_uid_is_stable_and_per_name() -> None:
    assert default_kd_uid("a") == default_kd_uid("a")
    assert default_kd_uid("a") != default_kd_uid("b")
    assert uuid.UUID(default_kd_uid("a")).version == 5


def test_plan_self_and_partner_parties() -> None:
    inventory = Inventory(domains={"bob": DomainFacts(is_partner=True)})
    plan = ok_plan(kd(party("alice"), party("bob"), party("carol")), inventory=inventory)
    assert [p.is_self for p in plan.parties] == [True, False, True]
    assert [p.domain_id for p in plan.self_parties] == ["alice", "carol"]


def test_plan_role_selects_template_and_network_policy() -> None:
    policy = {"ingresses": [{"from": {"roles": ["client"]}, "ports": [{"port": "svc"}]}]}
    image = app_image(
        "img",
        template(
            "server-tpl",
            "server,client",
            container("s", port("svc", 1, scope="Cluster")),
            networkPolicy=policy,
        ),
        template("default-tpl", "", container("d", port("svc", 2, scope="Cluster"))),
    )
    plan = ok_plan(kd(party("alice", "server"), party("bob", "client"), party("carol")), image)
    assert [(p.template_name, p.network_policy) for p in plan.parties] == [
        ("server-tpl", policy),
        ("server-tpl", policy),
        ("default-tpl", None),
    ]
    assert [dict(p.access_domains) for p in plan.parties] == [
        {"svc": "bob"},
        {"svc": "bob"},
        {"svc": "alice,bob,carol"},
    ]


KIT = "failed to build domain {d} kit info, "


@pytest.mark.parametrize(
    ("kd_body", "images", "want"),
    [
        pytest.param(
            kd(party("alice", image="missing")),
            (app_image(),),
            [
                kd_problem(
                    "spec.parties[0].appImageRef",
                    KIT.format(d="alice") + 'failed to get appImage "missing", '
                    'appimage.kuscia.secretflow "missing" not found',
                    "BuildPartyKitInfoFailed",
                )
            ],
            id="missing-appimage",
        ),
        pytest.param(
            kd(party("alice", "server")),
            (app_image("img", template("only-client", "client")),),
            [
                kd_problem(
                    "spec.parties[0]",
                    KIT.format(d="alice") + "failed to select appropriate deploy template from "
                    'appImage "img" for party alice/server, not found deploy template for role '
                    '"server"',
                    "BuildPartyKitInfoFailed",
                )
            ],
            id="no-template-for-role",
        ),
        pytest.param(
            kd(party("alice")),
            ({**app_image(), "spec": {"image": {"name": "a", "tag": "b"}, "deployTemplates": []}},),
            [
                kd_problem(
                    "spec.parties[0]",
                    KIT.format(d="alice") + "failed to select appropriate deploy template from "
                    'appImage "img" for party alice/, deploy templates are empty',
                    "BuildPartyKitInfoFailed",
                )
            ],
            id="empty-deploy-templates",
        ),
        pytest.param(
            kd(party("alice")),
            (
                app_image(
                    "img",
                    template(
                        "tpl",
                        "server,client",
                        container("a", port("grpc", 1)),
                        container("b", port("grpc", 2)),
                    ),
                ),
            ),
            [
                kd_problem(
                    "spec.parties[0]",
                    KIT.format(d="alice") + "failed to merge ports in deploy template "
                    "'tpl/server,client' for party alice, duplicate port \"grpc\"",
                    "BuildPartyKitInfoFailed",
                )
            ],
            id="duplicate-port",
        ),
        pytest.param(
            kd(party("alice"), party("bob", image="gone")),
            (
                app_image(
                    "img",
                    template("t", "", container("c", metricProbe={"path": "/m", "port": "nope"})),
                ),
            ),
            [
                kd_problem(
                    "spec.parties[0]",
                    "metric port name nope not found for deployment kd",
                    "CreateDeploymentFailed",
                ),
                kd_problem(
                    "spec.parties[1].appImageRef",
                    KIT.format(d="bob") + 'failed to get appImage "gone", '
                    'appimage.kuscia.secretflow "gone" not found',
                    "BuildPartyKitInfoFailed",
                ),
            ],
            id="every-party-reported-metric-port-unknown",
        ),
        pytest.param(
            kd(
                party("alice", serviceNamePrefix="svc"),
                party("alice", "x", serviceNamePrefix="svc"),
            ),
            (app_image("img", template("t", "", container("c", port("http", 1, scope="Domain")))),),
            [
                kd_problem(
                    "spec.parties[1].serviceNamePrefix",
                    "domain alice service svc-http already exist, please ensure that the service "
                    "name can't be duplicated",
                    "CreateServiceFailed",
                )
            ],
            id="service-name-clash-in-one-kd",
        ),
    ],
)
def test_plan_problems(kd_body: Any, images: Any, want: list[Problem]) -> None:
    assert plan_of(kd_body, *images) == (None, want)


@pytest.mark.parametrize(
    "metric_probe",
    [
        pytest.param({"path": "/metrics", "port": "metrics"}, id="known-port"),
        pytest.param({"path": "", "port": "nope"}, id="no-path-not-checked"),
        pytest.param({"path": "/m", "port": ""}, id="no-port-not-checked"),
    ],
)
def test_plan_metric_probe_accepted(metric_probe: Any) -> None:
    image = app_image(
        "img", template("t", "", container("c", port("metrics", 9), metricProbe=metric_probe))
    )
    assert plan_of(kd(), image)[1] == []


def test_plan_service_clash_partner_is_ignored() -> None:
    image = app_image("img", template("t", "", container("c", port("http", 1, scope="Cluster"))))
    inventory = Inventory(domains={"alice": DomainFacts(is_partner=True)})
    plan, problems = plan_of(
        kd(party("alice", serviceNamePrefix="s"), party("alice", "x", serviceNamePrefix="s")),
        image,
        inventory=inventory,
    )
    assert plan is not None
    assert problems == []


def test_plan_unknown_party_container_is_a_warning() -> None:
    plan, problems = plan_of(
        kd(
            party(
                "alice", template={"spec": {"containers": [{"name": "serving", "workingDir": ""}]}}
            )
        )
    )
    assert plan is not None
    assert problems == [
        kd_problem(
            "spec.parties[0].template.spec.containers[0].name",
            "container 'serving' is not in deploy template 't' of AppImage 'img'; Kuscia "
            "ignores its resources",
            severity="warning",
        )
    ]


def test_plan_metric_port_of_a_partner_is_not_checked() -> None:
    """Kuscia checks the metric port while building a Deployment, which partners never get."""
    image = app_image(
        "img", template("t", "", container("c", metricProbe={"path": "/m", "port": "x"}))
    )
    inventory = Inventory(domains={"bob": DomainFacts(is_partner=True)})
    plan, problems = plan_of(
        kd(party("alice", image="ok"), party("bob")), app_image("ok"), image, inventory=inventory
    )
    assert plan is not None
    assert problems == []


def test_plan_party_of_an_invalid_appimage_points_at_it() -> None:
    """An AppImage that fails its schema is not "not found": the KD's problem says it is invalid."""
    broken = app_image("img")
    del broken["spec"]["image"]["tag"]
    inputs = Inputs(
        kusciadeployments=(Document(KD_SOURCE, 1, kd(party("alice"))),),
        app_images=(Document("img.yaml", 1, broken),),
    )
    checked = validate(inputs)
    assert checked.invalid_app_images == frozenset({"img"})
    assert [p.field for p in checked.problems] == ["spec.image"]
    plan, problems = plan_kusciadeployment(
        checked.kusciadeployments[0], checked.app_images, Inventory(), checked.invalid_app_images
    )
    assert (plan, problems) == (
        None,
        [
            kd_problem(
                "spec.parties[0].appImageRef",
                KIT.format(d="alice") + 'failed to get appImage "img", it is invalid (see the '
                "problems reported for it)",
                "BuildPartyKitInfoFailed",
            )
        ],
    )
