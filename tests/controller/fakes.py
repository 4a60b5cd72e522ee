"""Fakes at the client-wrapper boundary: an in-memory apiserver with ``Client``'s methods.

Only the calls the controller makes, with the apiserver's rules that matter to it: a status
patch with a stale ``metadata.resourceVersion`` is a 409, a missing object a 404, a forbidden
call a 403; every call is counted by (verb, resource) as the apiserver's request metrics are.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from kdgen.controller.client import Keep
from kdgen.errors import ClusterError
from kdgen.model import LABEL_KUSCIA_DEPLOYMENT_NAME


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def kd(
    name: str, domains: list[str], namespace: str = "cross-domain", **status: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "spec": {"initiator": domains[0], "parties": [{"domainID": d} for d in domains]},
    }
    if status:
        body["status"] = status
    return body


def deployment(
    namespace: str, name: str, *, available: int = 1, replicas: int = 1
) -> dict[str, Any]:
    labels = {LABEL_KUSCIA_DEPLOYMENT_NAME: name}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "resourceVersion": "5", "managedFields": [{"big": "x" * 100}]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}}},
        "status": {"replicas": replicas, "availableReplicas": available,
                   "updatedReplicas": replicas, "unavailableReplicas": replicas - available},
    }  # fmt: skip


def pod(namespace: str, kd_name: str, reason: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "labels": {LABEL_KUSCIA_DEPLOYMENT_NAME: kd_name}},
        "status": {"containerStatuses": [{"state": {"waiting": {"reason": reason}}}]},
    }


class FakeClient:
    """An in-memory apiserver for the controller's calls."""

    def __init__(self) -> None:
        self.kds: dict[tuple[str, str], dict[str, Any]] = {}
        self.namespaces: set[str] = set()
        self.deployments: list[dict[str, Any]] = []
        self.pods: list[dict[str, Any]] = []
        self.requests: Counter[tuple[str, str]] = Counter()
        self.forbidden: set[tuple[str, str]] = set()  # (verb, resource or resource@namespace)
        self.conflicts = 0  # how many status patches answer 409 before one succeeds
        self.on_patch: list[Any] = []
        self.pod_selectors: list[str] = []
        self.version = 10
        self.unreachable = False  # every call fails as a connection error does (no status)
        self._lock = threading.Lock()

    def add_kd(self, body: dict[str, Any]) -> None:
        metadata = body["metadata"]
        self.kds[(metadata["namespace"], metadata["name"])] = copy.deepcopy(body)

    def _count(self, verb: str, resource: str, namespace: str = "") -> None:
        with self._lock:
            self.requests[(verb, resource)] += 1
        if self.unreachable:
            raise ClusterError(f"{verb} {resource}: connection refused")
        if (verb, resource) in self.forbidden or (
            verb,
            f"{resource}@{namespace}",
        ) in self.forbidden:
            where = f" in namespace {namespace}" if namespace else ""
            raise ClusterError(f"{verb} {resource}{where}: forbidden", status=403)

    # KusciaDeployments

    def list_kds(
        self, namespace: str, *, keep: Keep | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        self._count("LIST", "kusciadeployments", namespace)
        items = [copy.deepcopy(v) for (ns, _), v in self.kds.items() if ns == namespace]
        return [keep(i) for i in items] if keep else items, str(self.version)

    def get_kd(self, namespace: str, name: str) -> dict[str, Any]:
        self._count("GET", "kusciadeployments", namespace)
        found = self.kds.get((namespace, name))
        if found is None:
            raise ClusterError(f"get kusciadeployments {namespace}/{name}: not found", status=404)
        return copy.deepcopy(found)

    def patch_kd_status(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._count("PATCH", "kusciadeployments/status", namespace)
        for hook in self.on_patch:
            hook(namespace, name)
        with self._lock:
            current = self.kds.get((namespace, name))
            if current is None:
                raise ClusterError("not found", status=404)
            if self.conflicts > 0 or (
                body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
            ):
                self.conflicts = max(0, self.conflicts - 1)
                self._bump(current)
                raise ClusterError("the object has been modified", status=409, reason="Conflict")
            status = current.setdefault("status", {})
            _merge(status, body["status"])
            self._bump(current)
            return copy.deepcopy(current)

    def _bump(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    # Namespaces, Deployments, Pods

    def list_namespaces(self) -> tuple[list[dict[str, Any]], str]:
        self._count("LIST", "namespaces")
        return [{"metadata": {"name": n}} for n in sorted(self.namespaces)], str(self.version)

    def list_deployments(
        self, namespace: str = "", *, keep: Keep | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        self._count("LIST", "deployments", namespace)
        items = [
            d
            for d in self.deployments
            if (not namespace or d["metadata"]["namespace"] == namespace)
            and LABEL_KUSCIA_DEPLOYMENT_NAME in (d["metadata"].get("labels") or {})
        ]  # the real client lists with the kd-name label selector
        items = copy.deepcopy(items)
        return [keep(i) for i in items] if keep else items, str(self.version)

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._count("GET", "deployments", namespace)
        for d in self.deployments:
            if (d["metadata"]["namespace"], d["metadata"]["name"]) == (namespace, name):
                return copy.deepcopy(d)
        return None

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self._count("LIST", "pods", namespace)
        self.pod_selectors.append(selector)
        return [copy.deepcopy(p) for p in self.pods if p["metadata"]["namespace"] == namespace]

    def watch_kds(self, namespace: str, version: str) -> Iterator[dict[str, Any]]:
        return iter(())

    def watch_namespaces(self, version: str) -> Iterator[dict[str, Any]]:
        return iter(())

    def watch_deployments(self, namespace: str, version: str) -> Iterator[dict[str, Any]]:
        return iter(())


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
