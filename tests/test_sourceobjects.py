"""The KDs and AppImages kdgen emits beside their objects (issue 9 item 1)."""

from __future__ import annotations

import copy
from typing import Any

from kdgen.load import Document
from kdgen.render import render_tree, sort_manifests
from kdgen.sourceobjects import clean_source, source_objects

LIVE_KD: dict[str, Any] = {
    "apiVersion": "kuscia.secretflow/v1alpha1",
    "kind": "KusciaDeployment",
    "metadata": {
        "name": "serving",
        "namespace": "cross-domain",
        "uid": "0b7c5a1e-1111-4c4c-9a9a-222222222222",
        "resourceVersion": "4711",
        "generation": 3,
        "creationTimestamp": "2026-11-20T08:37:20Z",
        "managedFields": [{"manager": "kubectl"}],
        "selfLink": "/apis/x",
        "ownerReferences": [{"kind": "X", "name": "y", "uid": "z"}],
        "finalizers": ["kuscia.secretflow/finalizer"],
        "labels": {"kuscia.secretflow/app-type": "serving"},
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "config.kubernetes.io/origin": "path: kd.yaml",
            "internal.config.kubernetes.io/path": "kd.yaml",
            "kdgen.kuscia.secretflow/ports": "allocated",
            "kuscia.secretflow/initiator": "alice",
            "team.example/owner": "serving-team",
        },
    },
    "spec": {"initiator": "alice", "parties": [{"domainID": "alice", "appImageRef": "img"}]},
    "status": {"phase": "Available", "totalParties": 1},
}


def test_clean_source_drops_status_server_and_tool_fields_and_keeps_the_rest() -> None:
    before = copy.deepcopy(LIVE_KD)
    cleaned = clean_source(LIVE_KD)

    assert LIVE_KD == before, "the input is not changed"
    assert cleaned == {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "KusciaDeployment",
        "metadata": {
            "name": "serving",
            "namespace": "cross-domain",
            "labels": {"kuscia.secretflow/app-type": "serving"},
            "annotations": {
                "kuscia.secretflow/initiator": "alice",
                "team.example/owner": "serving-team",
            },
        },
        "spec": LIVE_KD["spec"],
    }


def test_clean_source_removes_annotations_left_empty() -> None:
    body = {"kind": "K", "metadata": {"name": "a", "annotations": {"config.k8s.io/id": "1"}}}
    assert clean_source(body) == {"kind": "K", "metadata": {"name": "a"}}


def _doc(body: dict[str, Any], index: int = 1) -> Document:
    return Document("in.yaml", index, body)


def test_kd_without_namespace_gets_cross_domain_after_its_name() -> None:
    kd = {"apiVersion": "v", "kind": "KusciaDeployment", "metadata": {"name": "a", "labels": {}}}
    [emitted] = source_objects([], [_doc(kd)], {})
    assert list(emitted["metadata"].items()) == [
        ("name", "a"),
        ("namespace", "cross-domain"),
        ("labels", {}),
    ]


def test_app_image_loses_its_namespace_as_the_apiserver_drops_it() -> None:
    image = {"apiVersion": "v", "kind": "AppImage", "metadata": {"name": "i", "namespace": "x"}}
    [emitted] = source_objects([_doc(image)], [], {})
    assert emitted["metadata"] == {"name": "i"}


def test_allocated_ports_are_recorded_on_the_kd_as_kuscia_annotates_it() -> None:
    """spec §15 row 19: pre-populate allocated-ports so a Kuscia controller reuses them."""
    kd = {"apiVersion": "v", "kind": "KusciaDeployment", "metadata": {"name": "a"}}
    other = {"apiVersion": "v", "kind": "KusciaDeployment", "metadata": {"name": "b"}}
    value = '[{"domainID":"alice","namedPort":{"service":20001}}]'
    a, b = source_objects([], [_doc(kd), _doc(other, 2)], {"a": value})
    assert a["metadata"]["annotations"] == {"kuscia.secretflow/allocated-ports": value}
    assert "annotations" not in b["metadata"]


def test_sources_come_first_and_go_to_the_cross_domain_folder() -> None:
    image = {"apiVersion": "v", "kind": "AppImage", "metadata": {"name": "img"}}
    kd = {"apiVersion": "v", "kind": "KusciaDeployment", "metadata": {"name": "kd"}}
    made = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "alice"},
    }
    objects = [made, *source_objects([_doc(image)], [_doc(kd)], {})]
    assert [o["kind"] for o in sort_manifests(objects)] == [
        "AppImage",
        "KusciaDeployment",
        "ConfigMap",
    ]
    tree = render_tree(objects)
    assert sorted(tree) == [
        ".kdgen",
        "alice/configmap-c.yaml",
        "alice/kustomization.yaml",
        "cross-domain/appimage-img.yaml",
        "cross-domain/kusciadeployment-kd.yaml",
        "cross-domain/kustomization.yaml",
        "kustomization.yaml",
    ]
    assert tree["kustomization.yaml"].endswith("resources:\n- cross-domain\n- alice\n")


def test_clean_source_keeps_the_kd_uid_record() -> None:
    """The uid in the objects' labels and selectors must survive an export of the emitted KD."""
    kd = copy.deepcopy(LIVE_KD)
    kd["metadata"]["annotations"]["kdgen.kuscia.secretflow/kd-uid"] = "old-uid"
    annotations = clean_source(kd)["metadata"]["annotations"]
    assert annotations["kdgen.kuscia.secretflow/kd-uid"] == "old-uid"
    assert "kdgen.kuscia.secretflow/ports" not in annotations
