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
====================  =============================  ==========================================

An empty value means the default. An inventory kept inside the application directory is read
once, as one of its files; naming it as well is harmless.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping

from kdgen.adapters import Outcome, read_options
from kdgen.errors import KdgenError, Problem, problem_lines
from kdgen.expand import expand
from kdgen.load import parse_sources
from kdgen.render import render_stream
from kdgen.sources import read_sources

ENV_PREFIX = "ARGOCD_ENV_"
ENV_PROFILE = "ARGOCD_ENV_KDGEN_PROFILE"
ENV_PORTS = "ARGOCD_ENV_KDGEN_PORTS"
ENV_INVENTORY = "ARGOCD_ENV_KDGEN_INVENTORY"


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
            at=lambda name: Problem(
                "", source="environment", field=f"{ENV_PREFIX}KDGEN_{name.upper()}"
            ),
        )
        sources = read_sources(["."], stdin=io.StringIO())
        if inventory and os.path.normpath(inventory) not in {s.name for s in sources}:
            sources += read_sources([inventory], stdin=io.StringIO())
        expansion = expand(parse_sources(sources), options)
    except KdgenError as err:
        return Outcome(stderr=problem_lines(getattr(err, "problems", ())), exit_code=1)
    return Outcome(
        stdout=render_stream(expansion.manifests), stderr=problem_lines(expansion.warnings)
    )
