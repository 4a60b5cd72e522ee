"""Decide every port number: the AppImage's declared ports, or a deterministic allocation.

Pure. Kuscia's controller picks a random free number in 20000-32766 per port and stores the
result on the KD as the ``kuscia.secretflow/allocated-ports`` annotation; a pre-set annotation
is reused verbatim. kdgen keeps that contract but makes the choice reproducible:

* In every mode, KDs with a non-empty annotation keep its numbers verbatim: they are the
  numbers a running deployment uses and its partners dial.
* ``declared`` (default): each other port uses the AppImage's ``port`` value, as the seed
  shows; a port the AppImage gives no number (its reference example has none) is allocated
  as below.
* ``allocated``: every other port, KDs taken in name order, gets a number from a start
  derived from a SHA-256 of ``<namespace>/<kd name>``, going up by one and skipping every
  number already used in that namespace (the inventory's ``takenPorts``, pre-set
  annotations, declared numbers, earlier KDs of this run). Parties of one KD that share a
  namespace get distinct numbers, unlike Kuscia's allocator (spec §5: it restarts at the
  first number for each party).

Adding a KD can move the numbers of KDs that sort after it; ``kdgen pin-ports`` writes the
numbers into the KD files as the annotation so they stay fixed in git.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kdgen import jsontext, limits
from kdgen.errors import Problem
from kdgen.model import ANNOTATION_ALLOCATED_PORTS, PORT_RANGE, Inventory, PortMode, Reason
from kdgen.plan import KdPlan, PartyPlan

PartyKey = tuple[str, int]
"""``(kd name, index in spec.parties)``."""


@dataclass(frozen=True, slots=True)
class PortAssignment:
    """The outcome of port planning for a whole run.

    Attributes:
        numbers: per self party, port name -> number.
        annotations: per KD name, the allocated-ports annotation value (allocated mode only).
        problems: what went wrong; no numbers are trustworthy for a KD with an error.
    """

    numbers: Mapping[PartyKey, Mapping[str, int]] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


class _Namespaces:
    """Which numbers are used in each namespace, and by whom.

    Kept so that every question is answered in (amortised) constant time, whatever the number
    of KDs and ports: a per-namespace count of used numbers in the allocator range, and a
    skip table that jumps over runs of used numbers (numbers are never freed, so a jump once
    taken stays valid). Without them a nearly full namespace cost a scan of the whole range
    per port, quadratic in the ports of a run.
    """

    def __init__(self, taken: Mapping[str, frozenset[int]]) -> None:
        self._taken = taken
        self._owners: dict[tuple[str, int], str] = {}
        low, high = PORT_RANGE
        self._used: dict[str, set[int]] = {
            ns: {n for n in numbers if low <= n < high} for ns, numbers in taken.items()
        }
        self._skip: dict[str, dict[int, int]] = {}

    def is_free(self, namespace: str, number: int) -> bool:
        return number not in self._taken.get(namespace, ()) and (
            (namespace, number) not in self._owners
        )

    def count(self, namespace: str) -> int:
        """Return how many numbers of ``namespace`` are used, as Kuscia's error message says."""
        return len(self._used.get(namespace, ()))

    def next_free(self, namespace: str, start: int) -> int | None:
        """Return the first free number at or after ``start``, wrapping round the range."""
        low, high = PORT_RANGE
        if self.count(namespace) >= high - low:
            return None
        skip = self._skip.setdefault(namespace, {})
        passed = []
        number = start
        while not self.is_free(namespace, number):
            passed.append(number)
            number = skip.get(number, number + 1)
            if number >= high:
                number = low
        for used in passed:
            skip[used] = number
        return number

    def claim(self, namespace: str, number: int, owner: str) -> str:
        """Record ``owner`` on the number; return the earlier owner if another had it."""
        earlier = self._owners.setdefault((namespace, number), owner)
        low, high = PORT_RANGE
        if low <= number < high:
            self._used.setdefault(namespace, set()).add(number)
        return "" if earlier == owner else earlier


def assign_ports(plans: Sequence[KdPlan], inventory: Inventory, mode: PortMode) -> PortAssignment:
    """Give every port of every self party its number, per ``mode``.

    In both modes a KD's non-empty allocated-ports annotation is a fact about a running
    deployment, so its numbers are used verbatim (Kuscia's ``allocatePorts`` reuses it and
    ``fillAllocatedPorts`` fails a party it does not cover). Otherwise ``declared`` takes each
    port's AppImage number and ``allocated`` ignores it; every port still without a number is
    then allocated deterministically, KDs in name order.
    """
    used = _Namespaces(inventory.taken_ports)
    numbers: dict[PartyKey, dict[str, int]] = {}
    annotations: dict[str, str] = {}
    problems: list[Problem] = []
    fresh = []
    for plan in plans:
        preset = (plan.kd.body.get("metadata", {}).get("annotations") or {}).get(
            ANNOTATION_ALLOCATED_PORTS, ""
        )
        entries, error = _parse_annotation(preset)
        if error:
            problems.append(_allocate_problem(plan, error))
        elif entries:
            annotations[plan.name] = preset
            problems.extend(_use_preset(plan, entries, used, numbers))
        else:
            fresh.append(plan)
    if mode is PortMode.DECLARED:
        for plan in fresh:
            _use_declared(plan, used, numbers)
    for plan in sorted(fresh, key=lambda p: p.name):
        error = _allocate(plan, used, numbers)
        if error:
            problems.append(_allocate_problem(plan, error))
        elif mode is PortMode.ALLOCATED:
            annotations[plan.name] = format_annotation(plan, numbers)
    return PortAssignment(numbers, annotations, tuple(problems))


def _use_declared(plan: KdPlan, used: _Namespaces, numbers: dict[PartyKey, dict[str, int]]) -> None:
    """Take each port's AppImage number and mark it used, so allocation avoids it.

    Declared numbers may repeat across Deployments (each pod has its own IP), so a repeat is
    not a problem here.
    """
    for party in plan.self_parties:
        party_numbers = numbers.setdefault((plan.name, party.index), {})
        for port in party.ports:
            if port.declared is not None:
                party_numbers[port.name] = port.declared
                used.claim(party.domain_id, port.declared, f"{plan.name}/{party.deploy_name}")


_GO_TYPES = {
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
}
_FIELDS = {"domainid": "domainID", "role": "role", "namedport": "namedPort"}
_INT32 = (-(2**31), 2**31 - 1)


def _parse_annotation(value: str) -> tuple[list[dict[str, Any]], str]:
    """Decode the annotation as Go's ``json.Unmarshal`` into ``[]PartyAllocatedPorts`` would.

    Returns the entries, each normalised to ``{domainID, role, namedPort}``, and ``""``; or no
    entries and the reason the controller would fail with. Like Go: ``null`` is an empty list
    (so ports are allocated), a ``null`` entry is an empty one, field names match without
    regard to case, unknown fields are ignored, and a port number must be a JSON integer that
    fits an int32.

    >>> _parse_annotation('[{"DomainId":"alice","namedPort":{"api":1},"x":1}]')
    ([{'domainID': 'alice', 'role': '', 'namedPort': {'api': 1}}], '')
    >>> _parse_annotation('[null]')
    ([{'domainID': '', 'role': '', 'namedPort': {}}], '')
    >>> _parse_annotation('null')
    ([], '')
    """
    if not value:
        return [], ""
    invalid = f"invalid {ANNOTATION_ALLOCATED_PORTS} annotation: "
    try:
        decoded = jsontext.loads(value)
    except ValueError as err:
        return [], invalid + str(err)
    if decoded is None:
        return [], ""
    if not isinstance(decoded, list):
        return [], invalid + f"cannot unmarshal {_go_type(decoded)} into a list of party ports"
    entries = []
    for i, item in enumerate(decoded):
        entry, error = _parse_entry(item)
        if error:
            return [], invalid + f"entry {i}: {error}"
        entries.append(entry)
    return entries, ""


def _parse_entry(item: Any) -> tuple[dict[str, Any], str]:
    entry: dict[str, Any] = {"domainID": "", "role": "", "namedPort": {}}
    if item is None:
        return entry, ""
    if not isinstance(item, dict):
        return entry, f"cannot unmarshal {_go_type(item)} into PartyAllocatedPorts"
    for key, field_value in item.items():
        name = _FIELDS.get(str(key).lower())
        if name is None or field_value is None:
            continue
        if name == "namedPort":
            if not isinstance(field_value, dict):
                return entry, f"cannot unmarshal {_go_type(field_value)} into namedPort"
            named: dict[str, int] = {}
            for port, number in field_value.items():
                if number is None:
                    number = 0
                is_int = isinstance(number, int) and not isinstance(number, bool)
                if not is_int or not _INT32[0] <= number <= _INT32[1]:
                    return entry, f"namedPort {port!r}: {json.dumps(number)} is not an int32"
                if not limits.PORT_MIN <= number <= limits.PORT_MAX:
                    return entry, (
                        f"namedPort {port!r}: {number} is not a port number "
                        f"({limits.PORT_MIN}-{limits.PORT_MAX}); the apiserver would reject the "
                        "Service and container port made from it"
                    )
                named[port] = number
            entry[name] = named
        elif isinstance(field_value, str):
            entry[name] = field_value
        else:
            return entry, f"cannot unmarshal {_go_type(field_value)} into {name} of type string"
    return entry, ""


def _go_type(value: Any) -> str:
    return _GO_TYPES.get(type(value), type(value).__name__)


def _allocate_problem(plan: KdPlan, detail: str) -> Problem:
    return plan.kd.problem(
        f"metadata.annotations.{ANNOTATION_ALLOCATED_PORTS}",
        f"failed to allocate ports, {detail}",
        reason=Reason.ALLOCATE_PORTS_FAILED.value,
    )


def _use_preset(
    plan: KdPlan,
    entries: list[dict[str, Any]],
    used: _Namespaces,
    numbers: dict[PartyKey, dict[str, int]],
) -> list[Problem]:
    """Take each party's numbers from the first entry with its domainID and role.

    Kuscia's ``fillAllocatedPorts``; numbers are used verbatim, with no range check.
    """
    problems = []
    for party in plan.self_parties:
        who = f"{party.domain_id}/{party.role}"
        entry = next(
            (e for e in entries if e["domainID"] == party.domain_id and e["role"] == party.role),
            None,
        )
        if entry is None:
            problems.append(_allocate_problem(plan, f"allocated ports not found for party {who}"))
            continue
        named = entry["namedPort"]
        party_numbers = numbers[(plan.name, party.index)] = {}
        for port in party.ports:
            number = named.get(port.name)
            if number is None:
                problems.append(
                    _allocate_problem(
                        plan,
                        f"failed to fill allocated ports for party {who}, "
                        f"detail->not found allocated port for {port.name}",
                    )
                )
                continue
            party_numbers[port.name] = number
            owner = f"{plan.name}/{party.deploy_name}/{port.name}"
            earlier = used.claim(party.domain_id, number, owner)
            if earlier:
                problems.append(
                    _allocate_problem(
                        plan,
                        f"port {number} in namespace {party.domain_id} is given to both "
                        f"{earlier} and {owner}",
                    )
                )
    return problems


def allocation_start(namespace: str, kd_name: str) -> int:
    """Return where the search for a KD's numbers in ``namespace`` starts.

    >>> allocation_start("alice", "kd") == allocation_start("alice", "kd")
    True
    >>> 20000 <= allocation_start("alice", "x") < 32767
    True
    """
    low, high = PORT_RANGE
    digest = hashlib.sha256(f"{namespace}/{kd_name}".encode()).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low)


def _allocate(plan: KdPlan, used: _Namespaces, numbers: dict[PartyKey, dict[str, int]]) -> str:
    """Number every port of the KD's self parties that has no number yet."""
    low, high = PORT_RANGE
    cursors: dict[str, int] = {}
    for party in plan.self_parties:
        party_numbers = numbers.setdefault((plan.name, party.index), {})
        namespace = party.domain_id
        cursor = cursors.get(namespace, allocation_start(namespace, plan.name))
        for port in party.ports:
            if port.name in party_numbers:
                continue
            candidate = used.next_free(namespace, low + (cursor - low) % (high - low))
            if candidate is None:
                return (
                    f'failed to allocate ports for namespace "{namespace}", detail-> no available '
                    f"port to allocate, allocated port count={used.count(namespace)}, "
                    f"namespace={namespace}"
                )
            used.claim(namespace, candidate, f"{plan.name}/{party.deploy_name}/{port.name}")
            party_numbers[port.name] = candidate
            cursor = candidate + 1
        cursors[namespace] = cursor
    return ""


def format_annotation(plan: KdPlan, numbers: Mapping[PartyKey, Mapping[str, int]]) -> str:
    """Serialise a KD's numbers as Kuscia's allocated-ports annotation.

    The format of Go's ``encoding/json`` on ``[]PartyAllocatedPorts``: self parties in spec
    order; ``role`` omitted when empty; ``namedPort`` with sorted keys, omitted when the party
    has no ports; compact.
    """
    entries = []
    for party in plan.self_parties:
        entry: dict[str, Any] = {"domainID": party.domain_id}
        if party.role:
            entry["role"] = party.role
        named = numbers.get((plan.name, party.index)) or {}
        if named:
            entry["namedPort"] = dict(sorted(named.items()))
        entries.append(entry)
    return json.dumps(entries, separators=(",", ":"))


def party_numbers(assignment: PortAssignment, plan: KdPlan, party: PartyPlan) -> Mapping[str, int]:
    """Return the numbers of one party (empty for a partner party)."""
    return assignment.numbers.get((plan.name, party.index), {})
