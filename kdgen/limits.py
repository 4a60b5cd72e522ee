"""The bounds kdgen puts on what it reads, so no input can exhaust time or memory.

kdgen runs on input written by someone else (a contributor's commit inside Argo CD's
repo-server, a kustomize or kpt build, a CI job). Each limit below is checked where the input
is read, before any work grows with it, and breaking one is an ordinary input problem: one
located line and exit status 1. ``SECURITY.md`` lists them with the tests that enforce them.

Together they make every stage linear in the input: the number of YAML nodes a run builds is
bounded by ``MAX_YAML_NODES`` (aliases counted as the copies they stand for), and the only
output that grows faster than the input, ``CLUSTER_DEFINE`` (every self party's copy lists
every party, as Kuscia's controller writes it), is bounded by ``MAX_PARTIES``.
"""

from __future__ import annotations

from typing import Final

MAX_INPUT_BYTES: Final = 16 * 1024 * 1024
"""Bytes of input in one run: every file, standard input and the KRM ResourceList together."""

MAX_DOCUMENTS: Final = 10_000
"""YAML documents in one run (KRM ``items`` and ``spec.inline`` entries count too)."""

MAX_DEPTH: Final = 64
"""Nesting of mappings and lists in one document; Kubernetes objects need about 15."""

MAX_YAML_NODES: Final = 2_000_000
"""Scalars, mappings and lists in one stream, an alias counting as the nodes it repeats."""

MAX_ALIASES: Final = 10_000
"""``*alias`` references in one stream (Go's YAML decoder bounds aliasing the same way)."""

MAX_PARTIES: Final = 100
"""Parties of one KusciaDeployment: each self party's CLUSTER_DEFINE lists every party."""

MAX_PORTS: Final = 256
"""Ports of one deploy template, all containers together."""

MAX_TEMPLATE_BYTES: Final = 1024 * 1024
"""Bytes of one config template (a ConfigMap holds at most 1 MiB in all)."""

MAX_FIELD_BYTES: Final = 1024 * 1024
"""Bytes of any other single string value, ``inputConfig`` and annotations included."""

MAX_CONTAINERS: Final = 64
"""Containers of one deploy template or party template: each carries CLUSTER_DEFINE."""

MAX_OUTPUT_BYTES: Final = 64 * 1024 * 1024
"""Bytes of generated objects in one run (about; strings and keys counted as written). Parties
and ports multiply: each self party's CLUSTER_DEFINE lists every party's ports, once per
container, so a few KB of input can ask for gigabytes; the run stops at this bound instead."""

MAX_OBJECTS: Final = 20_000
"""Objects generated in one run (a Deployment, a ConfigMap and a Service per serviced port for
each self party), checked before they are built."""

PORT_MIN: Final = 1
PORT_MAX: Final = 65535
"""A port number the apiserver accepts in a container port or a Service."""
