"""kustomize legacy exec plugin: the KusciaDeployment itself is the generator config.

kustomize finds the plugin at
``$XDG_CONFIG_HOME/kustomize/plugin/kuscia.secretflow/v1alpha1/kusciadeployment/KusciaDeployment``
from the config's ``apiVersion`` and ``kind``, writes the config (here: one KusciaDeployment
listed under ``generators:``) to a temporary file, and runs the plugin with that file's path as
its first argument and the kustomization directory as its working directory
(``api/internal/plugins/execplugin``). The plugin writes a YAML stream on stdout; on failure
kustomize shows its stderr.

A KD names nothing but AppImages by name, so the other inputs are listed on the KD itself:

``kdgen.kuscia.secretflow/inputs``
    comma-separated files or directories, relative to the kustomization directory, holding the
    AppImages (and optionally an Inventory). Directories contribute their ``*.yaml``,
    ``*.yml`` and ``*.json`` files, as for ``kdgen generate``. Each must resolve inside the
    checkout holding the kustomization directory (or inside that directory when it is in
    none), symbolic links followed (``kdgen.confine``, like kustomize's load restrictor), or
    the plugin fails naming the annotation.
``kdgen.kuscia.secretflow/profile``, ``kdgen.kuscia.secretflow/ports``
    the ``--profile`` and ``--ports`` values (defaults ``kuscia`` and ``declared``).
``kdgen.kuscia.secretflow/include-sources``
    ``"false"`` leaves the KD and its AppImages out of the output (default ``"true"``: they
    come first, so the kustomization applies them with their objects).

kdgen never copies these annotations onto what it generates (the emitted KD drops them too),
so they change nothing else. The
config's own file name is unknown here (kustomize passes a temporary copy, with the annotations
it adds while building), so problems in the KD name it ``<generator config>``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from kdgen.adapters import Outcome, read_options
from kdgen.confine import checkout_root
from kdgen.errors import InputError, KdgenError, Problem, problem_lines
from kdgen.expand import expand
from kdgen.load import Source, parse_sources
from kdgen.render import render_stream
from kdgen.sources import read_sources, read_text_file
from kdgen.yamlio import read_documents

ANNOTATION_INPUTS = "kdgen.kuscia.secretflow/inputs"
ANNOTATION_PROFILE = "kdgen.kuscia.secretflow/profile"
ANNOTATION_PORTS = "kdgen.kuscia.secretflow/ports"
ANNOTATION_INCLUDE_SOURCES = "kdgen.kuscia.secretflow/include-sources"
CONFIG_SOURCE = "<generator config>"


def generate(config_path: str) -> Outcome:
    """Generate the manifests of the KusciaDeployment in ``config_path``.

    Args:
        config_path: the generator config kustomize wrote: one KusciaDeployment document.

    Returns:
        The YAML stream (exit 0, warnings on stderr), or the problems on stderr (exit 1).
    """
    try:
        text = read_text_file(Path(config_path), config_path)
    except InputError as err:
        return Outcome(stderr=problem_lines(err.problems), exit_code=1)
    config = Source(CONFIG_SOURCE, text)
    try:
        annotations = _annotations(config)
        options = read_options(
            annotations.get(ANNOTATION_PROFILE),
            annotations.get(ANNOTATION_PORTS),
            annotations.get(ANNOTATION_INCLUDE_SOURCES),
            at=_annotation_problem,
        )
        listed = str(annotations.get(ANNOTATION_INPUTS) or "")
        paths = [p.strip() for p in listed.split(",") if p.strip()]
        sources = [
            config,
            *read_sources(
                paths,
                stdin=io.StringIO(),
                root=checkout_root(Path.cwd()),
                parameters=[f"metadata.annotations[{ANNOTATION_INPUTS}]"] * len(paths),
                origin=CONFIG_SOURCE,
            ),
        ]
        expansion = expand(parse_sources(sources), options)
    except KdgenError as err:
        return Outcome(stderr=problem_lines(getattr(err, "problems", ())), exit_code=1)
    return Outcome(
        stdout=render_stream(expansion.objects), stderr=problem_lines(expansion.warnings)
    )


_SETTING_ANNOTATIONS = {
    "profile": ANNOTATION_PROFILE,
    "ports": ANNOTATION_PORTS,
    "includeSources": ANNOTATION_INCLUDE_SOURCES,
}


def _annotation_problem(setting: str) -> Problem:
    name = _SETTING_ANNOTATIONS[setting]
    return Problem("", source=CONFIG_SOURCE, doc_index=1, field=f"metadata.annotations.{name}")


def _annotations(config: Source) -> dict[str, Any]:
    documents = read_documents(config.text, config.name)
    body = documents[0][1] if documents else None
    metadata = body.get("metadata") if isinstance(body, dict) else None
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return annotations if isinstance(annotations, dict) else {}
