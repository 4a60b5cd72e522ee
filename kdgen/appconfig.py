"""The ``CLUSTER_DEFINE`` and ``ALLOCATED_PORTS`` values each party's containers receive.

Pure. Shapes follow Kuscia's ``appconfig`` protobuf messages, serialised as Go's protojson
with ``EmitUnpopulated`` does (every field present, proto field order), in the compact form
(spec §6.4 and §15 row 4). Ported from ``generateClusterDefineParty`` and
``fillPartyClusterDefine``; services are listed in port declaration order, not Go map order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kdgen.model import SCOPE_CLUSTER, SCOPE_DOMAIN, Profile
from kdgen.plan import KdPlan, PartyPlan
from kdgen.ports import PortAssignment, party_numbers


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def cluster_define_parties(
    plan: KdPlan, assignment: PortAssignment, profile: Profile
) -> list[dict[str, Any]]:
    """Return the ``parties`` list shared by every party's CLUSTER_DEFINE.

    Every party appears, self or partner, in spec order. A partner lists only its Cluster-scope
    services. Domain-scope endpoints carry the port; Cluster-scope ones do not, because
    Kuscia's gateway answers them; the ``plain`` profile has no gateway, so there a self
    party's Cluster-scope endpoint carries its port too.
    """
    return [
        _party_entry(party, party_numbers(assignment, plan, party), profile)
        for party in plan.parties
    ]


def _party_entry(party: PartyPlan, numbers: Mapping[str, int], profile: Profile) -> dict[str, Any]:
    services = []
    for port in party.ports:
        if not port.is_serviced or (not party.is_self and port.scope != SCOPE_CLUSTER):
            continue
        host = f"{party.service_names[port.name]}.{party.domain_id}.svc"
        with_port = port.scope == SCOPE_DOMAIN or (party.is_self and profile is Profile.PLAIN)
        endpoint = f"{host}:{numbers[port.name]}" if with_port else host
        services.append({"portName": port.name, "endpoints": [endpoint]})
    return {"name": party.domain_id, "role": party.role, "services": services}


def cluster_define(parties: list[dict[str, Any]], party: PartyPlan) -> str:
    """Return one party's CLUSTER_DEFINE JSON.

    ``selfPartyIdx`` is the first entry with the party's domain and role; ``selfEndpointIdx``
    is always 0.
    """
    return ClusterDefine.of(parties).for_party(party)


@dataclass(frozen=True, slots=True)
class ClusterDefine:
    """What the CLUSTER_DEFINE of every party of one KD shares: the ``parties`` JSON.

    Serialised once per KD; each party's value differs only in ``selfPartyIdx``, so it is
    the same bytes as serialising ``{"parties": ..., "selfPartyIdx": i, "selfEndpointIdx": 0}``
    whole (compact JSON writes a mapping as its keys and values in order).

    >>> define = ClusterDefine.of([{"name": "a", "role": "", "services": []}])
    >>> define.text(0)
    '{"parties":[{"name":"a","role":"","services":[]}],"selfPartyIdx":0,"selfEndpointIdx":0}'
    >>> len(define.text(0)) == define.size(0)
    True
    """

    parties_json: str
    keys: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, parties: list[dict[str, Any]]) -> ClusterDefine:
        """Serialise the ``parties`` list once."""
        return cls(_compact(parties), tuple((p["name"], p["role"]) for p in parties))

    def index(self, party: PartyPlan) -> int:
        """Return ``selfPartyIdx``: the first entry with the party's domain and role."""
        key = (party.domain_id, party.role)
        return next((i for i, k in enumerate(self.keys) if k == key), 0)

    def text(self, index: int) -> str:
        """Return the CLUSTER_DEFINE of the party at ``selfPartyIdx`` ``index``."""
        return f'{{"parties":{self.parties_json},"selfPartyIdx":{index},"selfEndpointIdx":0}}'

    def size(self, index: int) -> int:
        """Return ``len(self.text(index))`` without building it."""
        return len(self.parties_json) + len(str(index)) + 48

    def for_party(self, party: PartyPlan) -> str:
        """Return the party's CLUSTER_DEFINE JSON."""
        return self.text(self.index(party))


def allocated_ports(party: PartyPlan, numbers: Mapping[str, int]) -> str:
    """Return one party's ALLOCATED_PORTS JSON: every port, in declaration order."""
    return _compact(
        {
            "ports": [
                {"name": p.name, "port": numbers[p.name], "scope": p.scope, "protocol": p.protocol}
                for p in party.ports
            ]
        }
    )
