"""kdgen.controller.reflector with a fake lister and watcher (client-go's reflector as model)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from kdgen.controller.reflector import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    Reflector,
    key_of,
    slim_deployment,
    slim_kd,
)
from kdgen.errors import ClusterError
from tests.controller.fakes import deployment


class NoSleep(threading.Event):
    """A stop event whose waits return at once; it stops the loop after ``budget`` waits."""

    def __init__(self) -> None:
        super().__init__()
        self.waited: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.append(float(timeout or 0))
        return self.is_set()


def obj(name: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version}, **extra}


class Script:
    """Lists and watches that play a script; stops the reflector when the script ends."""

    def __init__(self, stop: threading.Event, lists: list[Any], watches: list[Any]) -> None:
        self.stop, self.lists, self.watches = stop, lists, watches
        self.watched_from: list[str] = []
        self.listed = 0

    def lister(self) -> tuple[list[dict[str, Any]], str]:
        self.listed += 1
        step = self.lists.pop(0)
        if isinstance(step, ClusterError):
            raise step
        items, version = step
        return list(items), str(version)

    def watcher(self, version: str) -> Iterator[dict[str, Any]]:
        self.watched_from.append(version)
        if not self.watches:
            self.stop.set()
            return iter(())
        step = self.watches.pop(0)
        if isinstance(step, ClusterError):
            raise step
        return iter(step)


def test_list_then_watch_resumes_from_the_last_version_and_bookmarks() -> None:
    stop = NoSleep()
    changes: list[tuple[Any, Any]] = []
    script = Script(
        stop,
        lists=[([obj("a", "1")], "10")],
        watches=[
            [{"type": "ADDED", "object": obj("b", "11")},
             {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}],
            [{"type": "MODIFIED", "object": obj("a", "16")},
             {"type": "DELETED", "object": obj("b", "17")}],
        ],
    )  # fmt: skip
    reflector = Reflector(
        "test", script.lister, script.watcher, stop=stop,
        on_change=lambda old, new: changes.append((old, new)),
    )  # fmt: skip
    reflector.run()
    assert script.listed == 1
    assert script.watched_from == ["10", "15", "17"]  # resumed after each ended watch
    assert [(o and o["metadata"]["name"], n and n["metadata"]["name"]) for o, n in changes] == [
        (None, "a"),
        (None, "b"),
        ("a", "a"),
        ("b", None),
    ]
    assert [o["metadata"]["name"] for o in reflector.items()] == ["a"]
    assert reflector.synced.is_set()


def test_gone_relists_and_reports_only_real_differences() -> None:
    stop = NoSleep()
    changes: list[tuple[Any, Any]] = []
    script = Script(
        stop,
        lists=[([obj("a", "1"), obj("b", "2")], "10"), ([obj("a", "1"), obj("c", "12")], "20")],
        watches=[[{"type": "ERROR", "object": {"code": 410, "message": "too old"}}]],
    )
    reflector = Reflector(
        "test", script.lister, script.watcher, stop=stop,
        on_change=lambda old, new: changes.append((old, new)),
    )  # fmt: skip
    reflector.run()
    assert script.listed == 2
    assert script.watched_from == ["10", "20"]
    assert stop.waited == []  # a 410 relists at once
    assert sorted(o["metadata"]["name"] for o in reflector.items()) == ["a", "c"]
    names = [(o and o["metadata"]["name"], n and n["metadata"]["name"]) for o, n in changes[2:]]
    assert sorted(names, key=str) == [("b", None), (None, "c")]  # a unchanged: no event


def test_errors_back_off_exponentially_with_jitter_and_forbidden_waits_longest() -> None:
    stop = NoSleep()
    boom = ClusterError("connection refused")
    script = Script(
        stop,
        lists=[boom, boom, boom, ClusterError("forbidden", status=403), ([], "1")],
        watches=[],
    )
    errors: list[ClusterError] = []
    states: list[bool] = []
    reflector = Reflector(
        "test", script.lister, script.watcher, stop=stop, random=lambda: 0.5,
        on_error=errors.append, on_state=lambda: states.append(reflector.synced.is_set()),
    )  # fmt: skip
    reflector.run()
    assert stop.waited == [
        BACKOFF_INITIAL * 1.5,
        BACKOFF_INITIAL * 2 * 1.5,
        BACKOFF_INITIAL * 4 * 1.5,
        BACKOFF_MAX * 1.5,
    ]
    assert len(errors) == 4
    assert states == [False, True]  # failing, then listed
    assert reflector.error is None


def test_a_broken_watch_resumes_without_a_relist() -> None:
    stop = NoSleep()
    script = Script(
        stop,
        lists=[([obj("a", "1")], "10")],
        watches=[
            [{"type": "MODIFIED", "object": obj("a", "11")}],
            ClusterError("apiserver restarted"),
        ],
    )
    reflector = Reflector("test", script.lister, script.watcher, stop=stop, random=lambda: 0.0)
    reflector.run()
    assert script.listed == 1
    assert script.watched_from == ["10", "11", "11"]
    assert stop.waited == [BACKOFF_INITIAL]
    assert reflector.error is None  # it had listed: a watch error does not unsync it


def test_cache_keeps_only_what_status_needs_and_offer_keeps_the_newest() -> None:
    stop = NoSleep()
    script = Script(stop, lists=[([deployment("ns", "a")], "10")], watches=[])
    reflector = Reflector(
        "test", script.lister, script.watcher, stop=stop, transform=slim_deployment
    )
    reflector.run()
    cached = reflector.get(("ns", "a"))
    assert cached is not None
    assert sorted(cached) == ["metadata", "spec", "status"]
    assert "managedFields" not in cached["metadata"]
    assert sorted(cached["spec"]) == ["replicas", "selector"]
    older = {**deployment("ns", "a"), "metadata": {**cached["metadata"], "resourceVersion": "4"}}
    reflector.offer(older)
    assert reflector.get(("ns", "a")) == cached
    newer = {**deployment("ns", "a"), "metadata": {**cached["metadata"], "resourceVersion": "9"}}
    reflector.offer(newer)
    assert reflector.get(("ns", "a"))["metadata"]["resourceVersion"] == "9"  # type: ignore[index]


def test_offer_never_brings_back_an_object_the_watch_deleted() -> None:
    stop = NoSleep()
    script = Script(
        stop,
        lists=[([obj("a", "1"), obj("b", "2")], "10")],
        watches=[[{"type": "DELETED", "object": obj("a", "12")}]],
    )
    reflector = Reflector("test", script.lister, script.watcher, stop=stop)
    reflector.run()
    assert reflector.get(("ns", "a")) is None
    reflector.offer(obj("a", "11"))  # the answer to our write, which came before the delete
    reflector.offer(obj("c", "13"))  # never listed nor watched
    assert [key_of(o) for o in reflector.items()] == [("ns", "b")]


def test_slim_kd_drops_managed_fields_and_last_applied() -> None:
    body = {
        "metadata": {
            "name": "kd",
            "managedFields": [{}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "a": "b"},
        },
        "spec": {"parties": []},
        "status": {"phase": "Available"},
    }
    slim = slim_kd(body)
    assert slim["metadata"] == {"name": "kd", "annotations": {"a": "b"}}
    assert slim["spec"] == body["spec"]
    assert slim["status"] == body["status"]
