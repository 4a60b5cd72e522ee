"""The ``CLUSTER_DEFINE`` and ``ALLOCATED_PORTS`` values each party's containers receive.

Pure. Shapes follow Kuscia's ``appconfig`` protobuf messages, serialised as Go's protojson
with ``EmitUnpopulated`` does (every field present, proto field order), in the compact form
(spec §6.4 and §15 row 4). Ported from ``generateClusterDefineParty`` and
``fillPartyClusterDefine``; services are listed in port declaration order, not Go map order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
    index = next(
        (
            i
            for i, p in enumerate(parties)
            if (p["name"], p["role"]) == (party.domain_id, party.role)
        ),
        0,
    )
    return _compact({"parties": parties, "selfPartyIdx": index, "selfEndpointIdx": 0})


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
