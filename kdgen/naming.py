"""Names of the objects made for a party, exactly as Kuscia's controller forms them.

Ported from ``generateDeploymentName``, ``generateConfigMapName`` and ``generateServiceName``
(``pkg/controllers/kusciadeployment/util.go``) and ``GenerateServiceName``
(``pkg/utils/resources/service.go``). Pure.
"""

from __future__ import annotations

import hashlib
import re

from kdgen.gostrconv import go_quote
from kdgen.model import CONFIGMAP_SUFFIX

SERVICE_NAME_PREFIX_PATTERN = re.compile(r"^[a-z]([-a-z0-9]{0,46}[a-z0-9])?$")
"""What Kuscia's ``ValidateServiceNamePrefix`` accepts: 1-48 characters, starting with a letter."""


def invalid_service_name_prefix(prefix: str) -> str | None:
    """Return Kuscia's ``ValidateFailed`` message for a bad ``serviceNamePrefix``, else ``None``.

    Kuscia formats both values with Go's ``%q`` and ends the message with a space.

    >>> invalid_service_name_prefix("svc") is None
    True
    >>> invalid_service_name_prefix("9x")[:60]
    'field "ServiceNamePrefix" is invalid, invalid value: "9x": r'
    """
    if not prefix or SERVICE_NAME_PREFIX_PATTERN.fullmatch(prefix):
        return None
    return (
        f'field "ServiceNamePrefix" is invalid, invalid value: {go_quote(prefix)}: '
        f"regex used for validation is {go_quote(SERVICE_NAME_PREFIX_PATTERN.pattern)} "
    )


_MAX_NAME = 63
_HASH_CHARS = 16


def generate_deployment_name(kd_name: str, role: str) -> str:
    """Return the Deployment name of a party: the KD name, suffixed with the role if any.

    >>> generate_deployment_name("kd-1", "")
    'kd-1'
    >>> generate_deployment_name("kd-1", "host")
    'kd-1-host'
    """
    return f"{kd_name}-{role}" if role else kd_name


def generate_configmap_name(deploy_name: str) -> str:
    """Return the name of the ConfigMap holding a party's config templates.

    >>> generate_configmap_name("cm-1")
    'cm-1-configtemplate'
    """
    return deploy_name + CONFIGMAP_SUFFIX


def generate_service_name(deploy_name: str, port_name: str, prefix: str = "") -> str:
    """Return the Service name for one serviced port of a party.

    The port name loses leading and trailing ``-`` and has ``_`` and ``.`` turned into ``-``.
    With a ``serviceNamePrefix`` the name is simply ``<prefix>-<port>`` (Kuscia does not cap
    its length). Without one, Kuscia's ``GenerateServiceName`` rules apply:

    1. ``<deploy>-<port>``, with ``-`` stripped from both ends of each part;
    2. prefixed with ``svc-`` when it starts with a digit (a Service name must start with a
       letter);
    3. when longer than 63 characters: ``svc-`` + the deploy name cut short + ``-`` + the first
       16 hex digits of the SHA-256 of the deploy name + ``-`` + the port, exactly 63 long.

    >>> generate_service_name("dm-1", "domain")
    'dm-1-domain'
    >>> generate_service_name("ignored", "cluster", prefix="dm-2")
    'dm-2-cluster'
    >>> generate_service_name("123-456-789", "domain")
    'svc-123-456-789-domain'
    >>> generate_service_name("abc-012345678-012345678-012345678-012345678-012345678-012",
    ...                       "domain")
    'svc-abc-012345678-012345678-012345678-0-8b65e42a1eb3afbb-domain'
    >>> generate_service_name("12-012345678-012345678-012345678-012345678-012345678", "domain")
    'svc-12-012345678-012345678-012345678-012345678-012345678-domain'
    """
    port = port_name.strip("-").replace("_", "-").replace(".", "-")
    if prefix:
        return f"{prefix.strip('-')}-{port}"
    deploy = deploy_name.strip("-")
    port = port.strip("-")
    name = f"{deploy}-{port}"
    if name[:1].isdigit() and name[:1].isascii():
        name = "svc-" + name
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(deploy.encode()).hexdigest()[:_HASH_CHARS]
        keep = _MAX_NAME - _HASH_CHARS - len(port) - 6
        name = f"svc-{deploy[:keep]}-{digest}-{port}"
    return name
