"""Argo CD Config Management Plugin ``generate``: the application directory in, a YAML stream out.

Argo CD's CMP server runs the ``generate`` command of ``plugins/argocd/plugin.yaml`` with the
working directory set to the Application's source path and with the Application's
``spec.source.plugin.env`` entries in the environment, each name prefixed with ``ARGOCD_ENV_``.
Standard output must hold only Kubernetes objects; anything for people goes to stderr, which
Argo CD shows when the command fails.

Inputs: every ``*.yaml``/``*.yml``/``*.json`` file of the working directory (not
sub-directories), as ``kdgen generate .`` reads them, plus the optional inventory file.
Parameters (Application ``plugin.env`` name, then the variable the plugin sees):

====================  =============================  ==========================================
``KDGEN_PROFILE``     ``ARGOCD_ENV_KDGEN_PROFILE``    ``kuscia`` (default) or ``plain``
``KDGEN_PORTS``       ``ARGOCD_ENV_KDGEN_PORTS``      ``declared`` (default) or ``allocated``
``KDGEN_INVENTORY``   ``ARGOCD_ENV_KDGEN_INVENTORY``  inventory file, relative to the app directory
``KDGEN_INCLUDE_``    ``ARGOCD_ENV_KDGEN_INCLUDE_``   ``true`` (default): the KD and AppImages
``SOURCES``           ``SOURCES``                     are part of the app; ``false``: only the
                                                     objects made from them
====================  =============================  ==========================================

An empty value means the default. An inventory kept inside the application directory is read
once, as one of its files; naming it as well is harmless.

Confinement (``kdgen.confine``): the inventory, and every file of the application
directory, may sit anywhere in the repository Argo CD checked out, but not outside it: each
path, symbolic links followed, must resolve inside the repository root (the working
directory minus ``ARGOCD_APP_SOURCE_PATH``; when that variable does not describe the working
directory, the nearest folder above holding ``.git``, else the application directory).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

from kdgen.adapters import Outcome, read_options
from kdgen.confine import checkout_root
from kdgen.errors import KdgenError, Problem, problem_lines
from kdgen.expand import expand
from kdgen.load import parse_sources
from kdgen.render import render_stream
from kdgen.sources import read_sources

ENV_PREFIX = "ARGOCD_ENV_"
ENV_PROFILE = "ARGOCD_ENV_KDGEN_PROFILE"
ENV_PORTS = "ARGOCD_ENV_KDGEN_PORTS"
ENV_INVENTORY = "ARGOCD_ENV_KDGEN_INVENTORY"
ENV_INCLUDE_SOURCES = "ARGOCD_ENV_KDGEN_INCLUDE_SOURCES"
_SETTING_NAMES = {"profile": "PROFILE", "ports": "PORTS", "includeSources": "INCLUDE_SOURCES"}
ENV_SOURCE_PATH = "ARGOCD_APP_SOURCE_PATH"


def repository_root(app: Path, source_path: str) -> Path:
    """Return the repository root: ``app`` minus ``source_path`` when it ends with it.

    >>> repository_root(Path("/repo/apps/kd"), "apps/kd")
    PosixPath('/repo')
    >>> repository_root(Path("/repo/apps/kd"), "../../etc")
    PosixPath('/repo/apps/kd')
    """
    parts = [part for part in Path(source_path).parts if part not in ("", ".")]
    if not parts or ".." in parts or Path(source_path).is_absolute():
        return checkout_root(app)
    if list(app.parts[-len(parts) :]) != parts:
        return checkout_root(app)
    return Path(*app.parts[: -len(parts)])


def generate(environ: Mapping[str, str]) -> Outcome:
    """Generate the manifests of the application in the current directory.

    Args:
        environ: the process environment, holding the ``ARGOCD_ENV_KDGEN_*`` parameters.

    Returns:
        The YAML stream (exit 0, warnings on stderr), or the problems on stderr (exit 1).
    """
    inventory = environ.get(ENV_INVENTORY, "")
    try:
        options = read_options(
            environ.get(ENV_PROFILE),
            environ.get(ENV_PORTS),
            environ.get(ENV_INCLUDE_SOURCES),
            at=lambda name: Problem(
                "", source="environment", field=f"{ENV_PREFIX}KDGEN_{_SETTING_NAMES[name]}"
            ),
        )
        root = repository_root(Path.cwd(), environ.get(ENV_SOURCE_PATH, ""))
        sources = read_sources(
            ["."], stdin=io.StringIO(), root=root, parameters=["application folder"]
        )
        if inventory and os.path.normpath(inventory) not in {s.name for s in sources}:
            sources += read_sources(
                [inventory],
                stdin=io.StringIO(),
                root=root,
                parameters=[ENV_INVENTORY],
                origin="environment",
            )
        expansion = expand(parse_sources(sources), options)
    except KdgenError as err:
        return Outcome(stderr=problem_lines(getattr(err, "problems", ())), exit_code=1)
    return Outcome(
        stdout=render_stream(expansion.objects), stderr=problem_lines(expansion.warnings)
    )
