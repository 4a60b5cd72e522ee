"""The API client wrapper: every call status-sync makes, on plain JSON dicts.

The only module of kdgen that imports the kubernetes client. It loads the configuration the way
kubectl does (``--kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``, else the in-cluster
service account), sends each request with ``_preload_content=False`` so responses stay JSON
dicts (no model objects), streams watch events line by line, and maps every failure to
``kdgen.errors.ClusterError`` with the HTTP status and Kubernetes reason. Everything above it
takes a ``Client`` and is tested with a fake of this class's methods.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import orjson
import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from kdgen.errors import ClusterError
from kdgen.model import KD_PLURAL, KUSCIA_API_VERSION, KUSCIA_GROUP, LABEL_KUSCIA_DEPLOYMENT_NAME

FIELD_MANAGER = "kdgen-status-sync"
MERGE_PATCH = "application/merge-patch+json"
KD_VERSION = KUSCIA_API_VERSION.split("/")[1]
LEASE_GROUP, LEASE_VERSION, LEASE_PLURAL = "coordination.k8s.io", "v1", "leases"

LIST_PAGE_SIZE = 500
"""Objects per page of a LIST whose items are slimmed as they come (``keep``), as client-go's
reflector pages its lists: each page is decoded and slimmed before the next is read, so the
watch caches never hold a 2,000-Deployment list whole, as text or as full objects."""

Keep = Callable[[dict[str, Any]], dict[str, Any]]
"""What a paged LIST keeps of each object (``reflector.slim_deployment``, ``slim_kd``)."""

REQUEST_TIMEOUT = (5.0, 30.0)
"""Connect and read timeouts of every non-watch request, in seconds."""
WATCH_SECONDS = 290
"""How long the apiserver keeps one watch open before it ends it (a reflector resumes)."""


def connect(*, kubeconfig: str | None = None, context: str | None = None) -> Client:
    """Return a ``Client`` configured the way kubectl finds its configuration.

    ``--kubeconfig``, then ``$KUBECONFIG``, then ``~/.kube/config``; without any of them, the
    in-cluster service account.

    Raises:
        ClusterError: no usable configuration.
    """
    configuration = k8s_client.Configuration()
    default = Path("~/.kube/config").expanduser()
    use_file = kubeconfig or context or os.environ.get("KUBECONFIG") or default.exists()
    try:
        if use_file:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        else:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
    except (ConfigException, OSError, ValueError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "in-cluster configuration"
        raise ClusterError(f"cannot load {where}: {exc}") from exc
    configuration.connection_pool_maxsize = 64
    if not configuration.verify_ssl:
        # The kubeconfig asked for insecure-skip-tls-verify; kubectl stays quiet about it too.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return Client(k8s_client.ApiClient(configuration))


class Client:
    """The API calls status-sync makes, on plain JSON dicts, failing with ``ClusterError``."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client
        self._custom = k8s_client.CustomObjectsApi(api_client)
        self._apps = k8s_client.AppsV1Api(api_client)
        self._core = k8s_client.CoreV1Api(api_client)

    # KusciaDeployments

    def list_kds(
        self, namespace: str, *, keep: Keep | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """List the KDs of ``namespace``; return them and the list's resourceVersion.

        With ``keep``, the list is read in pages and only ``keep(kd)`` of each KD is returned.
        """
        return self._list(
            f"list {KD_PLURAL} in namespace {namespace}",
            self._custom.list_namespaced_custom_object,
            KUSCIA_GROUP,
            KD_VERSION,
            namespace,
            KD_PLURAL,
            keep=keep,
        )

    def watch_kds(self, namespace: str, resource_version: str) -> Iterator[dict[str, Any]]:
        """Stream watch events of the KDs of ``namespace``."""
        return self._stream(
            f"watch {KD_PLURAL} in namespace {namespace}",
            self._custom.list_namespaced_custom_object,
            resource_version,
            KUSCIA_GROUP,
            KD_VERSION,
            namespace,
            KD_PLURAL,
        )

    def get_kd(self, namespace: str, name: str) -> dict[str, Any]:
        """Read one KD."""
        return self._call(
            f"get {KD_PLURAL} {namespace}/{name}",
            self._custom.get_namespaced_custom_object,
            KUSCIA_GROUP,
            KD_VERSION,
            namespace,
            KD_PLURAL,
            name,
        )

    def patch_kd_status(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send a JSON merge patch to the KD's ``/status`` subresource."""
        return self._call(
            f"patch {KD_PLURAL}/status {namespace}/{name}",
            self._custom.patch_namespaced_custom_object_status,
            KUSCIA_GROUP,
            KD_VERSION,
            namespace,
            KD_PLURAL,
            name,
            body,
            field_manager=FIELD_MANAGER,
            _content_type=MERGE_PATCH,
        )

    # Namespaces, Deployments, Pods

    def list_namespaces(self) -> tuple[list[dict[str, Any]], str]:
        """List all namespaces."""
        return _items_and_version(self._call("list namespaces", self._core.list_namespace))

    def watch_namespaces(self, resource_version: str) -> Iterator[dict[str, Any]]:
        """Stream watch events of namespaces."""
        return self._stream("watch namespaces", self._core.list_namespace, resource_version)

    def list_deployments(
        self, namespace: str = "", *, keep: Keep | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """List the ``kd-name``-labelled Deployments of ``namespace`` (all namespaces if "").

        With ``keep``, the list is read in pages and only ``keep(deployment)`` of each is
        returned.
        """
        if not namespace:
            return self._list(
                "list deployments in all namespaces",
                self._apps.list_deployment_for_all_namespaces,
                label_selector=LABEL_KUSCIA_DEPLOYMENT_NAME,
                keep=keep,
            )
        return self._list(
            f"list deployments in namespace {namespace}",
            self._apps.list_namespaced_deployment,
            namespace,
            label_selector=LABEL_KUSCIA_DEPLOYMENT_NAME,
            keep=keep,
        )

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Read one Deployment by name, whatever its labels; ``None`` when it does not exist."""
        try:
            return self._call(
                f"get deployment {namespace}/{name}",
                self._apps.read_namespaced_deployment,
                name,
                namespace,
            )
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    def watch_deployments(self, namespace: str, resource_version: str) -> Iterator[dict[str, Any]]:
        """Stream watch events of the ``kd-name``-labelled Deployments (all namespaces if "")."""
        if not namespace:
            return self._stream(
                "watch deployments in all namespaces",
                self._apps.list_deployment_for_all_namespaces,
                resource_version,
                label_selector=LABEL_KUSCIA_DEPLOYMENT_NAME,
            )
        return self._stream(
            f"watch deployments in namespace {namespace}",
            self._apps.list_namespaced_deployment,
            resource_version,
            namespace,
            label_selector=LABEL_KUSCIA_DEPLOYMENT_NAME,
        )

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """List the pods of ``namespace`` matching a label selector."""
        body = self._call(
            f"list pods in namespace {namespace}",
            self._core.list_namespaced_pod,
            namespace,
            label_selector=selector,
        )
        return _items_and_version(body)[0]

    # Pruning

    def list_labelled(self, kind: str, selector: str) -> list[dict[str, Any]]:
        """List Services, ConfigMaps or Deployments in all namespaces by label selector."""
        calls = {
            "Service": self._core.list_service_for_all_namespaces,
            "ConfigMap": self._core.list_config_map_for_all_namespaces,
            "Deployment": self._apps.list_deployment_for_all_namespaces,
        }
        body = self._call(f"list {kind} objects", calls[kind], label_selector=selector)
        return _items_and_version(body)[0]

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete one Service, ConfigMap or Deployment; one already gone is fine."""
        calls = {
            "Service": self._core.delete_namespaced_service,
            "ConfigMap": self._core.delete_namespaced_config_map,
            "Deployment": self._apps.delete_namespaced_deployment,
        }
        try:
            self._call(f"delete {kind} {namespace}/{name}", calls[kind], name, namespace)
        except ClusterError as exc:
            if exc.status != 404:
                raise

    # Leases

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Read a Lease, or ``None`` when it does not exist."""
        try:
            return self._call(
                f"get lease {namespace}/{name}",
                self._custom.get_namespaced_custom_object,
                LEASE_GROUP,
                LEASE_VERSION,
                namespace,
                LEASE_PLURAL,
                name,
            )
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a Lease."""
        return self._call(
            f"create lease in namespace {namespace}",
            self._custom.create_namespaced_custom_object,
            LEASE_GROUP,
            LEASE_VERSION,
            namespace,
            LEASE_PLURAL,
            body,
        )

    def replace_lease(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a Lease; its ``metadata.resourceVersion`` makes this compare-and-swap."""
        return self._call(
            f"update lease {namespace}/{name}",
            self._custom.replace_namespaced_custom_object,
            LEASE_GROUP,
            LEASE_VERSION,
            namespace,
            LEASE_PLURAL,
            name,
            body,
        )

    # plumbing

    def _list(
        self,
        what: str,
        method: Callable[..., Any],
        *args: Any,
        keep: Keep | None,
        **kwargs: Any,
    ) -> tuple[list[dict[str, Any]], str]:
        """One LIST (``--once`` counts on that), or with ``keep`` a paged one, slimmed as read."""
        if keep is None:
            return _items_and_version(self._call(what, method, *args, **kwargs))
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            paging = {"limit": LIST_PAGE_SIZE, **({"_continue": token} if token else {})}
            body = self._call(what, method, *args, **paging, **kwargs)
            items.extend(keep(item) for item in body.get("items") or [])
            metadata = body.get("metadata") or {}
            token = str(metadata.get("continue") or "")
            if not token:
                return items, str(metadata.get("resourceVersion") or "")

    def _call(
        self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            response = method(
                *args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs
            )
            data = response.data
        except ApiException as exc:
            raise _api_error(what, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"{what}: {exc}") from exc
        # orjson: a LIST of 2,000 Deployments is about 10 MB, which json.loads decodes in
        # about a quarter of a second, several times orjson's time.
        return cast(dict[str, Any], orjson.loads(data)) if data else {}

    def _stream(
        self,
        what: str,
        method: Callable[..., Any],
        resource_version: str,
        *args: Any,
        **kwargs: Any,
    ) -> Iterator[dict[str, Any]]:
        try:
            response = method(
                *args,
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=resource_version,
                timeout_seconds=WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=(REQUEST_TIMEOUT[0], WATCH_SECONDS + 30),
                **kwargs,
            )
        except ApiException as exc:
            raise _api_error(what, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"{what}: {exc}") from exc
        return _events(what, response)


def _events(what: str, response: Any) -> Iterator[dict[str, Any]]:
    pending = b""
    try:
        for chunk in response.stream(65536, decode_content=True):
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if line.strip():
                    yield orjson.loads(line)
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise ClusterError(f"{what}: {exc}") from exc
    finally:
        response.release_conn()


def _api_error(what: str, exc: ApiException) -> ClusterError:
    status = int(exc.status or 0)
    reason = str(exc.reason or "")
    message = f"{status} {reason}".strip()
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        body = json.loads(exc.body or "")
        message = str(body.get("message") or message)
        reason = str(body.get("reason") or reason)
    return ClusterError(f"{what}: {message}", status=status, reason=reason)


def _items_and_version(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    items = body.get("items") or []
    version = str((body.get("metadata") or {}).get("resourceVersion") or "")
    return list(items), version
