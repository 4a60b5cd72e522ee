"""The client wrapper's LIST paging, with the kubernetes library's API object replaced by a stub.

Everything else of ``Client`` is exercised against the real apiserver (tests/e2e); paging
needs more than 500 objects to show there, so its loop is checked here.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client as k8s_client

from kdgen.controller.client import LIST_PAGE_SIZE, Client
from kdgen.controller.reflector import slim_deployment


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class _Pages:
    """``list_deployment_for_all_namespaces`` serving ``total`` Deployments in pages."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.calls: list[dict[str, Any]] = []

    def list_deployment_for_all_namespaces(self, **kwargs: Any) -> _Response:
        self.calls.append(kwargs)
        start = int(kwargs.get("_continue") or 0)
        limit = kwargs.get("limit") or self.total
        end = min(start + limit, self.total)
        items = [
            {
                "metadata": {"name": f"d{i}", "namespace": "a", "managedFields": [{"x": 1}]},
                "spec": {"replicas": 1, "template": {"spec": {"containers": []}}},
                "status": {"availableReplicas": 1},
            }
            for i in range(start, end)
        ]
        metadata: dict[str, Any] = {"resourceVersion": "42"}
        if end < self.total:
            metadata["continue"] = str(end)
        return _Response({"items": items, "metadata": metadata})


def _client(pages: _Pages) -> Client:
    client = Client(k8s_client.ApiClient(k8s_client.Configuration()))
    client._apps = pages  # type: ignore[assignment]
    return client


def test_a_kept_list_is_read_in_pages_and_slimmed_as_it_comes() -> None:
    pages = _Pages(2 * LIST_PAGE_SIZE + 7)
    items, version = _client(pages).list_deployments("", keep=slim_deployment)
    assert version == "42"
    assert [d["metadata"]["name"] for d in items] == [f"d{i}" for i in range(pages.total)]
    assert all("managedFields" not in d["metadata"] and "template" not in d["spec"] for d in items)
    assert [call.get("_continue") for call in pages.calls] == [
        None,
        str(LIST_PAGE_SIZE),
        str(2 * LIST_PAGE_SIZE),
    ]
    assert {call["limit"] for call in pages.calls} == {LIST_PAGE_SIZE}


def test_without_keep_a_list_is_one_request_of_whole_objects() -> None:
    # --once counts on one LIST per collection (the request budget).
    pages = _Pages(LIST_PAGE_SIZE + 1)
    items, _ = _client(pages).list_deployments("")
    assert len(pages.calls) == 1
    assert "limit" not in pages.calls[0]
    assert len(items) == pages.total
    assert items[0]["metadata"]["managedFields"] == [{"x": 1}]
