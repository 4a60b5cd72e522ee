"""kdgen.naming against spec §3 and the vectors of Kuscia's util_test.go and service_test.go."""

from __future__ import annotations

import hashlib

import pytest

from kdgen.naming import (
    SERVICE_NAME_PREFIX_PATTERN,
    generate_configmap_name,
    generate_deployment_name,
    generate_service_name,
)


@pytest.mark.parametrize(
    ("kd_name", "role", "want"),
    [
        pytest.param("kd-1", "", "kd-1", id="no-role"),
        pytest.param("kd-1", "host", "kd-1-host", id="role-suffix"),
        pytest.param("kd-1", "Bad_Role", "kd-1-Bad_Role", id="not-sanitised"),
    ],
)
def test_generate_deployment_name(kd_name: str, role: str, want: str) -> None:
    assert generate_deployment_name(kd_name, role) == want


@pytest.mark.parametrize(
    ("deploy_name", "want"),
    [
        pytest.param("cm-1", "cm-1-configtemplate", id="kuscia-vector"),
        pytest.param("kd-1-host", "kd-1-host-configtemplate", id="role-deployment"),
    ],
)
def test_generate_configmap_name(deploy_name: str, want: str) -> None:
    assert generate_configmap_name(deploy_name) == want


@pytest.mark.parametrize(
    ("deploy_name", "port", "want"),
    [
        # Kuscia util_test.go TestGeneratePortServices
        pytest.param("dm-1", "domain", "dm-1-domain", id="dm-1-domain"),
        pytest.param("dm-1", "cluster", "dm-1-cluster", id="dm-1-cluster"),
        # service_test.go TestGenerateServiceName (Kuscia checks by prefix; spec §3.3 gives
        # the whole names)
        pytest.param(
            "service-test-11111111",
            "domain",
            "service-test-11111111-domain",
            id="short",
        ),
        pytest.param(
            "abc-012345678-012345678-012345678-012345678-012345678-01",
            "domain",
            "abc-012345678-012345678-012345678-012345678-012345678-01-domain",
            id="exactly-63-kept",
        ),
        pytest.param(
            "abc-012345678-012345678-012345678-012345678-012345678-012",
            "domain",
            "svc-abc-012345678-012345678-012345678-0-8b65e42a1eb3afbb-domain",
            id="64-hashed",
        ),
        pytest.param("123-456-789", "domain", "svc-123-456-789-domain", id="leading-digit"),
        pytest.param(
            "12-012345678-012345678-012345678-012345678-012345678",
            "domain",
            "svc-12-012345678-012345678-012345678-012345678-012345678-domain",
            id="leading-digit-63-kept",
        ),
        pytest.param(
            "123-012345678-012345678-012345678-012345678-012345678",
            "domain",
            "svc-123-012345678-012345678-012345678-0-b8441b48f2ec6b30-domain",
            id="leading-digit-64-hashed",
        ),
        # port name clean-up: '-' trimmed, '_' and '.' become '-'
        pytest.param("kd", "-grpc-", "kd-grpc", id="port-dashes-trimmed"),
        pytest.param("kd", "a_b.c", "kd-a-b-c", id="port-underscore-dot"),
        pytest.param("-kd-", "http", "kd-http", id="deploy-dashes-trimmed"),
    ],
)
def test_generate_service_name_without_prefix(deploy_name: str, port: str, want: str) -> None:
    assert generate_service_name(deploy_name, port) == want


def test_hashed_name_is_sha256_of_the_deploy_name() -> None:
    deploy = "a" * 60
    digest = hashlib.sha256(deploy.encode()).hexdigest()[:16]
    name = generate_service_name(deploy, "internal")
    assert name == f"svc-{deploy[: 63 - 16 - len('internal') - 6]}-{digest}-internal"
    assert len(name) == 63


@pytest.mark.parametrize(
    ("prefix", "port", "want"),
    [
        pytest.param("dm-2", "cluster", "dm-2-cluster", id="kuscia-vector"),
        pytest.param("dm-2", "domain", "dm-2-domain", id="kuscia-vector-2"),
        pytest.param("-pre-", "http", "pre-http", id="prefix-dashes-trimmed"),
        pytest.param("p", "a_b", "p-a-b", id="port-underscore"),
        # no digit rule and no length cap with a prefix (the Go comment promises one)
        pytest.param("a" * 48, "brpc-builtin", "a" * 48 + "-brpc-builtin", id="no-cap"),
    ],
)
def test_generate_service_name_with_prefix(prefix: str, port: str, want: str) -> None:
    assert generate_service_name("ignored-deploy", port, prefix=prefix) == want


@pytest.mark.parametrize(
    ("prefix", "valid"),
    [
        pytest.param("a", True, id="one-letter"),
        pytest.param("a" * 48, True, id="48-chars"),
        pytest.param("a" * 49, False, id="49-chars"),
        pytest.param("svc-1", True, id="digits-inside"),
        pytest.param("1svc", False, id="leading-digit"),
        pytest.param("svc-", False, id="trailing-dash"),
        pytest.param("Svc", False, id="upper-case"),
        pytest.param("s_vc", False, id="underscore"),
    ],
)
def test_service_name_prefix_pattern(prefix: str, valid: bool) -> None:
    assert bool(SERVICE_NAME_PREFIX_PATTERN.match(prefix)) is valid
