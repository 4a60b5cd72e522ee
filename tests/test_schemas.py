"""kdgen.schemas: the seed examples validate, defaults match the CRDs, problems read well."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from kdgen import model
from kdgen.errors import KdgenError
from kdgen.schemas import (
    APP_IMAGE_SCHEMA,
    INVENTORY_SCHEMA,
    KUSCIA_DEPLOYMENT_SCHEMA,
    _surely_valid,
    _validator,
    apply_defaults,
    schema_problems,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "tests" / "fixtures" / "seed"
CRDS = ROOT / "deploy" / "crds"

KD_CONTAINERS = "spec.parties[].template.spec.containers[]"
APP_IMAGE_CONTAINERS = "spec.deployTemplates[].spec.containers[]"

INVENTORY_EXAMPLE = """
apiVersion: kdgen.kuscia.secretflow/v1alpha1
kind: Inventory
metadata: {name: my-cluster}
spec:
  domains:
  - domainID: carol
    role: partner
    interConnProtocol: kuscia
    namespaceRole: partner
  kusciaDeployments:
  - name: secretflow-serving
    uid: 0b6f2c1e-9c1e-4f5e-8d7a-1f2e3d4c5b6a
  takenPorts:
  - namespace: alice
    ports: [20000, 20001]
  templateValues:
    SERVING_LOGGING_CONFIG: "..."
"""


def load(name: str) -> Any:
    return yaml.safe_load((SEED / name).read_text(encoding="utf-8"))


def crd(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CRDS / name).read_text(encoding="utf-8"))
    return document


def crd_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = crd(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def node(schema: Mapping[str, Any], path: str) -> Any:
    """The sub-schema at a field path; ``[]`` steps into list items."""
    current: Any = schema
    for name in path.split("."):
        current = current["properties"][name.removesuffix("[]")]
        if name.endswith("[]"):
            current = current["items"]
    return current


def seed_app_image() -> dict[str, Any]:
    document: dict[str, Any] = load("appimage-serving.yaml")
    return document


def seed_kd() -> dict[str, Any]:
    document: dict[str, Any] = load("kusciadeployment-reference.yaml")
    return document


def inventory() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(INVENTORY_EXAMPLE)
    return document


def edited(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of document with the dotted path set (``...`` deletes it)."""
    result = copy.deepcopy(document)
    *parents, last = [int(step) if step.isdigit() else step for step in path.split(".")]
    parent: Any = result
    for step in parents:
        parent = parent[step]
    if value is ...:
        del parent[last]
    else:
        parent[last] = value
    return result


# --- the schemas themselves ---------------------------------------------------------------

ALL_SCHEMAS = [
    pytest.param(KUSCIA_DEPLOYMENT_SCHEMA, id="kusciadeployment"),
    pytest.param(APP_IMAGE_SCHEMA, id="appimage"),
    pytest.param(INVENTORY_SCHEMA, id="inventory"),
]


@pytest.mark.parametrize("schema", ALL_SCHEMAS)
@pytest.mark.parametrize("validator", [Draft7Validator, Draft202012Validator])
def test_schema_is_a_valid_json_schema(schema: Mapping[str, Any], validator: Any) -> None:
    validator.check_schema(schema)


def walk(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), Mapping):
            yield from walk(schema[keyword], f"{path}[{keyword}]")


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param(KUSCIA_DEPLOYMENT_SCHEMA, id="kusciadeployment"),
        pytest.param(APP_IMAGE_SCHEMA, id="appimage"),
    ],
)
def test_crd_schema_is_structural(schema: Mapping[str, Any]) -> None:
    """The rules apiextensions/v1 enforces that a JSON Schema check does not."""
    for path, sub in walk(schema):
        assert "$ref" not in sub, path
        assert "$schema" not in sub, path
        if sub.get("x-kubernetes-int-or-string"):
            assert sub["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert sub.get("type") in {"object", "array", "string", "integer", "boolean"}, path
        assert not ("properties" in sub and "additionalProperties" in sub), path
        assert not isinstance(sub.get("additionalProperties"), bool), path
        if "default" in sub:
            assert schema_problems(sub, sub["default"]) == [], path


def test_kd_and_app_image_share_the_kuscia_container_schema() -> None:
    app_image_container = node(APP_IMAGE_SCHEMA, APP_IMAGE_CONTAINERS)
    kd_container = node(KUSCIA_DEPLOYMENT_SCHEMA, KD_CONTAINERS)
    assert kd_container == {**app_image_container, "required": ["name"]}


def test_enums_agree_with_model() -> None:
    port = node(APP_IMAGE_SCHEMA, f"{APP_IMAGE_CONTAINERS}.ports[]")["properties"]
    assert port["scope"]["enum"] == [model.SCOPE_CLUSTER, model.SCOPE_DOMAIN, model.SCOPE_LOCAL]
    assert port["scope"]["default"] == model.SCOPE_LOCAL
    assert port["protocol"] == {
        "type": "string",
        "description": "Application protocol of the port.",
        "default": "HTTP",
        "enum": ["HTTP", "GRPC"],
    }
    assert INVENTORY_SCHEMA["properties"]["apiVersion"]["const"] == model.INVENTORY_API_VERSION
    assert INVENTORY_SCHEMA["properties"]["kind"]["const"] == model.KIND_INVENTORY


# --- deploy/crds agree with kdgen/schemas -------------------------------------------------


def test_kd_crd_schema_equals_ours_except_working_dir() -> None:
    """The one difference on purpose: Kuscia's CRD requires workingDir, kdgen only warns."""
    installed = crd_schema("kuscia.secretflow_kusciadeployments.yaml")
    assert node(installed, KD_CONTAINERS)["required"] == ["name", "workingDir"]
    expected = copy.deepcopy(dict(KUSCIA_DEPLOYMENT_SCHEMA))
    node(expected, KD_CONTAINERS)["required"] = ["name", "workingDir"]
    assert installed == expected


def test_app_image_crd_schema_equals_ours() -> None:
    assert crd_schema("kuscia.secretflow_appimages.yaml") == APP_IMAGE_SCHEMA


PRINTER_COLUMNS = [
    {"name": "TotalParties", "type": "integer", "jsonPath": ".status.totalParties"},
    {"name": "AvailableParties", "type": "integer", "jsonPath": ".status.availableParties"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


@pytest.mark.parametrize(
    ("file", "plural", "kind", "scope", "short_name", "columns", "subresources"),
    [
        pytest.param(
            "kuscia.secretflow_kusciadeployments.yaml",
            model.KD_PLURAL,
            model.KIND_KUSCIA_DEPLOYMENT,
            "Namespaced",
            "kd",
            PRINTER_COLUMNS,
            {"status": {}},
            id="kusciadeployment",
        ),
        pytest.param(
            "kuscia.secretflow_appimages.yaml",
            "appimages",
            model.KIND_APP_IMAGE,
            "Cluster",
            "aimg",
            None,
            None,
            id="appimage",
        ),
    ],
)
def test_crd_identity(
    file: str,
    plural: str,
    kind: str,
    scope: str,
    short_name: str,
    columns: list[dict[str, str]] | None,
    subresources: dict[str, Any] | None,
) -> None:
    document = crd(file)
    assert document["apiVersion"] == "apiextensions.k8s.io/v1"
    assert document["kind"] == "CustomResourceDefinition"
    assert document["metadata"]["name"] == f"{plural}.{model.KUSCIA_GROUP}"
    spec = document["spec"]
    assert spec["group"] == model.KUSCIA_GROUP
    assert spec["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": plural.removesuffix("s"),
        "shortNames": [short_name],
    }
    assert spec["scope"] == scope
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version.get("additionalPrinterColumns") == columns
    assert version.get("subresources") == subresources


def test_kustomization_lists_both_crds() -> None:
    kustomization = yaml.safe_load((CRDS / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["resources"] == [
        "kuscia.secretflow_kusciadeployments.yaml",
        "kuscia.secretflow_appimages.yaml",
    ]
    assert kustomization["kind"] == "Kustomization"


# --- the seed examples --------------------------------------------------------------------

SEED_EXAMPLES = [
    pytest.param("kusciadeployment-create.yaml", KUSCIA_DEPLOYMENT_SCHEMA, id="kd-create"),
    pytest.param("kusciadeployment-reference.yaml", KUSCIA_DEPLOYMENT_SCHEMA, id="kd-reference"),
    pytest.param("appimage-serving.yaml", APP_IMAGE_SCHEMA, id="appimage"),
]


@pytest.mark.parametrize(("file", "schema"), SEED_EXAMPLES)
def test_seed_example_validates(file: str, schema: Mapping[str, Any]) -> None:
    document = load(file)
    assert schema_problems(schema, document) == []
    assert schema_problems(schema, apply_defaults(schema, document)) == []


@pytest.mark.parametrize(
    ("file", "crd_file", "want"),
    [
        pytest.param(
            "kusciadeployment-reference.yaml",
            "kuscia.secretflow_kusciadeployments.yaml",
            [
                (
                    "spec.parties[0].template.spec.containers[0]",
                    'required field "workingDir" is missing',
                )
            ],
            id="kd-reference-lacks-workingDir",
        ),
        pytest.param(
            "kusciadeployment-create.yaml",
            "kuscia.secretflow_kusciadeployments.yaml",
            [],
            id="kd-create",
        ),
        pytest.param(
            "appimage-serving.yaml", "kuscia.secretflow_appimages.yaml", [], id="appimage"
        ),
    ],
)
def test_seed_example_against_installable_crd(
    file: str, crd_file: str, want: list[tuple[str, str]]
) -> None:
    """A real apiserver with deploy/crds rejects the seed's reference KD, as Kuscia's would."""
    assert schema_problems(crd_schema(crd_file), load(file)) == want


def test_seed_kd_with_empty_working_dir_passes_the_crd() -> None:
    kd = edited(seed_kd(), "spec.parties.0.template.spec.containers.0.workingDir", "")
    assert schema_problems(crd_schema("kuscia.secretflow_kusciadeployments.yaml"), kd) == []


# --- apply_defaults -----------------------------------------------------------------------


def seed_ports(app_image: Mapping[str, Any]) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = app_image["spec"]["deployTemplates"][0]["spec"]["containers"][0][
        "ports"
    ]
    return ports


@pytest.mark.parametrize(
    ("port", "want"),
    [
        pytest.param(
            {"name": "a"}, {"name": "a", "protocol": "HTTP", "scope": "Local"}, id="both-defaulted"
        ),
        pytest.param(
            {"name": "a", "scope": "Cluster"},
            {"name": "a", "scope": "Cluster", "protocol": "HTTP"},
            id="protocol-defaulted",
        ),
        pytest.param(
            {"name": "a", "protocol": "GRPC"},
            {"name": "a", "protocol": "GRPC", "scope": "Local"},
            id="scope-defaulted",
        ),
        pytest.param(
            {"name": "a", "protocol": None},
            {"name": "a", "protocol": None, "scope": "Local"},
            id="null-left-alone",
        ),
        pytest.param(
            {"name": "a", "protocol": "TCP", "scope": "domain"},
            {"name": "a", "protocol": "TCP", "scope": "domain"},
            id="invalid-values-kept",
        ),
    ],
)
def test_app_image_port_defaults(port: dict[str, Any], want: dict[str, Any]) -> None:
    app_image = edited(seed_app_image(), "spec.deployTemplates.0.spec.containers.0.ports", [port])
    assert seed_ports(apply_defaults(APP_IMAGE_SCHEMA, app_image)) == [want]


def test_kd_party_template_port_defaults() -> None:
    kd = edited(
        seed_kd(), "spec.parties.0.template.spec.containers.0.ports", [{"name": "x", "port": 1}]
    )
    defaulted = apply_defaults(KUSCIA_DEPLOYMENT_SCHEMA, kd)
    container = defaulted["spec"]["parties"][0]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "x", "port": 1, "protocol": "HTTP", "scope": "Local"}]
    assert "workingDir" not in container
    assert edited(defaulted, "spec.parties.0.template.spec.containers.0.ports", ...) == edited(
        kd, "spec.parties.0.template.spec.containers.0.ports", ...
    )


def test_seed_app_image_defaults_change_nothing_else() -> None:
    app_image = seed_app_image()
    assert apply_defaults(APP_IMAGE_SCHEMA, app_image) == app_image


def test_inventory_defaults() -> None:
    document = {
        "apiVersion": model.INVENTORY_API_VERSION,
        "kind": model.KIND_INVENTORY,
        "spec": {"domains": [{"domainID": "carol"}, {"domainID": "dave", "role": "partner"}]},
    }
    assert apply_defaults(INVENTORY_SCHEMA, document)["spec"]["domains"] == [
        {"domainID": "carol", "role": "", "interConnProtocol": "kuscia"},
        {"domainID": "dave", "role": "partner", "interConnProtocol": "kuscia"},
    ]


NESTED: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "default": {},
            "properties": {"mode": {"type": "string", "default": "fast"}},
        },
        "byName": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"weight": {"type": "integer", "default": 1}},
            },
        },
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        pytest.param({}, {"spec": {"mode": "fast"}}, id="default-is-defaulted-too"),
        pytest.param(
            {"byName": {"a": {}, "b": {"weight": 3}}},
            {"byName": {"a": {"weight": 1}, "b": {"weight": 3}}, "spec": {"mode": "fast"}},
            id="additional-properties",
        ),
        pytest.param(
            {"spec": None, "free": {"mode": 1}},
            {"spec": None, "free": {"mode": 1}},
            id="null-and-unknown-left-alone",
        ),
        pytest.param("text", "text", id="not-an-object"),
        pytest.param({"spec": [1]}, {"spec": [1]}, id="wrong-type-left-alone"),
    ],
)
def test_apply_defaults_walk(obj: Any, want: Any) -> None:
    assert apply_defaults(NESTED, obj) == want


@pytest.mark.parametrize(
    ("schema", "document"),
    [
        pytest.param(KUSCIA_DEPLOYMENT_SCHEMA, seed_kd(), id="kd"),
        pytest.param(APP_IMAGE_SCHEMA, seed_app_image(), id="appimage"),
        pytest.param(
            APP_IMAGE_SCHEMA,
            edited(
                seed_app_image(), "spec.deployTemplates.0.spec.containers.0.ports.0", {"name": "a"}
            ),
            id="appimage-port-to-default",
        ),
        pytest.param(INVENTORY_SCHEMA, inventory(), id="inventory"),
        pytest.param(NESTED, {"byName": {"a": {}}}, id="nested"),
    ],
)
def test_apply_defaults_does_not_mutate(schema: Mapping[str, Any], document: Any) -> None:
    before = copy.deepcopy(document)
    schema_before = copy.deepcopy(dict(schema))
    result = apply_defaults(schema, document)
    assert document == before
    assert schema == schema_before
    for value in result.values():  # nothing shared: editing the result leaves the input alone
        if isinstance(value, dict):
            value["kdgen-test"] = True
    assert document == before
    assert schema == schema_before


def test_apply_defaults_does_not_share_defaults() -> None:
    first = apply_defaults(NESTED, {})
    first["spec"]["mode"] = "slow"
    assert apply_defaults(NESTED, {}) == {"spec": {"mode": "fast"}}


# --- schema_problems ----------------------------------------------------------------------

APP_PORT = "spec.deployTemplates.0.spec.containers.0.ports.0"
APP_PORT_PATH = "spec.deployTemplates[0].spec.containers[0].ports[0]"
KD_CONTAINER = "spec.parties.0.template.spec.containers.0"
KD_CONTAINER_FIELD = "spec.parties[0].template.spec.containers[0]"


@pytest.mark.parametrize(
    ("path", "value", "want"),
    [
        pytest.param(
            f"{APP_PORT}.protocol",
            "TCP",
            [(f"{APP_PORT_PATH}.protocol", 'must be one of "HTTP", "GRPC", got "TCP"')],
            id="protocol-enum",
        ),
        pytest.param(
            f"{APP_PORT}.scope",
            "domain",
            [
                (
                    f"{APP_PORT_PATH}.scope",
                    'must be one of "Cluster", "Domain", "Local", got "domain"',
                )
            ],
            id="scope-enum-is-case-sensitive",
        ),
        pytest.param(
            f"{APP_PORT}.port",
            "53509",
            [(f"{APP_PORT_PATH}.port", "must be an integer, got string")],
            id="port-type",
        ),
        pytest.param(
            f"{APP_PORT}.name",
            ...,
            [(APP_PORT_PATH, 'required field "name" is missing')],
            id="port-name-required",
        ),
        pytest.param(
            "spec.deployTemplates.0.spec.containers.0.workingDir",
            ...,
            [
                (
                    "spec.deployTemplates[0].spec.containers[0]",
                    'required field "workingDir" is missing',
                )
            ],
            id="appimage-container-needs-workingDir",
        ),
        pytest.param(
            "spec.deployTemplates.0.spec.containers.0.configVolumeMounts.0",
            {"mountPath": "/etc/x"},
            [
                (
                    "spec.deployTemplates[0].spec.containers[0].configVolumeMounts[0]",
                    'required field "subPath" is missing',
                )
            ],
            id="config-volume-mount-subPath",
        ),
        pytest.param(
            "spec.image",
            {"name": "secretflow/serving-anolis8"},
            [("spec.image", 'required field "tag" is missing')],
            id="image-tag-required",
        ),
        pytest.param(
            "spec.deployTemplates",
            {"name": "secretflow"},
            [("spec.deployTemplates", "must be an array, got object")],
            id="deploy-templates-type",
        ),
        pytest.param(
            "spec.deployTemplates.0.replicas",
            True,
            [("spec.deployTemplates[0].replicas", "must be an integer, got boolean")],
            id="replicas-boolean",
        ),
        pytest.param(
            "spec.deployTemplates.0.networkPolicy",
            {"ingresses": [{"from": {}, "ports": [{"port": 53509}]}]},
            [
                (
                    "spec.deployTemplates[0].networkPolicy.ingresses[0].from",
                    'required field "roles" is missing',
                ),
                (
                    "spec.deployTemplates[0].networkPolicy.ingresses[0].ports[0].port",
                    "must be a string, got integer",
                ),
            ],
            id="network-policy",
        ),
        pytest.param(
            "spec.configTemplates",
            {"serving-config.conf": 42},
            [("spec.configTemplates[serving-config.conf]", "must be a string, got integer")],
            id="config-template-map-key",
        ),
        pytest.param(
            "spec.deployTemplates.0.spec.containers.0.env",
            [{"value": "x"}],
            [
                (
                    "spec.deployTemplates[0].spec.containers[0].env[0]",
                    'required field "name" is missing',
                )
            ],
            id="env-name-required",
        ),
        pytest.param(
            "spec.deployTemplates.0.spec.containers.0.readinessProbe",
            {"anything": {"goes": 1}},
            [],
            id="probes-preserve-unknown-fields",
        ),
        pytest.param("spec", ..., [("", 'required field "spec" is missing')], id="spec-required"),
    ],
)
def test_app_image_problems(path: str, value: Any, want: list[tuple[str, str]]) -> None:
    assert schema_problems(APP_IMAGE_SCHEMA, edited(seed_app_image(), path, value)) == want


@pytest.mark.parametrize(
    ("path", "value", "want"),
    [
        pytest.param(
            "spec.initiator",
            ...,
            [("spec", 'required field "initiator" is missing')],
            id="initiator",
        ),
        pytest.param(
            "spec.inputConfig",
            ...,
            [("spec", 'required field "inputConfig" is missing')],
            id="inputConfig-key-must-be-present",
        ),
        pytest.param("spec.inputConfig", "", [], id="inputConfig-may-be-empty"),
        pytest.param(
            "spec.parties.1.domainID",
            ...,
            [("spec.parties[1]", 'required field "domainID" is missing')],
            id="party-domainID",
        ),
        pytest.param(
            "spec.parties.1",
            {},
            [
                ("spec.parties[1]", 'required field "appImageRef" is missing'),
                ("spec.parties[1]", 'required field "domainID" is missing'),
            ],
            id="empty-party",
        ),
        pytest.param(
            "spec.parties.0.template.replicas",
            "1",
            [("spec.parties[0].template.replicas", "must be an integer, got string")],
            id="template-replicas",
        ),
        pytest.param(
            "spec.parties.0.template.strategy.rollingUpdate.maxSurge",
            True,
            [
                (
                    "spec.parties[0].template.strategy.rollingUpdate.maxSurge",
                    "must be an integer or a string, got boolean",
                )
            ],
            id="int-or-string",
        ),
        pytest.param("spec.parties.0.template.strategy.rollingUpdate.maxSurge", 1, [], id="int"),
        pytest.param(
            f"{KD_CONTAINER}.resources.limits.cpu",
            "100x",
            [
                (
                    f"{KD_CONTAINER_FIELD}.resources.limits[cpu]",
                    'must be a quantity such as 500m or 1Gi, got "100x"',
                )
            ],
            id="quantity",
        ),
        pytest.param(f"{KD_CONTAINER}.resources.limits.cpu", 2, [], id="quantity-integer"),
        pytest.param(
            f"{KD_CONTAINER}.name",
            ...,
            [(KD_CONTAINER_FIELD, 'required field "name" is missing')],
            id="container-name",
        ),
        pytest.param(
            f"{KD_CONTAINER}.ports",
            [{"name": "x", "scope": "Global"}],
            [
                (
                    f"{KD_CONTAINER_FIELD}.ports[0].scope",
                    'must be one of "Cluster", "Domain", "Local", got "Global"',
                )
            ],
            id="kd-port-scope",
        ),
        pytest.param(
            "status.partyDeploymentStatuses.alice.secretflow-serving.replicas",
            ...,
            [
                (
                    "status.partyDeploymentStatuses[alice][secretflow-serving]",
                    'required field "replicas" is missing',
                )
            ],
            id="party-status-replicas",
        ),
        pytest.param(
            "status.totalParties",
            ...,
            [("status", 'required field "totalParties" is missing')],
            id="status-totalParties",
        ),
        pytest.param(
            "status.lastReconcileTime",
            datetime.datetime(2023, 9, 19, 8, 37, 27, tzinfo=datetime.UTC),
            [],
            id="unquoted-yaml-timestamp-is-a-string",
        ),
        pytest.param(
            "status.partyDeploymentStatuses.alice.secretflow-serving.conditions.0.status",
            True,
            [
                (
                    "status.partyDeploymentStatuses[alice][secretflow-serving].conditions[0].status",
                    "must be a string, got boolean",
                )
            ],
            id="condition-status",
        ),
        pytest.param(
            "spec.parties.0.serviceNamePrefix",
            None,
            [("spec.parties[0].serviceNamePrefix", "must be a string, got null")],
            id="null",
        ),
    ],
)
def test_kd_problems(path: str, value: Any, want: list[tuple[str, str]]) -> None:
    assert schema_problems(KUSCIA_DEPLOYMENT_SCHEMA, edited(seed_kd(), path, value)) == want


def test_problems_are_sorted_and_complete() -> None:
    kd = {
        "metadata": {},
        "spec": {
            "initiator": 1,
            "parties": [{"domainID": "bob"}, {"appImageRef": "a", "domainID": "alice"}],
        },
    }
    assert schema_problems(KUSCIA_DEPLOYMENT_SCHEMA, kd) == [
        ("spec", 'required field "inputConfig" is missing'),
        ("spec.initiator", "must be a string, got integer"),
        ("spec.parties[0]", 'required field "appImageRef" is missing'),
    ]


@pytest.mark.parametrize(
    ("schema", "document", "want"),
    [
        pytest.param(KUSCIA_DEPLOYMENT_SCHEMA, [], [("", "must be an object, got array")], id="kd"),
        pytest.param(APP_IMAGE_SCHEMA, "x", [("", "must be an object, got string")], id="appimage"),
        pytest.param(INVENTORY_SCHEMA, None, [("", "must be an object, got null")], id="inventory"),
    ],
)
def test_problems_at_the_root(
    schema: Mapping[str, Any], document: Any, want: list[tuple[str, str]]
) -> None:
    assert schema_problems(schema, document) == want


# --- inventory ----------------------------------------------------------------------------


def test_inventory_example_is_valid() -> None:
    document = inventory()
    assert schema_problems(INVENTORY_SCHEMA, document) == []
    assert schema_problems(INVENTORY_SCHEMA, apply_defaults(INVENTORY_SCHEMA, document)) == []


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"apiVersion": model.INVENTORY_API_VERSION, "kind": "Inventory"}, id="bare"),
        pytest.param(
            {
                "apiVersion": model.INVENTORY_API_VERSION,
                "kind": "Inventory",
                "metadata": {"annotations": {"config.kubernetes.io/index": "0"}, "uid": "x"},
                "spec": {"domains": [], "takenPorts": [{"namespace": "alice"}]},
            },
            id="open-metadata-and-optional-ports",
        ),
    ],
)
def test_inventory_minimal_documents_are_valid(document: dict[str, Any]) -> None:
    assert schema_problems(INVENTORY_SCHEMA, document) == []


@pytest.mark.parametrize(
    ("path", "value", "want"),
    [
        pytest.param(
            "apiVersion",
            "kdgen.kuscia.secretflow/v1",
            [
                (
                    "apiVersion",
                    'must be "kdgen.kuscia.secretflow/v1alpha1", got "kdgen.kuscia.secretflow/v1"',
                )
            ],
            id="apiVersion",
        ),
        pytest.param(
            "kind", "Inventry", [("kind", 'must be "Inventory", got "Inventry"')], id="kind"
        ),
        pytest.param("kind", ..., [("", 'required field "kind" is missing')], id="kind-required"),
        pytest.param("extra", 1, [("", 'unknown field "extra"')], id="unknown-top-level"),
        pytest.param(
            "spec.domain", [], [("spec", 'unknown field "domain"')], id="unknown-spec-key"
        ),
        pytest.param(
            "spec.domains.0.partner",
            True,
            [("spec.domains[0]", 'unknown field "partner"')],
            id="unknown-domain-key",
        ),
        pytest.param(
            "spec.domains.0.domainID",
            "Carol",
            [
                (
                    "spec.domains[0].domainID",
                    'must be a DNS-1123 label (lower-case letters, digits and "-"), got "Carol"',
                )
            ],
            id="domainID-dns-label",
        ),
        pytest.param(
            "spec.domains.0.domainID",
            "a" * 64,
            [("spec.domains[0].domainID", "must be at most 63 characters long, got 64")],
            id="domainID-too-long",
        ),
        pytest.param(
            "spec.domains.0.domainID",
            ...,
            [("spec.domains[0]", 'required field "domainID" is missing')],
            id="domainID-required",
        ),
        pytest.param(
            "spec.domains.0.role",
            "Partner",
            [("spec.domains[0].role", 'must be one of "", "partner", got "Partner"')],
            id="role-enum",
        ),
        pytest.param(
            "spec.domains.0.interConnProtocol",
            "grpc",
            [("spec.domains[0].interConnProtocol", 'must be one of "kuscia", "bfia", got "grpc"')],
            id="interconn-enum",
        ),
        pytest.param(
            "spec.kusciaDeployments.0.uid",
            "",
            [("spec.kusciaDeployments[0].uid", "must not be empty")],
            id="uid-empty",
        ),
        pytest.param(
            "spec.kusciaDeployments.0.uid",
            ...,
            [("spec.kusciaDeployments[0]", 'required field "uid" is missing')],
            id="uid-required",
        ),
        pytest.param(
            "spec.takenPorts.0.ports",
            [0, 65535, 65536, "20002", 20003.5],
            [
                ("spec.takenPorts[0].ports[0]", "must be at least 1, got 0"),
                ("spec.takenPorts[0].ports[2]", "must be at most 65535, got 65536"),
                ("spec.takenPorts[0].ports[3]", "must be an integer, got string"),
                ("spec.takenPorts[0].ports[4]", "must be an integer, got number"),
            ],
            id="bad-ports",
        ),
        pytest.param(
            "spec.takenPorts.0.namespace",
            ...,
            [("spec.takenPorts[0]", 'required field "namespace" is missing')],
            id="namespace-required",
        ),
        pytest.param(
            "spec.templateValues.SERVING_LOGGING_CONFIG",
            {"level": "info"},
            [("spec.templateValues[SERVING_LOGGING_CONFIG]", "must be a string, got object")],
            id="template-value-type",
        ),
    ],
)
def test_inventory_problems(path: str, value: Any, want: list[tuple[str, str]]) -> None:
    assert schema_problems(INVENTORY_SCHEMA, edited(inventory(), path, value)) == want


def _golden_bodies() -> list[tuple[Mapping[str, Any], Any]]:
    """Every document of every golden case's input, defaulted, with its schema."""
    from kdgen.load import parse_sources
    from tests.golden import GOLDEN, case_names, case_sources

    schemas = {
        "KusciaDeployment": KUSCIA_DEPLOYMENT_SCHEMA,
        "AppImage": APP_IMAGE_SCHEMA,
        "Inventory": INVENTORY_SCHEMA,
    }
    bodies: dict[str, tuple[Mapping[str, Any], Any]] = {}
    for name in case_names():
        try:
            inputs = parse_sources(case_sources(GOLDEN / name))
        except KdgenError:
            continue
        for doc in (*inputs.kusciadeployments, *inputs.app_images, *inputs.inventories):
            schema = schemas[doc.kind]
            bodies.setdefault(repr(doc.body), (schema, apply_defaults(schema, doc.body)))
    return list(bodies.values())


def _mutations(body: Any) -> Any:
    """Yield copies of ``body`` with one value replaced by a wrong one, everywhere in turn."""
    if isinstance(body, dict):
        for key, value in body.items():
            for wrong in (None, 1.5, "x", True):
                yield {**body, key: wrong}
            for changed in _mutations(value):
                yield {**body, key: changed}
        yield {**body, "unknownField": 1}
    elif isinstance(body, list):
        for i, item in enumerate(body):
            for changed in _mutations(item):
                yield [*body[:i], changed, *body[i + 1 :]]
        yield [*body, None]


def test_compiled_check_never_passes_what_jsonschema_rejects() -> None:
    """The fast path of schema_problems (the compiled check) agrees with jsonschema.

    Over every golden input and every one-value mutation of it: a document the compiled check
    passes has no jsonschema error, and every document jsonschema accepts passes it too (so
    the fast path is really taken).
    """
    bodies = _golden_bodies()
    assert len(bodies) > 50
    checked = rejected = 0
    for schema, body in bodies:
        for candidate in [body, *_mutations(body)]:
            fast = _surely_valid(schema)(candidate)
            errors = list(_validator(schema).iter_errors(candidate))
            assert fast == (not errors), (candidate, errors)
            checked += 1
            rejected += bool(errors)
    assert rejected > 1000
    assert checked - rejected > 1000
