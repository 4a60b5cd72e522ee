"""kdgen.appconfig against spec §6 and Kuscia's TestGenerateClusterDefineParty.

The input builders are shared with ``test_plan.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kdgen.appconfig import allocated_ports, cluster_define, cluster_define_parties
from kdgen.model import DomainFacts, Inventory, PortMode, Profile
from kdgen.plan import KdPlan
from kdgen.ports import assign_ports, party_numbers
from tests.test_plan import app_image, container, kd, ok_plan, party, port, template

MIXED = app_image(
    "img",
    template(
        "t",
        "",
        container("a", port("domain", 8080, scope="Domain"), port("local", 8000)),
        container("b", port("cluster", 8081, scope="Cluster", protocol="GRPC")),
    ),
)
PARTNER_BOB = Inventory(domains={"bob": DomainFacts(is_partner=True)})


def planned(*parties: dict[str, Any], inventory: Inventory = PARTNER_BOB) -> KdPlan:
    return ok_plan(kd(*parties), MIXED, inventory=inventory)


def parties_of(plan: KdPlan, profile: Profile, inventory: Inventory = PARTNER_BOB) -> Any:
    assignment = assign_ports([plan], inventory, PortMode.DECLARED)
    return cluster_define_parties(plan, assignment, profile)


def test_self_and_partner_parties_kuscia_profile() -> None:
    """TestGenerateClusterDefineParty: a partner lists only Cluster-scope services."""
    plan = planned(party("alice", "client"), party("bob", "client"))
    assert parties_of(plan, Profile.KUSCIA) == [
        {
            "name": "alice",
            "role": "client",
            "services": [
                {"portName": "domain", "endpoints": ["kd-client-domain.alice.svc:8080"]},
                {"portName": "cluster", "endpoints": ["kd-client-cluster.alice.svc"]},
            ],
        },
        {
            "name": "bob",
            "role": "client",
            "services": [{"portName": "cluster", "endpoints": ["kd-client-cluster.bob.svc"]}],
        },
    ]


def test_plain_profile_adds_the_port_to_a_self_cluster_endpoint_only() -> None:
    plan = planned(party("alice"), party("bob"))
    assert parties_of(plan, Profile.PLAIN) == [
        {
            "name": "alice",
            "role": "",
            "services": [
                {"portName": "domain", "endpoints": ["kd-domain.alice.svc:8080"]},
                {"portName": "cluster", "endpoints": ["kd-cluster.alice.svc:8081"]},
            ],
        },
        {
            "name": "bob",
            "role": "",
            "services": [{"portName": "cluster", "endpoints": ["kd-cluster.bob.svc"]}],
        },
    ]


def test_service_names_follow_the_prefix() -> None:
    plan = planned(party("alice", serviceNamePrefix="front"), inventory=Inventory())
    assert parties_of(plan, Profile.KUSCIA, Inventory()) == [
        {
            "name": "alice",
            "role": "",
            "services": [
                {"portName": "domain", "endpoints": ["front-domain.alice.svc:8080"]},
                {"portName": "cluster", "endpoints": ["front-cluster.alice.svc"]},
            ],
        }
    ]


def test_party_without_serviced_ports_has_empty_services() -> None:
    image = app_image("img", template("t", "", container("c", port("local", 1))))
    plan = ok_plan(kd(party("alice"), party("carol")), image)
    assignment = assign_ports([plan], Inventory(), PortMode.DECLARED)
    parties = cluster_define_parties(plan, assignment, Profile.KUSCIA)
    assert cluster_define(parties, plan.parties[1]) == (
        '{"parties":[{"name":"alice","role":"","services":[]},'
        '{"name":"carol","role":"","services":[]}],"selfPartyIdx":1,"selfEndpointIdx":0}'
    )


@pytest.mark.parametrize(
    ("index", "want"),
    [
        pytest.param(0, 0, id="first"),
        pytest.param(1, 1, id="same-domain-other-role"),
        pytest.param(2, 2, id="third"),
    ],
)
def test_self_party_index(index: int, want: int) -> None:
    plan = planned(party("alice", "server"), party("alice", "client"), party("bob"))
    value = json.loads(cluster_define(parties_of(plan, Profile.KUSCIA), plan.parties[index]))
    assert (value["selfPartyIdx"], value["selfEndpointIdx"]) == (want, 0)


def test_cluster_define_is_compact_with_proto_field_order() -> None:
    plan = planned(party("alice"), inventory=Inventory())
    text = cluster_define(parties_of(plan, Profile.KUSCIA, Inventory()), plan.parties[0])
    assert text == (
        '{"parties":[{"name":"alice","role":"","services":['
        '{"portName":"domain","endpoints":["kd-domain.alice.svc:8080"]},'
        '{"portName":"cluster","endpoints":["kd-cluster.alice.svc"]}]}],'
        '"selfPartyIdx":0,"selfEndpointIdx":0}'
    )


def test_allocated_ports_lists_every_port_in_declaration_order() -> None:
    plan = planned(party("alice"), inventory=Inventory())
    assignment = assign_ports([plan], Inventory(), PortMode.DECLARED)
    numbers = party_numbers(assignment, plan, plan.parties[0])
    assert allocated_ports(plan.parties[0], numbers) == (
        '{"ports":[{"name":"domain","port":8080,"scope":"Domain","protocol":"HTTP"},'
        '{"name":"local","port":8000,"scope":"Local","protocol":"HTTP"},'
        '{"name":"cluster","port":8081,"scope":"Cluster","protocol":"GRPC"}]}'
    )


def test_allocated_ports_without_ports() -> None:
    plan = ok_plan(kd(), app_image())
    assert allocated_ports(plan.parties[0], {}) == '{"ports":[]}'


def test_allocated_numbers_reach_the_endpoints() -> None:
    plan = planned(party("alice"), inventory=Inventory())
    assignment = assign_ports([plan], Inventory(), PortMode.ALLOCATED)
    numbers = party_numbers(assignment, plan, plan.parties[0])
    [entry] = cluster_define_parties(plan, assignment, Profile.KUSCIA)
    assert entry["services"] == [
        {"portName": "domain", "endpoints": [f"kd-domain.alice.svc:{numbers['domain']}"]},
        {"portName": "cluster", "endpoints": ["kd-cluster.alice.svc"]},
    ]
    assert numbers["domain"] != 8080
