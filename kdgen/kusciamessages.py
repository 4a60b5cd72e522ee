"""Kuscia's own error texts, ported once and shared by the generator and status-sync.

Each function formats one message of Kuscia's KusciaDeployment controller
(``pkg/controllers/kusciadeployment``) exactly as its Go ``fmt.Errorf`` does, so ``kdgen
validate`` and the status status-sync writes say the same words Kuscia would. Pure.
"""

from __future__ import annotations


def parties_empty(kd_name: str) -> str:
    """``validate``: a KD without parties.

    >>> parties_empty("demo")
    "parties can't be empty for kusciaDeployment demo"
    """
    return f"parties can't be empty for kusciaDeployment {kd_name}"


def initiator_not_a_party(kd_name: str, initiator: str) -> str:
    """``validate``: the initiator is not one of ``spec.parties``' domains.

    >>> initiator_not_a_party("demo", "carol")
    'kusciaDeployment demo initiator carol should be one of the parties'
    """
    return f"kusciaDeployment {kd_name} initiator {initiator} should be one of the parties"


def kit_info_failed(domain_id: str) -> str:
    """``buildPartyKitInfo``: the prefix of every failure to build a party's kit.

    >>> kit_info_failed("alice")
    'failed to build domain alice kit info'
    """
    return f"failed to build domain {domain_id} kit info"


def namespace_not_found(domain_id: str) -> str:
    """``buildPartyKitInfo``: the party's namespace does not exist (the lister's NotFound).

    >>> print(namespace_not_found("a"))
    failed to build domain a kit info, failed to get namespace a, namespace "a" not found
    """
    return (
        f"{kit_info_failed(domain_id)}, failed to get namespace {domain_id}, "
        f'namespace "{domain_id}" not found'
    )
