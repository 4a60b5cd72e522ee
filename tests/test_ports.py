"""kdgen.ports against spec §5 and §15 row 2: declared numbers, deterministic allocation, presets.

The input builders are shared with ``test_plan.py``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from kdgen.errors import Problem
from kdgen.model import DomainFacts, Inventory, PortMode
from kdgen.plan import KdPlan
from kdgen.ports import (
    PortAssignment,
    allocation_start,
    assign_ports,
    format_annotation,
    party_numbers,
)
from tests.test_plan import app_image, container, kd, ok_plan, party, port, template

ANNOTATION = "kuscia.secretflow/allocated-ports"
FIELD = f"metadata.annotations.{ANNOTATION}"

THREE_PORTS = app_image(
    "img",
    template(
        "t",
        "",
        container("a", port("service", 53509, scope="Cluster"), port("internal", 53510)),
        container("b", port("brpc-builtin", 53511, scope="Domain")),
    ),
)
NO_PORTS = app_image("img", template("t", "", container("a")))


def named_kd(name: str, *parties: dict[str, Any], preset: str | None = None) -> dict[str, Any]:
    body = kd(*parties) if parties else kd(party("alice"))
    body["metadata"]["name"] = name
    if preset is not None:
        body["metadata"]["annotations"] = {ANNOTATION: preset}
    return body


def plans(*bodies: dict[str, Any], image: dict[str, Any] = THREE_PORTS, **kw: Any) -> list[KdPlan]:
    return [ok_plan(body, image, **kw) for body in bodies]


def numbers(assignment: PortAssignment) -> dict[tuple[str, int], dict[str, int]]:
    return {key: dict(value) for key, value in assignment.numbers.items()}


def allocate_problem(kd_name: str, detail: str) -> Problem:
    return Problem(
        f"failed to allocate ports, {detail}",
        source="kd.yaml",
        doc_index=1,
        resource=f"KusciaDeployment cross-domain/{kd_name}",
        field=FIELD,
        reason="AllocatePortsFailed",
    )


def run(n: int, start: int) -> list[int]:
    """``n`` consecutive numbers from ``start``, wrapping inside 20000-32766."""
    return [20000 + (start - 20000 + i) % 12767 for i in range(n)]


# --- declared ---------------------------------------------------------------------------------


def test_declared_uses_appimage_numbers_for_self_parties_only() -> None:
    inventory = Inventory(domains={"bob": DomainFacts(is_partner=True)})
    plan = plans(named_kd("kd", party("alice"), party("bob")), inventory=inventory)
    assert assign_ports(plan, inventory, PortMode.DECLARED) == PortAssignment(
        {("kd", 0): {"service": 53509, "internal": 53510, "brpc-builtin": 53511}}, {}, ()
    )


def test_declared_allocates_a_port_without_number() -> None:
    """The AppImage reference document's own example declares ports with no number.

    Kuscia's ``allocatePorts`` numbers every port of a self party; under ``--ports declared``
    kdgen keeps the declared ones and numbers the rest as ``--ports allocated`` would.
    """
    image = app_image("img", template("t", "", container("c", port("grpc"), port("http", 80))))
    [plan] = plans(named_kd("kd"), image=image)
    assignment = assign_ports([plan], Inventory(), PortMode.DECLARED)
    start = allocation_start("alice", "kd")
    assert assignment == PortAssignment({("kd", 0): {"http": 80, "grpc": start}}, {}, ())
    assert assignment == assign_ports([plan], Inventory(), PortMode.DECLARED)


def test_declared_allocation_skips_declared_and_taken_numbers() -> None:
    start = allocation_start("alice", "kd")
    image = app_image(
        "img", template("t", "", container("c", port("grpc"), port("http", start), port("x")))
    )
    [plan] = plans(named_kd("kd"), image=image)
    inventory = Inventory(taken_ports={"alice": frozenset({start + 1})})
    assert numbers(assign_ports([plan], inventory, PortMode.DECLARED)) == {
        ("kd", 0): {"http": start, "grpc": start + 2, "x": start + 3}
    }


def test_declared_allocation_steps_over_another_kds_declared_number() -> None:
    start = allocation_start("alice", "a")
    declared = app_image("img", template("t", "", container("c", port("http", start))))
    missing = app_image("img", template("t", "", container("c", port("grpc"))))
    # "b" sorts after "a", but every declared number is known before any allocation.
    assignment = assign_ports(
        [ok_plan(named_kd("a"), missing), ok_plan(named_kd("b"), declared)],
        Inventory(),
        PortMode.DECLARED,
    )
    assert numbers(assignment) == {("a", 0): {"grpc": start + 1}, ("b", 0): {"http": start}}


# --- allocation_start -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "kd_name"),
    [
        pytest.param("alice", "secretflow-serving", id="seed"),
        pytest.param("bob", "secretflow-serving", id="other-namespace"),
        pytest.param("alice", "kd-2", id="other-kd"),
    ],
)
def test_allocation_start_is_sha256_of_namespace_and_name(namespace: str, kd_name: str) -> None:
    digest = hashlib.sha256(f"{namespace}/{kd_name}".encode()).digest()
    assert allocation_start(namespace, kd_name) == 20000 + int.from_bytes(digest[:8]) % 12767


# --- allocated: fresh numbers -----------------------------------------------------------------


def test_allocated_runs_sequentially_in_declaration_order_per_namespace() -> None:
    plan = plans(named_kd("kd", party("alice"), party("bob")))
    assignment = assign_ports(plan, Inventory(), PortMode.ALLOCATED)
    a = run(3, allocation_start("alice", "kd"))
    b = run(3, allocation_start("bob", "kd"))
    assert numbers(assignment) == {
        ("kd", 0): {"service": a[0], "internal": a[1], "brpc-builtin": a[2]},
        ("kd", 1): {"service": b[0], "internal": b[1], "brpc-builtin": b[2]},
    }
    assert assignment.problems == ()
    assert json.loads(assignment.annotations["kd"]) == [
        {
            "domainID": "alice",
            "namedPort": {"brpc-builtin": a[2], "internal": a[1], "service": a[0]},
        },
        {"domainID": "bob", "namedPort": {"brpc-builtin": b[2], "internal": b[1], "service": b[0]}},
    ]


def test_allocated_parties_of_one_domain_get_distinct_numbers() -> None:
    """Unlike Kuscia's allocator (spec §5), the second party continues after the first."""
    plan = plans(named_kd("kd", party("alice", "server"), party("alice", "client")))
    a = run(6, allocation_start("alice", "kd"))
    assert numbers(assign_ports(plan, Inventory(), PortMode.ALLOCATED)) == {
        ("kd", 0): {"service": a[0], "internal": a[1], "brpc-builtin": a[2]},
        ("kd", 1): {"service": a[3], "internal": a[4], "brpc-builtin": a[5]},
    }


def test_allocated_skips_taken_ports_and_wraps_at_the_range_end() -> None:
    start = allocation_start("alice", "kd")
    # take everything from the start to the end of the range but one, and the range's first
    taken = frozenset([*range(start, 32766), 20000])
    inventory = Inventory(taken_ports={"alice": taken})
    plan = plans(named_kd("kd"), inventory=inventory)
    assert numbers(assign_ports(plan, inventory, PortMode.ALLOCATED)) == {
        ("kd", 0): {"service": 32766, "internal": 20001, "brpc-builtin": 20002}
    }


def test_allocated_taken_ports_are_per_namespace() -> None:
    start = allocation_start("alice", "kd")
    inventory = Inventory(taken_ports={"bob": frozenset([start])})
    plan = plans(named_kd("kd"), inventory=inventory)
    assert numbers(assign_ports(plan, inventory, PortMode.ALLOCATED))[("kd", 0)]["service"] == start


def test_allocated_kds_are_taken_in_name_order_and_never_collide() -> None:
    """Input order does not matter: KDs are allocated in name order, each number used once."""
    bodies = [named_kd(name) for name in ("zeta", "alpha", "mid")]
    assignment = assign_ports(plans(*bodies), Inventory(), PortMode.ALLOCATED)
    reversed_assignment = assign_ports(plans(*reversed(bodies)), Inventory(), PortMode.ALLOCATED)
    assert numbers(assignment) == numbers(reversed_assignment)
    used = [n for party_ports in assignment.numbers.values() for n in party_ports.values()]
    assert len(used) == len(set(used)) == 9
    alpha = run(3, allocation_start("alice", "alpha"))
    assert numbers(assignment)[("alpha", 0)] == dict(
        zip(("service", "internal", "brpc-builtin"), alpha, strict=True)
    )


def test_allocated_later_kd_steps_over_earlier_kd_numbers() -> None:
    start = allocation_start("alice", "b")
    # make "a" own exactly b's start by pinning it there
    preset = json.dumps(
        [
            {
                "domainID": "alice",
                "namedPort": {"service": start, "internal": start + 1, "brpc-builtin": 1},
            }
        ]
    )
    assignment = assign_ports(
        plans(named_kd("a", preset=preset), named_kd("b")), Inventory(), PortMode.ALLOCATED
    )
    assert numbers(assignment)[("b", 0)] == {
        "service": run(3, start + 2)[0],
        "internal": run(3, start + 2)[1],
        "brpc-builtin": run(3, start + 2)[2],
    }


def test_allocated_exhausted_range() -> None:
    inventory = Inventory(taken_ports={"alice": frozenset(range(20000, 32766))})
    [plan] = plans(named_kd("kd"), inventory=inventory)
    assignment = assign_ports([plan], inventory, PortMode.ALLOCATED)
    assert assignment.problems == (
        allocate_problem(
            "kd",
            'failed to allocate ports for namespace "alice", detail-> no available port to '
            "allocate, allocated port count=12767, namespace=alice",
        ),
    )
    assert "kd" not in assignment.annotations


def test_allocated_partner_parties_get_no_numbers() -> None:
    inventory = Inventory(domains={"bob": DomainFacts(is_partner=True)})
    [plan] = plans(named_kd("kd", party("alice"), party("bob")), inventory=inventory)
    assignment = assign_ports([plan], inventory, PortMode.ALLOCATED)
    assert list(assignment.numbers) == [("kd", 0)]
    assert party_numbers(assignment, plan, plan.parties[1]) == {}
    assert [e["domainID"] for e in json.loads(assignment.annotations["kd"])] == ["alice"]


# --- allocated: the pre-set annotation --------------------------------------------------------


@pytest.mark.parametrize("mode", list(PortMode))
def test_preset_annotation_is_used_verbatim(mode: PortMode) -> None:
    """Kuscia's ``allocatePorts``: a non-empty annotation is reused, whatever the AppImage says.

    It is a fact about a running deployment, so it wins under ``--ports declared`` too.
    """
    preset = (
        '[{"domainID":"alice","namedPort":{"brpc-builtin":10002,"internal":10001,'
        '"service":10000,"unused":1}},'
        '{"domainID":"alice","namedPort":{"service":1,"internal":2,"brpc-builtin":3}},'
        '{"domainID":"bob","role":"host","namedPort":{"service":30210,"internal":30212,'
        '"brpc-builtin":30213}}]'
    )
    [plan] = plans(named_kd("kd", party("alice"), party("bob", "host"), preset=preset))
    assignment = assign_ports([plan], Inventory(), mode)
    assert assignment == PortAssignment(
        {
            ("kd", 0): {"service": 10000, "internal": 10001, "brpc-builtin": 10002},
            ("kd", 1): {"service": 30210, "internal": 30212, "brpc-builtin": 30213},
        },
        {"kd": preset},
        (),
    )


@pytest.mark.parametrize(
    "preset",
    [
        pytest.param("", id="empty-string"),
        pytest.param("[]", id="empty-array"),
        pytest.param("null", id="json-null-is-an-empty-list-in-go"),
    ],
)
def test_empty_preset_means_allocate(preset: str) -> None:
    [plan] = plans(named_kd("kd", preset=preset))
    assignment = assign_ports([plan], Inventory(), PortMode.ALLOCATED)
    a = run(3, allocation_start("alice", "kd"))
    assert numbers(assignment) == {
        ("kd", 0): {"service": a[0], "internal": a[1], "brpc-builtin": a[2]}
    }


@pytest.mark.parametrize(
    ("preset", "detail"),
    [
        pytest.param(
            "{not json",
            f"invalid {ANNOTATION} annotation: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
            id="not-json",
        ),
        pytest.param(
            '{"domainID":"alice"}',
            f"invalid {ANNOTATION} annotation: cannot unmarshal object into a list of party ports",
            id="not-an-array",
        ),
        pytest.param(
            "[1]",
            f"invalid {ANNOTATION} annotation: entry 0: cannot unmarshal number into "
            "PartyAllocatedPorts",
            id="entry-not-an-object",
        ),
        pytest.param(
            '[{"domainID":7}]',
            f"invalid {ANNOTATION} annotation: entry 0: cannot unmarshal number into domainID "
            "of type string",
            id="domain-not-a-string",
        ),
        pytest.param(
            '[{"domainID":"alice","namedPort":[1]}]',
            f"invalid {ANNOTATION} annotation: entry 0: cannot unmarshal array into namedPort",
            id="named-port-not-an-object",
        ),
        pytest.param(
            '[{"domainID":"alice","namedPort":{"service":1.0}}]',
            f"invalid {ANNOTATION} annotation: entry 0: namedPort 'service': 1.0 is not an int32",
            id="port-a-float",
        ),
        pytest.param(
            '[{"domainID":"alice","namedPort":{"service":2147483648}}]',
            f"invalid {ANNOTATION} annotation: entry 0: namedPort 'service': 2147483648 is not "
            "an int32",
            id="port-beyond-int32",
        ),
        pytest.param(
            '[{"domainID":"alice","namedPort":{"service":true}}]',
            f"invalid {ANNOTATION} annotation: entry 0: namedPort 'service': true is not an int32",
            id="port-a-bool",
        ),
        pytest.param(
            "[null]",
            "allocated ports not found for party alice/",
            id="null-entry-is-an-empty-one",
        ),
        pytest.param(
            '[{"domainID":"bob","namedPort":{"service":1}}]',
            "allocated ports not found for party alice/",
            id="party-missing",
        ),
        pytest.param(
            '[{"domainID":"alice","role":"x","namedPort":{"service":1}}]',
            "allocated ports not found for party alice/",
            id="role-must-match",
        ),
        pytest.param(
            '[{"domainID":"alice","namedPort":{"service":1,"brpc-builtin":3}}]',
            "failed to fill allocated ports for party alice/, detail->not found allocated port "
            "for internal",
            id="port-missing",
        ),
        pytest.param(
            '[{"domainID":"alice","namedPort":{"service":1,"internal":"2","brpc-builtin":3}}]',
            f"invalid {ANNOTATION} annotation: entry 0: namedPort 'internal': \"2\" is not an "
            "int32",
            id="port-not-a-number",
        ),
    ],
)
@pytest.mark.parametrize("mode", list(PortMode))
def test_preset_annotation_problems(preset: str, detail: str, mode: PortMode) -> None:
    """``allocatePorts`` and ``fillAllocatedPorts`` failures, in both port modes."""
    [plan] = plans(named_kd("kd", preset=preset))
    assignment = assign_ports([plan], Inventory(), mode)
    assert assignment.problems == (allocate_problem("kd", detail),)


def test_preset_fields_match_case_insensitively_and_unknown_ones_are_ignored() -> None:
    """Go's encoding/json matches ``DomainID`` to ``domainID`` and skips unknown keys."""
    preset = (
        '[{"DomainID":"alice","ROLE":"","NamedPort":{"service":1,"internal":2,'
        '"brpc-builtin":3},"comment":"pinned by hand"}]'
    )
    [plan] = plans(named_kd("kd", preset=preset))
    assignment = assign_ports([plan], Inventory(), PortMode.ALLOCATED)
    assert assignment.problems == ()
    assert numbers(assignment) == {("kd", 0): {"service": 1, "internal": 2, "brpc-builtin": 3}}


def test_preset_numbers_shared_by_two_kds_in_one_namespace() -> None:
    preset = '[{"domainID":"alice","namedPort":{"service":1,"internal":2,"brpc-builtin":3}}]'
    assignment = assign_ports(
        plans(named_kd("a", preset=preset), named_kd("b", preset=preset)),
        Inventory(),
        PortMode.ALLOCATED,
    )
    assert assignment.problems == tuple(
        allocate_problem(
            "b", f"port {n} in namespace alice is given to both a/a/{name} and b/b/{name}"
        )
        for n, name in ((1, "service"), (2, "internal"), (3, "brpc-builtin"))
    )


def test_preset_numbers_are_skipped_by_fresh_allocations() -> None:
    start = allocation_start("alice", "fresh")
    preset = json.dumps(
        [{"domainID": "alice", "namedPort": {"service": start, "internal": 1, "brpc-builtin": 2}}]
    )
    # "zzz" sorts after "fresh", but presets are claimed before any fresh allocation
    assignment = assign_ports(
        plans(named_kd("fresh"), named_kd("zzz", preset=preset)), Inventory(), PortMode.ALLOCATED
    )
    assert numbers(assignment)[("fresh", 0)]["service"] == run(1, start + 1)[0]


# --- format_annotation (Go encoding/json of []PartyAllocatedPorts) -----------------------------


def test_format_annotation() -> None:
    [plan] = plans(
        named_kd("kd", party("alice"), party("bob", "host"), party("carol")), image=NO_PORTS
    )
    assert format_annotation(plan, {("kd", 1): {"z": 2, "a": 1}}) == (
        '[{"domainID":"alice"},{"domainID":"bob","role":"host","namedPort":{"a":1,"z":2}},'
        '{"domainID":"carol"}]'
    )
