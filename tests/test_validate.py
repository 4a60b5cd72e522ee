"""kdgen.validate: one row per rule (spec §12 ValidateFailed, §15 rows 13, 14 and 17, schemas).

The input builders are shared with ``test_plan.py``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kdgen.errors import Problem
from kdgen.load import Document, Inputs
from kdgen.model import DomainFacts, Inventory
from kdgen.schemas import KUSCIA_DEPLOYMENT_SCHEMA
from kdgen.validate import unknown_fields, validate
from tests.test_plan import app_image, container, kd, party, port, template

KD = "KusciaDeployment cross-domain/kd"
IMG = "AppImage img"
PREFIX_REGEX = "^[a-z]([-a-z0-9]{0,46}[a-z0-9])?$"
DNS = (
    "must be a DNS label: at most 63 lower-case letters, digits and '-', starting and ending "
    "with a letter or digit"
)


def checked(*kds: dict[str, Any], images: tuple[dict[str, Any], ...] = (), inventories=()):
    return validate(
        Inputs(
            kusciadeployments=tuple(Document("kd.yaml", i, b) for i, b in enumerate(kds, 1)),
            app_images=tuple(
                Document("img.yaml", i, b) for i, b in enumerate(images or (app_image(),), 1)
            ),
            inventories=tuple(Document("inv.yaml", i, b) for i, b in enumerate(inventories, 1)),
        )
    )


def on_kd(field: str, message: str, reason: str = "", doc: int = 1, **extra: Any) -> Problem:
    return Problem(message, "kd.yaml", doc, KD, field, reason, **extra)


def on_image(field: str, message: str) -> Problem:
    return Problem(message, "img.yaml", 1, IMG, field)


def with_spec(body: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["spec"].update(spec)
    return body


def without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target: Any = body
    for key in path[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    del target[path[-1]]
    return body


# --- KusciaDeployment rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "want"),
    [
        pytest.param(
            with_spec(kd(), parties=[]),
            [
                on_kd(
                    "spec.parties",
                    "parties can't be empty for kusciaDeployment kd",
                    "ValidateFailed",
                )
            ],
            id="empty-parties",
        ),
        pytest.param(
            kd(party("alice"), initiator="carol"),
            [
                on_kd(
                    "spec.initiator",
                    "kusciaDeployment kd initiator carol should be one of the parties",
                    "ValidateFailed",
                )
            ],
            id="initiator-not-a-party",
        ),
        pytest.param(
            kd(party("alice", serviceNamePrefix="1bad")),
            [
                on_kd(
                    "spec.parties[0].serviceNamePrefix",
                    'field "ServiceNamePrefix" is invalid, invalid value: "1bad": regex used for '
                    f'validation is "{PREFIX_REGEX}"',
                    "ValidateFailed",
                )
            ],
            id="service-name-prefix-leading-digit",
        ),
        pytest.param(
            kd(party("alice", serviceNamePrefix="a" * 49)),
            [
                on_kd(
                    "spec.parties[0].serviceNamePrefix",
                    f'field "ServiceNamePrefix" is invalid, invalid value: "{"a" * 49}": regex '
                    f'used for validation is "{PREFIX_REGEX}"',
                    "ValidateFailed",
                )
            ],
            id="service-name-prefix-too-long",
        ),
        pytest.param(
            kd(party("alice", serviceNamePrefix="abc\n")),
            [
                on_kd(
                    "spec.parties[0].serviceNamePrefix",
                    'field "ServiceNamePrefix" is invalid, invalid value: "abc\\n": regex used for '
                    f'validation is "{PREFIX_REGEX}"',
                    "ValidateFailed",
                )
            ],
            id="service-name-prefix-trailing-newline",
        ),
        pytest.param(
            kd(party("alice"), party("bob", "x"), party("alice"), party("bob", "x")),
            [
                on_kd(
                    "spec.parties[2]",
                    "party alice/ repeats spec.parties[0]: each domainID and role pair may "
                    "appear once",
                ),
                on_kd(
                    "spec.parties[3]",
                    "party bob/x repeats spec.parties[1]: each domainID and role pair may "
                    "appear once",
                ),
            ],
            id="duplicate-domain-and-role",
        ),
        pytest.param(
            kd(party("Alice"), initiator="Alice"),
            [on_kd("spec.parties[0].domainID", f"domainID 'Alice' {DNS}")],
            id="domain-id-not-dns-label",
        ),
        pytest.param(
            kd(party("alice\n"), initiator="alice\n"),
            [on_kd("spec.parties[0].domainID", f"domainID 'alice\\n' {DNS}")],
            id="domain-id-trailing-newline",
        ),
        pytest.param(
            kd(party("a" * 64), initiator="a" * 64),
            [on_kd("spec.parties[0].domainID", f"domainID '{'a' * 64}' {DNS}")],
            id="domain-id-too-long",
        ),
        pytest.param(
            kd(party("alice", "Server_1")),
            [
                on_kd(
                    "spec.parties[0].role",
                    "role 'Server_1' makes the Deployment name 'kd-Server_1', which must be a "
                    "DNS label: at most 63 lower-case letters, digits and '-'",
                )
            ],
            id="role-not-dns",
        ),
        pytest.param(
            kd(party("alice", "r" * 61)),
            [
                on_kd(
                    "spec.parties[0].role",
                    f"role '{'r' * 61}' makes the Deployment name 'kd-{'r' * 61}', which must be "
                    "a DNS label: at most 63 lower-case letters, digits and '-'",
                )
            ],
            id="role-makes-name-too-long",
        ),
        pytest.param(
            with_spec(kd(), inputConfig="é" * (2**19) + "x"),
            [
                on_kd(
                    "spec.inputConfig",
                    "inputConfig is 1048577 bytes; kdgen accepts at most 1048576, as every "
                    "container of every Deployment carries it and the apiserver stores objects "
                    "of at most about 1.5 MiB",
                )
            ],
            id="input-config-over-1-mib-of-utf8",
        ),
        pytest.param(
            {**kd(), "metadata": {"name": "kd", "namespace": "alice"}},
            [
                Problem(
                    "namespace must be 'cross-domain': Kuscia reconciles KusciaDeployments only "
                    "there, got 'alice'",
                    "kd.yaml",
                    1,
                    "KusciaDeployment alice/kd",
                    "metadata.namespace",
                )
            ],
            id="namespace-not-cross-domain",
        ),
        pytest.param(
            {**kd(), "metadata": {"name": "Kd_1", "namespace": "cross-domain"}},
            [
                Problem(
                    f"KusciaDeployment name 'Kd_1' {DNS}",
                    "kd.yaml",
                    1,
                    "KusciaDeployment cross-domain/Kd_1",
                    "metadata.name",
                )
            ],
            id="kd-name-not-dns",
        ),
        pytest.param(
            without(kd(), "spec", "initiator"),
            [on_kd("spec", 'required field "initiator" is missing')],
            id="schema-initiator-missing",
        ),
        pytest.param(
            without(kd(), "spec", "inputConfig"),
            [on_kd("spec", 'required field "inputConfig" is missing')],
            id="schema-input-config-missing",
        ),
        pytest.param(
            without(kd(), "spec", "parties", "0", "appImageRef"),
            [on_kd("spec.parties[0]", 'required field "appImageRef" is missing')],
            id="schema-app-image-ref-missing",
        ),
        pytest.param(
            with_spec(kd(), replicas=2),
            [on_kd("spec", 'unknown field "replicas"')],
            id="schema-unknown-field",
        ),
        pytest.param(
            kd(party("alice", template={"replicas": "two"})),
            [on_kd("spec.parties[0].template.replicas", "must be an integer, got string")],
            id="schema-wrong-type",
        ),
    ],
)
def test_kusciadeployment_problems(body: dict[str, Any], want: list[Problem]) -> None:
    result = checked(body)
    assert list(result.problems) == want
    assert result.kusciadeployments == ()


def test_missing_working_dir_is_a_warning_and_the_kd_passes() -> None:
    body = kd(party("alice", template={"spec": {"containers": [{"name": "main"}]}}))
    result = checked(body)
    assert list(result.problems) == [
        on_kd(
            "spec.parties[0].template.spec.containers[0].workingDir",
            "Kuscia's KusciaDeployment CRD requires workingDir here; a real apiserver rejects "
            'this KD until it has workingDir: ""',
            severity="warning",
        )
    ]
    assert [d.name for d in result.kusciadeployments] == ["kd"]


def test_kd_defined_twice() -> None:
    result = checked(kd(), kd())
    assert list(result.problems) == [
        on_kd("metadata.name", "KusciaDeployment 'kd' is defined twice", doc=2)
    ]
    assert [d.index for d in result.kusciadeployments] == [1]


def test_every_problem_of_every_kd_is_reported() -> None:
    bad = with_spec(
        kd(party("alice", serviceNamePrefix="-x")), inputConfig="x" * (2**20 + 1), initiator="z"
    )
    result = checked(bad, with_spec(kd(), parties=[]))
    assert [(p.doc_index, p.field, p.reason) for p in result.problems] == [
        (1, "spec.initiator", "ValidateFailed"),
        (1, "spec.parties[0].serviceNamePrefix", "ValidateFailed"),
        (1, "spec.inputConfig", ""),
        (2, "spec.parties", "ValidateFailed"),
        (2, "metadata.name", ""),
    ]


@pytest.mark.parametrize(
    "input_config",
    [
        pytest.param("test", id="plain-text-as-in-kuscia-reconcile-test"),
        pytest.param("{not json", id="broken-json"),
        pytest.param("x" * 2**20, id="exactly-1-mib"),
    ],
)
def test_input_config_is_any_string(input_config: str) -> None:
    """Kuscia's ``validate`` (controller.go) never parses inputConfig; it becomes INPUT_CONFIG
    verbatim (``generateDeployment``), and ``reconcile_test.go`` uses the plain text "test"."""
    assert checked(with_spec(kd(), inputConfig=input_config)).problems == ()


def test_valid_kd_is_defaulted_and_passes() -> None:
    result = checked(kd(party("alice"), party("bob", "host")))
    assert result.problems == ()
    assert result.kusciadeployments[0].body == kd(party("alice"), party("bob", "host"))


# --- AppImage rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "want"),
    [
        pytest.param(
            app_image("img", template("t", "", container("c", port("p", 1, protocol="TCP")))),
            [
                on_image(
                    "spec.deployTemplates[0].spec.containers[0].ports[0].protocol",
                    'must be one of "HTTP", "GRPC", got "TCP"',
                )
            ],
            id="protocol-tcp-rejected",
        ),
        pytest.param(
            app_image("img", template("t", "", container("c", port("p", 1, scope="domain")))),
            [
                on_image(
                    "spec.deployTemplates[0].spec.containers[0].ports[0].scope",
                    'must be one of "Cluster", "Domain", "Local", got "domain"',
                )
            ],
            id="scope-case-sensitive",
        ),
        pytest.param(
            without(
                app_image(), "spec", "deployTemplates", "0", "spec", "containers", "0", "workingDir"
            ),
            [
                on_image(
                    "spec.deployTemplates[0].spec.containers[0]",
                    'required field "workingDir" is missing',
                )
            ],
            id="appimage-working-dir-required",
        ),
        pytest.param(
            without(app_image(), "spec", "image", "tag"),
            [on_image("spec.image", 'required field "tag" is missing')],
            id="image-tag-required",
        ),
        pytest.param(
            without(app_image(), "spec", "deployTemplates"),
            [on_image("spec", 'required field "deployTemplates" is missing')],
            id="deploy-templates-required",
        ),
        pytest.param(
            app_image("img", template("t", "", container("Main_1"))),
            [
                on_image(
                    "spec.deployTemplates[0].spec.containers[0].name",
                    f"container name 'Main_1' {DNS}",
                )
            ],
            id="container-name-not-dns",
        ),
        pytest.param(
            app_image("img", template("t", "", container("c", port("a-very-long-port-name", 1)))),
            [
                on_image(
                    "spec.deployTemplates[0].spec.containers[0].ports[0].name",
                    "port name 'a-very-long-port-name' must be an IANA service name: at most 15 "
                    "lower-case letters, digits and '-', with at least one letter",
                )
            ],
            id="port-name-too-long",
        ),
        pytest.param(
            app_image("img", template("t", "", container("c", port("8080", 1)))),
            [
                on_image(
                    "spec.deployTemplates[0].spec.containers[0].ports[0].name",
                    "port name '8080' must be an IANA service name: at most 15 lower-case "
                    "letters, digits and '-', with at least one letter",
                )
            ],
            id="port-name-no-letter",
        ),
        pytest.param(
            app_image("img", template("t", "", container("c", port("a--b", 1)))),
            [
                on_image(
                    "spec.deployTemplates[0].spec.containers[0].ports[0].name",
                    "port name 'a--b' must be an IANA service name: at most 15 lower-case "
                    "letters, digits and '-', with at least one letter",
                )
            ],
            id="port-name-double-dash",
        ),
        pytest.param(
            app_image("img", configTemplates={"bad/key": "x"}),
            [
                on_image(
                    "spec.configTemplates[bad/key]",
                    "a config template name must be a valid ConfigMap key (letters, digits, "
                    "'-', '_' and '.')",
                )
            ],
            id="config-template-key",
        ),
    ],
)
def test_app_image_problems(image: dict[str, Any], want: list[Problem]) -> None:
    result = checked(kd(), images=(image,))
    assert list(result.problems) == want


def test_app_image_defined_twice_keeps_the_first() -> None:
    first, second = app_image(), app_image()
    second["spec"]["image"]["tag"] = "2.0"
    result = checked(kd(), images=(first, second))
    assert list(result.problems) == [
        Problem("AppImage 'img' is defined twice", "img.yaml", 2, IMG, "metadata.name")
    ]
    assert result.app_images["img"].body["spec"]["image"]["tag"] == "1.0"


def test_app_image_ports_get_crd_defaults() -> None:
    image = app_image(
        "img", template("t", "", container("c", port("p", 1), port("q", scope="Cluster")))
    )
    result = checked(kd(), images=(image,))
    ports = result.app_images["img"].body["spec"]["deployTemplates"][0]["spec"]["containers"][0]
    assert ports["ports"] == [
        {"name": "p", "port": 1, "protocol": "HTTP", "scope": "Local"},
        {"name": "q", "scope": "Cluster", "protocol": "HTTP"},
    ]
    assert (
        "protocol" not in image["spec"]["deployTemplates"][0]["spec"]["containers"][0]["ports"][0]
    )


def test_empty_deploy_templates_pass_validation() -> None:
    """The CRD has no minItems: the failure is Kuscia's 'deploy templates are empty' (plan)."""
    image = with_spec(app_image(), deployTemplates=[])
    assert checked(kd(), images=(image,)).problems == ()


# --- Inventory --------------------------------------------------------------------------------

INVENTORY = {
    "apiVersion": "kdgen.kuscia.secretflow/v1alpha1",
    "kind": "Inventory",
    "spec": {
        "domains": [
            {"domainID": "bob", "role": "partner", "interConnProtocol": "bfia"},
            {"domainID": "carol", "namespaceRole": "partner"},
        ],
        "kusciaDeployments": [{"name": "kd", "uid": "uid-1"}],
        "takenPorts": [
            {"namespace": "alice", "ports": [20000, 20001]},
            {"namespace": "alice", "ports": [20005]},
            {"namespace": "bob"},
        ],
        "templateValues": {"SERVING_LOGGING_CONFIG": "{}"},
    },
}


def test_inventory_facts() -> None:
    result = checked(kd(), inventories=(INVENTORY,))
    assert result.problems == ()
    assert result.inventory == Inventory(
        domains={
            "bob": DomainFacts(is_partner=True, interconn_protocol="bfia"),
            "carol": DomainFacts(namespace_is_partner=True),
        },
        kd_uids={"kd": "uid-1"},
        taken_ports={"alice": frozenset({20000, 20001, 20005}), "bob": frozenset()},
        template_values={"SERVING_LOGGING_CONFIG": "{}"},
    )


def test_no_inventory_means_every_domain_is_self() -> None:
    result = checked(kd())
    assert result.inventory == Inventory()
    assert result.inventory.domain("anything") == DomainFacts()


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        pytest.param(
            {"domains": [{"domainID": "bob", "role": "remote"}]},
            [("spec.domains[0].role", 'must be one of "", "partner", got "remote"')],
            id="bad-role",
        ),
        pytest.param(
            {"takenPorts": [{"namespace": "a", "ports": [70000]}]},
            [("spec.takenPorts[0].ports[0]", "must be at most 65535, got 70000")],
            id="port-out-of-range",
        ),
        pytest.param(
            {"kusciaDeployments": [{"name": "kd"}]},
            [("spec.kusciaDeployments[0]", 'required field "uid" is missing')],
            id="uid-required",
        ),
    ],
)
def test_inventory_problems(spec: dict[str, Any], want: list[tuple[str, str]]) -> None:
    body = {**INVENTORY, "spec": spec}
    problems = checked(kd(), inventories=(body,)).problems
    assert [(p.source, p.field, p.message) for p in problems] == [
        ("inv.yaml", field, message) for field, message in want
    ]


def test_only_one_inventory() -> None:
    problems = checked(kd(), inventories=(INVENTORY, INVENTORY)).problems
    assert list(problems) == [
        Problem("only one Inventory document may be given", "inv.yaml", 2, "Inventory", "")
    ]


# --- unknown_fields ---------------------------------------------------------------------------


def test_unknown_fields_skips_preserved_and_free_form_subtrees() -> None:
    body = kd(
        party(
            "alice",
            template={
                "spec": {
                    "affinity": {"anything": {"goes": 1}},
                    "containers": [{"name": "c", "workingDir": "", "resourcez": {}}],
                }
            },
        ),
        labels={"free": "form"},
    )
    body["spec"]["extra"] = 1
    assert list(unknown_fields(KUSCIA_DEPLOYMENT_SCHEMA, body)) == [
        ("spec.parties[0].template.spec.containers[0]", 'unknown field "resourcez"'),
        ("spec", 'unknown field "extra"'),
    ]
