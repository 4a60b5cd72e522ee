"""kdgen.parties: the one answer to "which parties are self" for the generator and status-sync."""

from __future__ import annotations

from kdgen.model import DomainFacts, Inventory
from kdgen.parties import SelfParty, expected_deployments, is_self, party_namespaces, self_parties
from kdgen.status import diagnosis_targets
from tests.test_plan import app_image, kd, ok_plan, party, template


def test_self_parties_in_spec_order_with_kuscias_deployment_names() -> None:
    body = kd(party("alice"), party("bob", role="server"), party("carol"), party("bob"))
    assert self_parties(body, {"carol"}) == [
        SelfParty("alice", "", body["metadata"]["name"]),
        SelfParty("bob", "server", f"{body['metadata']['name']}-server"),
        SelfParty("bob", "", body["metadata"]["name"]),
    ]
    assert party_namespaces(body, {"carol"}) == ["alice", "bob"]
    assert expected_deployments(body, ()) == {
        (domain, name)
        for domain, name in [
            ("alice", body["metadata"]["name"]),
            ("bob", f"{body['metadata']['name']}-server"),
            ("bob", body["metadata"]["name"]),
            ("carol", body["metadata"]["name"]),
        ]
    }


def test_malformed_parties_are_skipped() -> None:
    bad = ["a", {"domainID": 1}, {"role": "r"}, {"domainID": "ok", "role": 2}]
    body = {"metadata": {"name": "x"}, "spec": {"parties": bad}}
    assert self_parties(body) == []
    assert self_parties({"spec": None}) == []


def test_generator_and_status_sync_agree_on_self() -> None:
    """plan.py (Inventory partners) and status.py (--partner-domain) both ask kdgen.parties."""
    body = kd(party("alice"), party("bob", role="server"), initiator="alice")
    image = app_image("img", template("t", None), template("s", "server"))
    inventory = Inventory(domains={"bob": DomainFacts(is_partner=True)})
    plan = ok_plan(body, image, inventory=inventory)
    planned = [(p.domain_id, p.role, p.deploy_name) for p in plan.self_parties]
    assert inventory.partner_domains == {"bob"}
    assert planned == [
        (p.domain_id, p.role, p.deployment_name)
        for p in self_parties(body, inventory.partner_domains)
    ]
    assert planned == [("alice", "", body["metadata"]["name"])]
    assert is_self("alice", inventory.partner_domains)
    assert not is_self("bob", inventory.partner_domains)
    # status-sync diagnoses only self parties' Deployments.
    deployment = {
        "metadata": {"namespace": "alice", "name": body["metadata"]["name"]},
        "spec": {"selector": {"matchLabels": {"a": "b"}}},
        "status": {},
    }
    partner_deployment = {**deployment, "metadata": {"namespace": "bob", "name": "x-server"}}
    targets = diagnosis_targets(
        body, [deployment, partner_deployment], partner_domains=inventory.partner_domains
    )
    assert targets == [("alice", body["metadata"]["name"])]
