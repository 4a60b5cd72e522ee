"""``kdgen plugin``: the commands other tools run, each speaking that tool's protocol.

=====================  ==========================================================  ============
command                who runs it                                                 reads
=====================  ==========================================================  ============
``krm``                kustomize (exec KRM function), ``kpt fn eval``/``render``   stdin
``kustomize-exec``     kustomize, as the legacy exec plugin                        argv[1]
``argocd-generate``    Argo CD's CMP server (``plugins/argocd/plugin.yaml``)        cwd, env
=====================  ==========================================================  ============

Each command hands its input to an adapter in ``kdgen.adapters`` and writes what the adapter
returns: stdout, stderr, exit status (1 for bad input). Click's usage errors exit 2. The shims in
``plugins/`` only ``exec`` these commands.
"""

from __future__ import annotations

import os
import sys

import click

from kdgen.adapters import Outcome


def _finish(outcome: Outcome) -> None:
    sys.stdout.write(outcome.stdout)
    sys.stdout.flush()
    sys.stderr.write(outcome.stderr)
    sys.stderr.flush()
    if outcome.exit_code:
        sys.exit(outcome.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def plugin() -> None:
    """Run kdgen as a kustomize, kpt or Argo CD plugin (protocol in, protocol out)."""


@plugin.command()
def krm() -> None:
    """KRM function: read a ResourceList on stdin, write one on stdout."""
    from kdgen.adapters import krm as adapter
    from kdgen.errors import InputError
    from kdgen.sources import read_stdin

    try:
        text = read_stdin(sys.stdin)
    except InputError as err:
        _finish(adapter.rejected(err.problems))
        return
    _finish(adapter.process(text))


@plugin.command(name="kustomize-exec")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1)
def kustomize_exec(config: str, args: tuple[str, ...]) -> None:
    """Legacy kustomize exec plugin: CONFIG is the KusciaDeployment kustomize wrote.

    ARGS (from the config's argsOneLiner/argsFromFile) are not used.
    """
    from kdgen.adapters import kustomize_exec as adapter

    _finish(adapter.generate(config))


@plugin.command(name="argocd-generate")
def argocd_generate() -> None:
    """Argo CD CMP generate: the app in the working directory, ARGOCD_ENV_KDGEN_* options."""
    from kdgen.adapters import argocd_cmp as adapter

    _finish(adapter.generate(os.environ))
