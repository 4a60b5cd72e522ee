"""The bounds kdgen puts on what it reads, so no input can exhaust time or memory.

kdgen runs on input written by someone else (a contributor's commit inside Argo CD's
repo-server, a kustomize or kpt build, a CI job). Each limit below is checked where the input
is read, before any work grows with it, and breaking one is an ordinary input problem: one
located line and exit status 1. ``SECURITY.md`` lists them with the tests that enforce them.

Together they make every stage linear in the input: the number of YAML nodes a run builds is
bounded by ``MAX_YAML_NODES`` (aliases counted as the copies they stand for). Output can grow
faster than the input: ``CLUSTER_DEFINE`` (every self party's copy lists every party, as
Kuscia's controller writes it) is copied into every container, and so is ``inputConfig``, so
a KD's output grows with parties x parties x containers. Each KD's objects and output bytes
are therefore bounded on their own (``MAX_KD_OBJECTS``, ``MAX_KD_OUTPUT_BYTES``), counted from
its plan before anything is built, and the run as a whole by ``MAX_OBJECTS`` and
``MAX_OUTPUT_BYTES``, which bound its time (the stream is written as it is built, so a run's
output is never held in memory at once).
"""

from __future__ import annotations

from typing import Final

MAX_INPUT_BYTES: Final = 16 * 1024 * 1024
"""Bytes of input in one run: every file, standard input and the KRM ResourceList together."""

MAX_DOCUMENTS: Final = 25_000
"""YAML documents in one run (KRM ``items`` and ``spec.inline`` entries count too): room for
20,000 KDs and their AppImages; the input bytes and YAML nodes bounds cap what they hold."""

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

MAX_KD_OBJECTS: Final = 2_000
"""Objects generated from one KD (a Deployment, a ConfigMap and a Service per serviced port for
each self party), counted from its plan before they are built. 100 parties with 18 serviced
ports each fit; a KD asking for more is refused rather than stalling the run."""

MAX_KD_OUTPUT_BYTES: Final = 16 * 1024 * 1024
"""Bytes of YAML generated from one KD, estimated from its plan before it is built
(``bounds.party_output_bytes``: per object a fixed allowance, per container the
CLUSTER_DEFINE, ALLOCATED_PORTS and ``inputConfig`` it carries, the pod spec and config
templates as read). Each self party's CLUSTER_DEFINE lists every party's ports, once per
container, so a few KB of input can ask for gigabytes; 100 parties of the seed's AppImage make
about 4 MB."""

MAX_OBJECTS: Final = 200_000
"""Objects generated in one run, counted before they are built: 10,000 two-party KDs of the
seed's AppImage make 100,000 (bench/serialization.py), so 20,000 such KDs fit. Bounds the
run's time, and the memory of the paths that hold a whole tree (``--output-dir``, ``check``,
KRM, the plugins)."""

MAX_OUTPUT_BYTES: Final = 512 * 1024 * 1024
"""Bytes of YAML generated in one run, the sum of the per-KD estimates: 10,000 two-party KDs
of the seed's AppImage write 171 MB (estimated 255 MB, so about 21,000 such KDs fit). Bounds
the run's time (about half a minute of writing); the stream on stdout is written as it is
built, so there it bounds no memory."""

PORT_MIN: Final = 1
PORT_MAX: Final = 65535
"""A port number the apiserver accepts in a container port or a Service."""
