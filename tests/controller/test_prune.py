"""--prune's decisions (kdgen.controller.prune) and the pass that acts on them (issue 9, item 2).

Kuscia's clean-up (``pkg/controllers/kusciadeployment``: the KD's objects are found by the
``kd-name`` and ``owner_namespace`` labels and deleted Service, Deployment, ConfigMap) is the
model; kdgen adds the GitOps guard and the empty-list refusal.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from kdgen.controller import reconcile
from kdgen.controller.prune import (
    ARGOCD_TRACKING_ANNOTATION,
    ARGOCD_TRACKING_LABEL,
    PrunePlan,
    Target,
    manager,
    plan_prune,
    selector,
)
from kdgen.errors import ClusterError
from kdgen.model import LABEL_KUSCIA_DEPLOYMENT_NAME, LABEL_OWNER_NAMESPACE


def obj(
    name: str,
    kd: str,
    namespace: str = "alice",
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    owners: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {LABEL_KUSCIA_DEPLOYMENT_NAME: kd, LABEL_OWNER_NAMESPACE: "cross-domain"}
        | (labels or {}),
    }
    if annotations:
        metadata["annotations"] = annotations
    if owners:
        metadata["ownerReferences"] = owners
    return {"metadata": metadata}


ARGO_LABEL = {ARGOCD_TRACKING_LABEL: "serving"}
ARGO_ANNOTATION = {ARGOCD_TRACKING_ANNOTATION: "serving:apps/Deployment:alice/gone"}
FLUX = {
    "kustomize.toolkit.fluxcd.io/name": "serving-alice",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
}
OWNER = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "holder", "uid": "u"}]


def test_selector_is_kuscias_owner_labels() -> None:
    assert selector("cd") == f"{LABEL_OWNER_NAMESPACE}=cd,{LABEL_KUSCIA_DEPLOYMENT_NAME}"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"labels": ARGO_LABEL}, f"Argo CD (label {ARGOCD_TRACKING_LABEL}=serving)"),
        ({"annotations": ARGO_ANNOTATION}, f"Argo CD (annotation {ARGOCD_TRACKING_ANNOTATION})"),
        ({"labels": FLUX}, "Flux (label kustomize.toolkit.fluxcd.io/name=serving-alice)"),
        ({"owners": OWNER}, "an owner reference (ConfigMap holder)"),
        ({"labels": {"app.kubernetes.io/name": "x"}}, None),  # not a tracking label
        ({"annotations": {"argocd.argoproj.io/sync-wave": "1"}}, None),
        ({}, None),
    ],
)
def test_manager_recognises_gitops_tracking(given: dict[str, Any], expected: str | None) -> None:
    assert manager(obj("x", "gone", **given)) == expected


def test_plan_deletes_only_unmanaged_objects_of_gone_kds_in_kuscias_order() -> None:
    labelled = [
        ("ConfigMap", obj("gone-configtemplate", "gone")),
        ("Deployment", obj("gone", "gone", "bob")),
        ("Service", obj("gone-svc", "gone")),
        ("Service", obj("live-svc", "live")),
        ("Service", obj("argo-svc", "gone", labels=ARGO_LABEL)),
        ("Deployment", obj("flux", "gone", labels=FLUX)),
        ("ConfigMap", obj("owned", "gone", owners=OWNER)),
        ("ConfigMap", obj("tracked", "gone", annotations=ARGO_ANNOTATION)),
    ]
    plan = plan_prune(labelled, {"live"}, kd_namespace="cross-domain")
    assert plan.refused == ""
    assert [t.resource for t in plan.delete] == [
        "Service alice/gone-svc",
        "Deployment bob/gone",
        "ConfigMap alice/gone-configtemplate",
    ]
    assert [(t.resource, who.split(" ")[0]) for t, who in plan.kept] == [
        ("Service alice/argo-svc", "Argo"),
        ("Deployment alice/flux", "Flux"),
        ("ConfigMap alice/owned", "an"),
        ("ConfigMap alice/tracked", "Argo"),
    ]

    everything = plan_prune(labelled, {"live"}, kd_namespace="cross-domain", include_managed=True)
    assert len(everything.delete) == 7
    assert everything.kept == ()


def test_empty_kd_list_with_labelled_objects_refuses_everything() -> None:
    labelled = [("Service", obj("a", "x")), ("Deployment", obj("b", "y"))]
    for include_managed in (False, True):
        plan = plan_prune(labelled, set(), kd_namespace="cd", include_managed=include_managed)
        assert (plan.delete, plan.kept) == ((), ())
        assert plan.refused.startswith(
            "refusing to prune: no KusciaDeployment in namespace cd, but 2 objects are labelled"
            " for one (wrong context or --kd-namespace?)"
        )
        assert plan.refused.endswith(
            f"kubectl delete service,deployment,configmap --all-namespaces -l {selector('cd')}"
        )


def test_empty_kd_list_and_nothing_labelled_is_no_refusal() -> None:
    assert plan_prune([], set(), kd_namespace="cd") == PrunePlan()


def test_target_resource() -> None:
    assert Target("kd", "Service", "ns", "n").resource == "Service ns/n"


# --- the pass, against a fake client --------------------------------------------------------


class FakeCluster:
    """The three calls ``sync.prune`` makes, over an in-memory set of objects and KDs."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]], kds: set[str]) -> None:
        self.objects, self.kds = objects, kds
        self.deleted: list[tuple[str, str, str]] = []
        self.fail_list: str = ""
        self.selectors: list[str] = []

    def list_labelled(self, kind: str, label_selector: str) -> list[dict[str, Any]]:
        self.selectors.append(label_selector)
        if kind == self.fail_list:
            raise ClusterError(f"list {kind} objects: boom", status=500)
        return self.objects.get(kind, [])

    def get_kd(self, namespace: str, name: str) -> dict[str, Any]:
        if name not in self.kds:
            raise ClusterError("not found", status=404)
        return {"metadata": {"name": name, "namespace": namespace}}

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.deleted.append((kind, namespace, name))


def run_prune(fake: FakeCluster, kd_names: set[str], **options: Any) -> reconcile.PruneOutcome:
    opts = reconcile.SyncOptions(prune=True, **options)
    return reconcile.prune(fake, kd_names, opts, out=io.StringIO())  # type: ignore[arg-type]


def test_pass_keeps_gitops_objects_unless_told() -> None:
    objects = {
        "Service": [obj("plain", "gone"), obj("argo", "gone", labels=ARGO_LABEL)],
        "Deployment": [obj("flux", "gone", labels=FLUX), obj("live", "live")],
    }
    fake = FakeCluster(objects, {"live"})
    outcome = run_prune(fake, {"live"})
    assert fake.selectors == [selector("cross-domain")] * 3
    assert fake.deleted == [("Service", "alice", "plain")]
    assert outcome.deleted == ("Service alice/plain",)
    assert outcome.kept == ("Service alice/argo", "Deployment alice/flux")
    assert outcome.errors == ()

    fake = FakeCluster(objects, {"live"})
    outcome = run_prune(fake, {"live"}, prune_gitops_managed=True)
    assert fake.deleted == [
        ("Service", "alice", "argo"),
        ("Service", "alice", "plain"),
        ("Deployment", "alice", "flux"),
    ]


def test_pass_refuses_on_an_empty_kd_list() -> None:
    fake = FakeCluster({"ConfigMap": [obj("c", "gone")]}, set())
    outcome = run_prune(fake, set())
    assert fake.deleted == []
    assert outcome.deleted == ()
    assert len(outcome.errors) == 1
    assert outcome.errors[0].startswith("prune: refusing to prune: no KusciaDeployment")


def test_pass_deletes_nothing_when_a_listing_failed() -> None:
    fake = FakeCluster({"Service": [obj("s", "gone")]}, {"live"})
    fake.fail_list = "ConfigMap"
    outcome = run_prune(fake, {"live"})
    assert fake.deleted == []
    assert outcome.errors == ("prune: list ConfigMap objects: boom",)


def test_pass_rereads_the_kd_before_deleting() -> None:
    fake = FakeCluster({"Service": [obj("s", "new")]}, {"live", "new"})  # created since the list
    assert run_prune(fake, {"live"}).deleted == ()
    assert fake.deleted == []


def test_dry_run_prints_deletes_and_keeps() -> None:
    fake = FakeCluster({"Service": [obj("s", "gone"), obj("a", "gone", labels=ARGO_LABEL)]}, {"x"})
    out = io.StringIO()
    outcome = reconcile.prune(
        fake,  # type: ignore[arg-type]
        {"x"},
        reconcile.SyncOptions(prune=True, dry_run=True),
        out=out,
    )
    assert fake.deleted == []
    assert outcome.deleted == ("Service alice/s",)
    records = [json.loads(chunk) for chunk in out.getvalue().replace("}\n{", "}\0{").split("\0")]
    assert [(r["action"], r["resource"]) for r in records] == [
        ("keep", "Service alice/a"),
        ("delete", "Service alice/s"),
    ]
