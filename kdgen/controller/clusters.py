"""Read each domain's Deployments from that domain's own cluster.

In a two-organisation deployment each party's Deployments live in its own cluster, and
Kuscia's controller learns a partner's state through its interconnection (a
KusciaDeploymentSummary the partner cluster fills in, spec §10). status-sync has no such
channel, so it reads the partner cluster itself when given a kubeconfig (or a context) for that
domain. ``DomainClients`` is a ``Client`` to the rest of the controller: KDs, leases and pruning
go to the home cluster (where the KDs live); namespaces, Deployments and pods of a domain with
its own cluster go to that cluster.

A domain cluster that cannot be read makes its namespace ``unobservable`` (see
``reconcile.namespace_problem``): the KD's status then names the partner and the error,
instead of staying Progressing without a word.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kdgen.errors import ClusterError

if TYPE_CHECKING:
    from kdgen.controller.client import Client, Keep


class UnobservableDomain(ClusterError):
    """A domain's own cluster could not be reached or read."""

    def __init__(self, domain: str, cause: ClusterError) -> None:
        super().__init__(f"cannot read the cluster of domain {domain}: {cause}", status=0)
        self.domain = domain


class DomainClients:
    """A ``Client`` that sends each domain's namespace-scoped reads to that domain's cluster.

    Attributes:
        home: the cluster holding the KDs (and every domain without its own cluster).
        domains: domain ID to the client of its own cluster.
    """

    def __init__(self, home: Client, domains: Mapping[str, Client]) -> None:
        self.home = home
        self.domains = dict(domains)

    def __getattr__(self, name: str) -> Any:
        # KDs, status patches, leases, pruning: the home cluster.
        return getattr(self.home, name)

    def _for(self, namespace: str) -> Client:
        return self.domains.get(namespace, self.home)

    def _remote(self, namespace: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        if namespace not in self.domains:
            return call(*args, **kwargs)
        try:
            return call(*args, **kwargs)
        except ClusterError as exc:
            if exc.status in (403, 404):
                raise
            raise UnobservableDomain(namespace, exc) from exc

    # Namespaces: a domain with its own cluster is checked there.

    def list_namespaces(self) -> tuple[list[dict[str, Any]], str]:
        """List the home cluster's namespaces, and each remote domain's in its own cluster.

        An unreadable remote cluster keeps its domain's name in the list: the failure is
        reported when its Deployments are listed.
        """
        items, version = self.home.list_namespaces()
        kept = [i for i in items if (i.get("metadata") or {}).get("name") not in self.domains]
        for domain, client in sorted(self.domains.items()):
            try:
                remote, _ = client.list_namespaces()
            except ClusterError:
                kept.append({"metadata": {"name": domain}})
                continue
            kept.extend(i for i in remote if (i.get("metadata") or {}).get("name") == domain)
        return kept, version

    def watch_namespaces(self, resource_version: str) -> Iterator[dict[str, Any]]:
        """The home cluster's namespace events; remote namespaces are re-checked on resync."""
        return self.home.watch_namespaces(resource_version)

    # Deployments and pods

    def list_deployments(
        self, namespace: str = "", *, keep: Keep | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Route a namespace's list; cluster-wide lists only the home cluster's others."""
        if namespace:
            result: tuple[list[dict[str, Any]], str] = self._remote(
                namespace, self._for(namespace).list_deployments, namespace, keep=keep
            )
            return result
        items, version = self.home.list_deployments("", keep=keep)
        kept = [d for d in items if d["metadata"].get("namespace") not in self.domains]
        return kept, version

    def watch_deployments(self, namespace: str, resource_version: str) -> Iterator[dict[str, Any]]:
        """Route a namespace's watch; cluster-wide watches only the home cluster."""
        return self._for(namespace).watch_deployments(namespace, resource_version)

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Read a Deployment by name in its domain's cluster."""
        client = self._for(namespace)
        found: dict[str, Any] | None = self._remote(
            namespace, client.get_deployment, namespace, name
        )
        return found

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """List pods in their domain's cluster."""
        pods: list[dict[str, Any]] = self._remote(
            namespace, self._for(namespace).list_pods, namespace, selector
        )
        return pods
