"""Smoke tests proving the test control plane is a real Kubernetes, not a lookalike.

Each test pins down one behaviour the status-sync tests rely on and a mock would get wrong:
controllers and scheduling, status-subresource isolation, optimistic concurrency, strict
server-side validation, patch content types, least-privilege ServiceAccount tokens and an
apiserver restart.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from tests.support.cluster import FAKE_NODE, Cluster

GROUP = "test.kdgen.invalid"
VERSION = "v1"
PLURAL = "widgets"
CRD_NAME = f"{PLURAL}.{GROUP}"

WIDGET_CRD = f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {CRD_NAME}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{kind: Widget, listKind: WidgetList, plural: {PLURAL}, singular: widget}}
  versions:
  - name: {VERSION}
    served: true
    storage: true
    subresources: {{status: {{}}}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer, minimum: 0}}
              color: {{type: string}}
          status:
            type: object
            properties:
              phase: {{type: string}}
              observedSize: {{type: integer}}
"""


def deployment(name: str, replicas: int = 2) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: main, image: registry.invalid/fake:1}}]
"""


@pytest.fixture(scope="module")
def widget_crd(cluster: Cluster) -> Iterator[str]:
    cluster.kubectl("apply", "--server-side", "-f", "-", input=WIDGET_CRD)
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    yield CRD_NAME
    cluster.kubectl("delete", f"crd/{CRD_NAME}", "--wait=false", check=False)


@pytest.fixture
def custom(cluster: Cluster) -> Iterator[CustomObjectsApi]:
    with cluster.api_client() as api:
        yield CustomObjectsApi(api)


def as_dict(obj: object) -> dict[str, Any]:
    """CustomObjectsApi is typed as returning ``object``; it returns the decoded JSON."""
    assert isinstance(obj, dict)
    return obj


def create_widget(
    custom: CustomObjectsApi, namespace: str, spec: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    obj = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": spec,
        **extra,
    }
    return as_dict(custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, obj))


def test_deployment_becomes_available_via_controller_manager_scheduler_and_kwok(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("web"))
    cluster.kubectl("rollout", "status", "-n", namespace, "deployment/web", "--timeout=90s")

    with cluster.api_client() as api:
        dep = api.sanitize_for_serialization(
            AppsV1Api(api).read_namespaced_deployment("web", namespace)
        )
        pods = api.sanitize_for_serialization(
            CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=web")
        )["items"]
    conditions = {c["type"]: c["status"] for c in dep["status"]["conditions"]}
    assert conditions["Available"] == "True"
    assert dep["status"]["readyReplicas"] == 2
    assert len(pods) == 2
    assert {p["spec"]["nodeName"] for p in pods} == {FAKE_NODE}  # bound by kube-scheduler
    assert {p["status"]["phase"] for p in pods} == {"Running"}  # run by kwok
    assert {p["metadata"]["ownerReferences"][0]["kind"] for p in pods} == {"ReplicaSet"}


def test_status_subresource_isolates_spec_and_status(
    cluster: Cluster, widget_crd: str, namespace: str, custom: CustomObjectsApi
) -> None:
    created = create_widget(custom, namespace, {"size": 1}, status={"phase": "DroppedOnCreate"})
    assert "status" not in created
    assert created["metadata"]["generation"] == 1

    main = as_dict(
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "w",
            {"spec": {"size": 2}, "status": {"phase": "FromMainResource"}},
        )
    )
    assert main["spec"]["size"] == 2
    assert "status" not in main
    assert main["metadata"]["generation"] == 2

    status = as_dict(
        custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "w",
            {"spec": {"size": 99}, "status": {"phase": "Ready", "observedSize": 2}},
        )
    )
    assert status["status"] == {"phase": "Ready", "observedSize": 2}
    assert status["spec"]["size"] == 2
    assert status["metadata"]["generation"] == 2  # status writes do not bump generation


@pytest.mark.parametrize("subresource", ["", "status"], ids=["main", "status"])
def test_stale_resource_version_conflicts(
    cluster: Cluster, widget_crd: str, namespace: str, custom: CustomObjectsApi, subresource: str
) -> None:
    stale = create_widget(custom, namespace, {"size": 1})
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "w", {"spec": {"size": 2}}
    )

    stale["spec"]["size"] = 3
    stale["status"] = {"phase": "Stale"}
    replace = (
        custom.replace_namespaced_custom_object_status
        if subresource
        else custom.replace_namespaced_custom_object
    )
    with pytest.raises(ApiException) as caught:
        replace(GROUP, VERSION, namespace, PLURAL, "w", stale)
    assert caught.value.status == 409
    assert "the object has been modified" in str(caught.value.body)


POD_TEMPLATE = "template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}"
NOT_IN_SCHEMA = ".spec.bogus: field not declared in schema"
INVALID = {
    "crd-unknown-field": ("Widget", "spec: {size: 1, bogus: true}", NOT_IN_SCHEMA),
    "crd-below-minimum": ("Widget", "spec: {size: -1}", "should be greater than or equal to 0"),
    "crd-wrong-type": (
        "Widget",
        "spec: {size: big}",
        ".spec.size: expected numeric (int or float), got string",
    ),
    "deployment-unknown-field": ("Deployment", "spec: {bogus: 1}", NOT_IN_SCHEMA),
    "deployment-negative-replicas": (
        "Deployment",
        f"spec: {{replicas: -1, selector: {{matchLabels: {{a: b}}}}, {POD_TEMPLATE}}}",
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    ),
}


@pytest.mark.parametrize(("kind", "spec", "message"), INVALID.values(), ids=INVALID.keys())
def test_server_side_apply_rejects_invalid_objects(
    cluster: Cluster, widget_crd: str, namespace: str, kind: str, spec: str, message: str
) -> None:
    api_version = f"{GROUP}/{VERSION}" if kind == "Widget" else "apps/v1"
    manifest = f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: bad}}\n{spec}\n"

    applied = cluster.kubectl(
        "apply",
        "--server-side",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifest,
        check=False,
    )

    assert applied.returncode != 0
    assert message in applied.stderr, applied.stderr
    resource = PLURAL if kind == "Widget" else "deployments"
    got = cluster.kubectl("get", "-n", namespace, f"{resource}/bad", check=False)
    assert "NotFound" in got.stderr


def test_merge_patch_on_status_works_but_strategic_merge_on_custom_resource_is_415(
    cluster: Cluster, widget_crd: str, namespace: str, custom: CustomObjectsApi
) -> None:
    create_widget(custom, namespace, {"size": 1})

    patched = custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "w",
        {"status": {"phase": "Ready"}},
        _content_type="application/merge-patch+json",
    )
    assert as_dict(patched)["status"] == {"phase": "Ready"}

    patches = (custom.patch_namespaced_custom_object, custom.patch_namespaced_custom_object_status)
    for patch in patches:
        with pytest.raises(ApiException) as caught:
            patch(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                "w",
                {"status": {"phase": "Other"}},
                _content_type="application/strategic-merge-patch+json",
            )
        assert caught.value.status == 415
    unchanged = as_dict(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "w"))
    assert unchanged["status"] == {"phase": "Ready"}


def test_service_account_token_has_only_its_cluster_role_rights(
    cluster: Cluster, widget_crd: str, namespace: str, tmp_path: Path
) -> None:
    role = f"e2e-reader-{secrets.token_hex(3)}"
    rbac = f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {role}}}
rules:
- {{apiGroups: [apps], resources: [deployments], verbs: [get, list, watch]}}
- {{apiGroups: [{GROUP}], resources: [{PLURAL}/status], verbs: [patch]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {role}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}
subjects: [{{kind: ServiceAccount, name: syncer, namespace: {namespace}}}]
"""
    cluster.kubectl("apply", "-f", "-", input=rbac)
    try:
        token = cluster.service_account_token(namespace, "syncer")
        with cluster.api_client() as admin:
            create_widget(CustomObjectsApi(admin), namespace, {"size": 1})

        code, review = cluster.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            token=token,
        )
        assert code == 201, review
        assert review["status"]["userInfo"]["username"] == (
            f"system:serviceaccount:{namespace}:syncer"
        )

        with cluster.api_client(token) as api:
            AppsV1Api(api).list_deployment_for_all_namespaces()  # allowed, cluster-wide
            CustomObjectsApi(api).patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, "w", {"status": {"phase": "Synced"}}
            )
            with pytest.raises(ApiException) as denied_main:
                CustomObjectsApi(api).patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, "w", {"spec": {"size": 5}}
                )
            with pytest.raises(ApiException) as denied_secrets:
                CoreV1Api(api).list_namespaced_secret(namespace)
        assert denied_main.value.status == 403
        assert denied_secrets.value.status == 403

        kubeconfig = cluster.write_kubeconfig(tmp_path / "syncer.kubeconfig", token=token)
        can_i = cluster.kubectl(
            "auth",
            "can-i",
            "delete",
            "deployments",
            "-n",
            namespace,
            kubeconfig=kubeconfig,
            check=False,
        )
        assert can_i.stdout.strip() == "no"
    finally:
        cluster.kubectl("delete", "clusterrolebinding,clusterrole", role, check=False)


@pytest.mark.tools
def test_kustomize_output_applies_server_side(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        f"namespace: {namespace}\nresources: [deployment.yaml]\n"
        "configMapGenerator: [{name: settings, literals: [mode=test]}]\n"
    )
    (tmp_path / "deployment.yaml").write_text(deployment("kustomized", replicas=1))

    built = subprocess.run(
        [str(cluster.kustomize), "build", str(tmp_path)], capture_output=True, text=True, check=True
    )

    assert "name: settings-" in built.stdout  # hashed generator name: really kustomize
    applied = cluster.kubectl("apply", "--server-side", "-f", "-", input=built.stdout)
    assert "deployment.apps/kustomized serverside-applied" in applied.stdout


@pytest.mark.parametrize("kill", [False, True], ids=["graceful", "crash"])
def test_apiserver_restart_keeps_data_and_the_controllers_recover(
    cluster: Cluster, namespace: str, kill: bool
) -> None:
    cluster.kubectl("create", "configmap", "survivor", "-n", namespace, "--from-literal=k=v")
    before = cluster.pids
    port = cluster.ports.apiserver

    began = time.monotonic()
    cluster.restart_apiserver(kill=kill)
    restart_seconds = time.monotonic() - began
    print(f"kube-apiserver restart took {restart_seconds:.1f}s")

    after = cluster.pids
    assert after["kube-apiserver"] != before["kube-apiserver"]
    assert {k: v for k, v in after.items() if k != "kube-apiserver"} == {
        k: v for k, v in before.items() if k != "kube-apiserver"
    }
    assert cluster.ports.apiserver == port
    got = cluster.kubectl(
        "get", "configmap", "survivor", "-n", namespace, "-o", "jsonpath={.data.k}"
    )
    assert got.stdout == "v"
    # controller-manager, scheduler and kwok reconnect on their own:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("after", 1))
    cluster.kubectl("rollout", "status", "-n", namespace, "deployment/after", "--timeout=90s")
