"""List one collection, then watch it, keeping a small cache; resume after any failure.

client-go's ``tools/cache/reflector.go`` is the model: list, then watch from the list's
``resourceVersion`` with bookmarks; a watch that ends or breaks (its timeout, an apiserver
restart, the network) resumes from the last resourceVersion seen; ``410 Gone`` (the version
expired) lists again; errors back off exponentially from 0.8 s to 30 s with jitter, and a
forbidden (401/403) list waits the longest. Objects are cached through ``transform``, which
keeps only what status-sync reads (``slim_deployment``, ``slim_kd``), so a 2,000-Deployment
cache stays small.

The lister and watcher are plain callables (the client's methods in production, fakes in the
unit tests); waiting goes through ``stop.wait`` and the jitter through ``random``, both
injectable.
"""

from __future__ import annotations

import logging
import random as _random
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kdgen.errors import ClusterError

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 0.8
"""Seconds before the first retry after an error (client-go's reflector)."""
BACKOFF_MAX = 30.0
"""The longest wait between retries; also the wait after a 401 or 403."""
JITTER = 1.0
"""Each wait is stretched by up to this fraction, at random (client-go's factor)."""

ObjectKey = tuple[str, str]
Obj = dict[str, Any]
ChangeHandler = Callable[[Obj | None, Obj | None], None]
Lister = Callable[[], tuple[list[Obj], str]]
Watcher = Callable[[str], Iterator[Obj]]


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    """``(namespace, name)`` of an object."""
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


def version_of(obj: Mapping[str, Any]) -> str:
    """The object's ``metadata.resourceVersion``."""
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def newer(obj: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """Compare resourceVersions; they are opaque, but etcd's are integers in practice."""
    try:
        return int(version_of(obj)) > int(version_of(than))
    except ValueError:
        return True


_DEPLOYMENT_METADATA = ("name", "namespace", "labels", "resourceVersion", "creationTimestamp")


def slim_deployment(deployment: Mapping[str, Any]) -> Obj:
    """Keep only the Deployment fields status computation and pod diagnosis read.

    >>> slim_deployment({"metadata": {"name": "a", "managedFields": [{}]},
    ...                  "spec": {"replicas": 1, "template": {}}, "status": {"replicas": 1}})
    {'metadata': {'name': 'a'}, 'spec': {'replicas': 1}, 'status': {'replicas': 1}}
    """
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    slim: Obj = {"metadata": {k: metadata[k] for k in _DEPLOYMENT_METADATA if k in metadata}}
    slim["spec"] = {k: spec[k] for k in ("replicas", "selector") if k in spec}
    if "status" in deployment:
        slim["status"] = deployment["status"]
    return slim


def slim_kd(kd: Mapping[str, Any]) -> Obj:
    """Drop a KD's ``managedFields`` and last-applied annotation (often most of its bytes)."""
    metadata = dict(kd.get("metadata") or {})
    metadata.pop("managedFields", None)
    annotations = metadata.get("annotations")
    if isinstance(annotations, Mapping):
        kept = {
            k: v
            for k, v in annotations.items()
            if k != "kubectl.kubernetes.io/last-applied-configuration"
        }
        metadata["annotations"] = kept
    return {**kd, "metadata": metadata}


def slim_namespace(namespace: Mapping[str, Any]) -> Obj:
    """Keep a Namespace's name and resourceVersion: only its existence matters."""
    metadata = namespace.get("metadata") or {}
    return {"metadata": {k: metadata[k] for k in ("name", "resourceVersion") if k in metadata}}


class Reflector:
    """One collection's list-and-watch loop and cache.

    Changes go to ``on_change(old, new)`` (``new`` is ``None`` on delete); a change of
    readability (first listed, or now failing) goes to ``on_state()``; every error to
    ``on_error(exc)``.
    """

    def __init__(
        self,
        what: str,
        lister: Lister,
        watcher: Watcher,
        *,
        stop: threading.Event,
        on_change: ChangeHandler = lambda old, new: None,
        on_state: Callable[[], None] = lambda: None,
        on_error: Callable[[ClusterError], None] = lambda exc: None,
        transform: Callable[[Mapping[str, Any]], Obj] = dict,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.what = what
        self.synced = threading.Event()
        self.error: ClusterError | None = None
        self.lists = 0
        self._lister, self._watcher = lister, watcher
        self._on_change, self._on_state, self._on_error = on_change, on_state, on_error
        self._transform, self._random = transform, random
        self._stop = stop
        self._lock = threading.Lock()
        self._cache: dict[ObjectKey, Obj] = {}
        self.waits: list[float] = []
        """The backoff waits taken so far (for metrics and the unit tests)."""
        self.thread = threading.Thread(target=self.run, name=f"watch {what}", daemon=True)

    def start(self) -> Reflector:
        """Start the list-and-watch thread."""
        self.thread.start()
        return self

    def items(self) -> list[Obj]:
        """Return the cached objects."""
        with self._lock:
            return list(self._cache.values())

    def get(self, key: ObjectKey) -> Obj | None:
        """Return one cached object by ``(namespace, name)``."""
        with self._lock:
            return self._cache.get(key)

    def offer(self, obj: Mapping[str, Any]) -> None:
        """Update the cached copy of an object we just wrote, unless the cache has it or later.

        Only the list and the watch say what exists: an object the cache no longer holds
        (the watch saw it deleted after our write) is not put back, or a deleted KD would
        stay cached, synced (404) at every resync and counted as alive by ``--prune``.
        """
        slim = self._transform(obj)
        key = key_of(slim)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and newer(slim, cached):
                self._cache[key] = slim

    def run(self) -> None:
        """List and watch until ``stop`` is set (the thread's body)."""
        version = ""
        delay = BACKOFF_INITIAL
        while not self._stop.is_set():
            try:
                if not version:
                    items, version = self._lister()
                    self.lists += 1
                    self._replace(items)
                    self._set_error(None)
                for event in self._watcher(version):
                    version = self._apply(event) or version
                    delay = BACKOFF_INITIAL  # the watch works again
                    if self._stop.is_set():
                        return
            except _Gone:
                log.info("%s: resourceVersion expired, listing again", self.what)
                version = ""
            except ClusterError as exc:
                self._on_error(exc)
                if exc.status == 410:
                    log.info("%s: resourceVersion expired, listing again", self.what)
                    version = ""
                    continue
                if not version or not self.synced.is_set():
                    self._set_error(exc)
                pause = BACKOFF_MAX if exc.status in (401, 403) else delay
                pause *= 1 + JITTER * self._random()
                log.warning("%s: %s (retrying in %.1fs)", self.what, exc, pause)
                self.waits.append(pause)
                self._stop.wait(pause)
                delay = min(delay * 2, BACKOFF_MAX)

    def _apply(self, event: Mapping[str, Any]) -> str:
        kind, raw = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if raw.get("code") == 410:
                raise _Gone
            raise ClusterError(f"{self.what}: {raw.get('message')}", status=raw.get("code", 0))
        version = version_of(raw)
        if kind == "BOOKMARK":
            return version
        obj = self._transform(raw)
        key = key_of(obj)
        with self._lock:
            old = self._cache.get(key)
            if kind == "DELETED":
                self._cache.pop(key, None)
            else:
                self._cache[key] = obj
        self._on_change(old, None if kind == "DELETED" else obj)
        return version

    def _replace(self, items: list[Obj]) -> None:
        fresh = {key_of(obj): obj for obj in map(self._transform, items)}
        with self._lock:
            old, self._cache = self._cache, fresh
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None or version_of(before) != version_of(obj):
                self._on_change(before, obj)
        for key in old.keys() - fresh.keys():
            self._on_change(old[key], None)

    def _set_error(self, error: ClusterError | None) -> None:
        was = (self.synced.is_set(), self.error is None)
        self.error = error
        if error is None:
            self.synced.set()
        if was != (self.synced.is_set(), self.error is None):
            self._on_state()
