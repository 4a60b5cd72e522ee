"""Which parties of a KD are *self* (hosted in this cluster) and what they get: the one owner.

The generator (``plan.py``) and status-sync (``status.py``, the controller) both ask this
module, so "self or partner" and "which Deployment belongs to which party" cannot drift apart.
A party is self unless its domain is a partner domain: the Inventory's ``role: partner``
domains for the generator, ``--partner-domain`` for status-sync. A self party's Deployment is
``<kd>`` or ``<kd>-<role>`` in namespace ``<domainID>`` (Kuscia's ``generateDeploymentName``).

Pure: plain data in, plain data out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from kdgen.naming import generate_deployment_name


@dataclass(frozen=True, slots=True)
class SelfParty:
    """A self party: its domain (also its namespace), role and Deployment name."""

    domain_id: str
    role: str
    deployment_name: str

    @property
    def key(self) -> tuple[str, str]:
        """``(namespace, Deployment name)``."""
        return self.domain_id, self.deployment_name


def is_self(domain_id: str, partner_domains: Collection[str]) -> bool:
    """Whether a party of ``domain_id`` is hosted here: it is not a partner domain.

    >>> is_self("alice", {"bob"}), is_self("bob", {"bob"})
    (True, False)
    """
    return domain_id not in partner_domains


def self_parties(kd: Mapping[str, Any], partner_domains: Collection[str] = ()) -> list[SelfParty]:
    """Return the KD's self parties in ``spec.parties`` order (a raw KD, as read from the API).

    Parties without a ``domainID`` string, or with a role that is not a string, are skipped
    (the CRD forbids them; ``status.validate_kd`` reports them).

    >>> kd = {"metadata": {"name": "kd"}, "spec": {"parties": [
    ...     {"domainID": "alice"}, {"domainID": "bob", "role": "server"}, {"domainID": "p"}]}}
    >>> [(p.domain_id, p.deployment_name) for p in self_parties(kd, {"p"})]
    [('alice', 'kd'), ('bob', 'kd-server')]
    """
    metadata = kd.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else ""
    spec = kd.get("spec")
    parties = spec.get("parties") if isinstance(spec, Mapping) else None
    found = []
    for party in parties if isinstance(parties, list) else []:
        if not isinstance(party, Mapping):
            continue
        domain_id, role = party.get("domainID"), party.get("role") or ""
        if not isinstance(domain_id, str) or not domain_id or not isinstance(role, str):
            continue
        if is_self(domain_id, partner_domains):
            deployment = generate_deployment_name(name if isinstance(name, str) else "", role)
            found.append(SelfParty(domain_id, role, deployment))
    return found


def party_namespaces(kd: Mapping[str, Any], partner_domains: Collection[str] = ()) -> list[str]:
    """Return the namespaces of the KD's self parties, in ``spec.parties`` order, once each.

    >>> party_namespaces({"spec": {"parties": [{"domainID": "b"}, {"domainID": "a"},
    ...                   {"domainID": "b", "role": "x"}, {"domainID": "p"}]}}, ["p"])
    ['b', 'a']
    """
    return list(dict.fromkeys(p.domain_id for p in self_parties(kd, partner_domains)))


def expected_deployments(
    kd: Mapping[str, Any], partner_domains: Collection[str] = ()
) -> set[tuple[str, str]]:
    """Return ``(namespace, name)`` of the Deployments of the KD's self parties."""
    return {p.key for p in self_parties(kd, partner_domains)}
