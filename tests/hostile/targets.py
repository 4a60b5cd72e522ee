"""Every command and adapter, as the runs the hostile tests put an input folder through.

``lay_out`` writes an input (named files of bytes) into a folder; ``runs_for`` lists the runs
that read that folder the way each entry point does: the CLI's ``generate`` (stream and
``--output-dir``), ``validate``, ``check``, ``check --update``, ``pin-ports``, and the three
plugins (``plugin krm`` with the documents as items and with ``spec.files``,
``plugin kustomize-exec`` with the first file as its config, ``plugin argocd-generate``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from tests.hostile.runner import Outcome, Run

_ALLOWED_STDERR = re.compile(r"^(error|warning|ok|updated|pinned|Usage|Try|Error)\b")
_RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def lay_out(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def resource_list(items: list[object], config: Mapping[str, object] | None = None) -> bytes:
    """A ResourceList holding ``items`` (and ``config`` as functionConfig), as JSON."""
    body: dict[str, object] = {
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": items,
    }
    if config is not None:
        body["functionConfig"] = config
    return json.dumps(body).encode()


def runs_for(names: list[str], stdin: bytes, items: list[object] | None = None) -> list[Run]:
    """The runs every hostile input goes through.

    ``names``: its files, in order; ``stdin``: the bytes given on standard input (to
    ``generate -`` and ``plugin krm``); ``items``: documents for a KRM ResourceList.
    """
    first = names[0]
    config = {
        "apiVersion": "kdgen.kuscia.secretflow/v1alpha1",
        "kind": "KusciaDeploymentGenerator",
        "spec": {"files": names},
    }
    extra = [Run(("plugin", "krm"), stdin=resource_list(items))] if items is not None else []
    return [
        *extra,
        Run(("generate", *names)),
        Run(("generate", "-"), stdin=stdin),
        Run(("validate", *names)),
        Run(("generate", "--output-dir", "out", *names)),
        Run(("check", "--golden", "golden.yaml", *names)),
        Run(("check", "--update", "--golden", "golden-new.yaml", *names)),
        Run(("pin-ports", *names)),
        Run(("plugin", "krm"), stdin=stdin),
        Run(("plugin", "krm"), stdin=resource_list([], config)),
        Run(("plugin", "kustomize-exec", first)),
        Run(("plugin", "argocd-generate"), env={"ARGOCD_ENV_KDGEN_PORTS": "allocated"}),
    ]


def misbehaviour(run: Run, outcome: Outcome) -> str:
    """Return what is wrong with an outcome ("" when it is output or kdgen's own error)."""
    if outcome.crash:
        return f"{run.argv}: crashed:\n{outcome.crash}"
    if outcome.exit_code not in (0, 1):
        return f"{run.argv}: exit status {outcome.exit_code}:\n{outcome.stderr}"
    for line in outcome.stderr.splitlines():
        if not _ALLOWED_STDERR.match(line):
            return f"{run.argv}: stderr line not kdgen's: {line!r}"
        if _RAW_CONTROL.search(line):
            return f"{run.argv}: raw control character on stderr: {line!r}"
    if outcome.exit_code == 1 and not outcome.stderr.startswith(("error: ", "warning: ")):
        return f"{run.argv}: exit 1 without a problem line: {outcome.stderr!r}"
    return ""
