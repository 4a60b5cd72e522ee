"""kdgen.render (and the yamlio dumper under it): output order, the stream, the tree, diffs.

ARCHITECTURE.md's determinism rules: objects sorted by (namespace, kind: ConfigMap < Service <
Deployment, name); block style, no anchors, no folded lines, keys in builder order.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml

from kdgen.render import (
    KUSTOMIZATION,
    MARKER,
    file_name,
    render_stream,
    render_tree,
    sort_manifests,
    tree_diff,
    unified_diff,
)


def obj(kind: str, namespace: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        **extra,
    }


ORDERED = [
    obj("ConfigMap", "alice", "z-configtemplate"),
    obj("Service", "alice", "a-svc"),
    obj("Service", "alice", "b-svc"),
    obj("Deployment", "alice", "a"),
    obj("Widget", "alice", "a"),
    obj("ConfigMap", "bob", "a-configtemplate"),
    obj("Deployment", "bob", "a"),
]


def key(o: dict[str, Any]) -> tuple[str, str, str]:
    return (o["metadata"]["namespace"], o["kind"], o["metadata"]["name"])


def test_sort_manifests_orders_by_namespace_kind_rank_and_name() -> None:
    for seed in range(5):
        shuffled = ORDERED[:]
        random.Random(seed).shuffle(shuffled)
        assert [key(o) for o in sort_manifests(shuffled)] == [key(o) for o in ORDERED]


def test_render_stream_is_block_style_with_a_marker_per_document() -> None:
    long_value = '{"parties":[' + ",".join(f'"p{i}"' for i in range(80)) + "]}"
    shared = {"k": "v"}
    objects = [
        {
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "a"},
            "data": {"z.conf": "line one\nline two\n", "a.conf": "x"},
        },
        {
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "a", "labels": shared},
            "spec": {"selector": {"matchLabels": shared}, "value": long_value, "flag": "true"},
        },
    ]
    text = render_stream(objects)
    assert text == (
        "---\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: c\n"
        "  namespace: a\n"
        "data:\n"
        "  z.conf: |\n"
        "    line one\n"
        "    line two\n"
        "  a.conf: x\n"
        "---\n"
        "kind: Deployment\n"
        "metadata:\n"
        "  name: d\n"
        "  namespace: a\n"
        "  labels:\n"
        "    k: v\n"
        "spec:\n"
        "  selector:\n"
        "    matchLabels:\n"
        "      k: v\n"
        f"  value: '{long_value}'\n"
        "  flag: 'true'\n"
    )
    assert list(yaml.safe_load_all(text)) == objects


def test_render_stream_of_nothing_is_empty() -> None:
    assert render_stream([]) == ""


@pytest.mark.parametrize(
    ("manifest", "want"),
    [
        pytest.param(obj("Deployment", "a", "serving"), "deployment-serving.yaml", id="deployment"),
        pytest.param(obj("Service", "a", "svc-1-api"), "service-svc-1-api.yaml", id="service"),
        pytest.param(
            obj("ConfigMap", "a", "x-configtemplate"),
            "configmap-x-configtemplate.yaml",
            id="configmap",
        ),
    ],
)
def test_file_name(manifest: dict[str, Any], want: str) -> None:
    assert file_name(manifest) == want


def test_render_tree_has_a_kustomization_per_domain_and_one_on_top() -> None:
    shuffled = ORDERED[::-1]
    files = render_tree(shuffled)

    assert list(files) == sorted(files)
    assert sorted(files) == sorted(
        [
            MARKER,
            KUSTOMIZATION,
            "alice/configmap-z-configtemplate.yaml",
            "alice/deployment-a.yaml",
            "alice/kustomization.yaml",
            "alice/service-a-svc.yaml",
            "alice/service-b-svc.yaml",
            "alice/widget-a.yaml",
            "bob/configmap-a-configtemplate.yaml",
            "bob/deployment-a.yaml",
            "bob/kustomization.yaml",
        ]
    )
    assert yaml.safe_load(files["alice/kustomization.yaml"]) == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [  # output order, so kustomize applies ConfigMaps and Services first
            "configmap-z-configtemplate.yaml",
            "service-a-svc.yaml",
            "service-b-svc.yaml",
            "deployment-a.yaml",
            "widget-a.yaml",
        ],
    }
    assert yaml.safe_load(files[KUSTOMIZATION])["resources"] == ["alice", "bob"]
    assert yaml.safe_load(files["bob/deployment-a.yaml"]) == obj("Deployment", "bob", "a")
    assert not files["bob/deployment-a.yaml"].startswith("---")
    assert "kdgen" in files[MARKER]


def test_render_tree_of_nothing_is_marker_and_empty_kustomization() -> None:
    files = render_tree([])
    assert sorted(files) == [MARKER, KUSTOMIZATION]
    assert yaml.safe_load(files[KUSTOMIZATION])["resources"] == []


def test_unified_diff_names_both_sides() -> None:
    assert unified_diff("same\n", "same\n", name="f") == ""
    assert unified_diff("a\nb\n", "a\nc\n", name="out.yaml") == (
        "--- out.yaml (committed)\n+++ out.yaml (generated)\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    )


def test_tree_diff_reports_changed_added_and_removed_files_in_path_order() -> None:
    committed = {"a/x.yaml": "1\n", "b/gone.yaml": "old\n", "c/same.yaml": "s\n"}
    generated = {"a/x.yaml": "2\n", "a/new.yaml": "n\n", "c/same.yaml": "s\n"}
    assert tree_diff(committed, generated) == (
        "--- a/new.yaml (committed)\n+++ a/new.yaml (generated)\n@@ -0,0 +1 @@\n+n\n"
        "--- a/x.yaml (committed)\n+++ a/x.yaml (generated)\n@@ -1 +1 @@\n-1\n+2\n"
        "--- b/gone.yaml (committed)\n+++ b/gone.yaml (generated)\n@@ -1 +0,0 @@\n-old\n"
    )
    assert tree_diff(committed, dict(committed)) == ""
