"""The ``kdgen`` command line: the edge where files, flags and exit codes live.

Exit codes:

====  ==========================================================================
0     success (``check``: the committed files match)
1     the input has problems (each printed on one line), or ``check`` found drift
2     usage error: unknown option, missing argument, bad value
====  ==========================================================================

Problems are printed to stderr as ``error: <file>#<doc>: <resource>: <field>: <message>
[<Kuscia reason>]``; warnings the same way with ``warning:``. Nothing is written unless the
whole run succeeds.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, ClassVar, ParamSpec, TypeVar

import click

from kdgen import __version__
from kdgen.errors import KdgenError, Problem, problem_lines
from kdgen.expand import expand
from kdgen.load import Inputs, parse_sources
from kdgen.model import Options, PortMode, Profile
from kdgen.pinning import pin_ports
from kdgen.render import MARKER, render_stream, render_tree, tree_diff, unified_diff
from kdgen.sources import read_sources

P = ParamSpec("P")
R = TypeVar("R")


class ProblemsFound(click.ClickException):
    """Exit 1 after the problems have been printed."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        """Print nothing more: the problems are already on stderr."""


def report(problems: Iterable[Problem]) -> None:
    """Print problems to stderr, one line each."""
    click.echo(problem_lines(problems), err=True, nl=False)


def handles_problems(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a KdgenError raised by ``command`` into printed problems and exit status 1."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KdgenError as err:
            problems = getattr(err, "problems", None)
            if problems:
                report(problems)
            else:
                click.echo(f"error: {err}", err=True)
            raise ProblemsFound("") from err

    return wrapper


def _options(profile: str, ports: str) -> Options:
    return Options(profile=Profile(profile), ports=PortMode(ports))


def load_inputs(paths: Sequence[str], inventory: str | None) -> Inputs:
    """Read and file every input (and the ``--inventory`` file, if given)."""
    all_paths = [*paths, *([inventory] if inventory else [])]
    return parse_sources(read_sources(all_paths, stdin=sys.stdin))


def generation_options(command: Callable[P, R]) -> Callable[P, R]:
    """Add the options every generating command shares."""
    for option in reversed(
        [
            click.argument("paths", nargs=-1, required=True, metavar="PATH..."),
            click.option(
                "--profile",
                type=click.Choice([p.value for p in Profile]),
                default=Profile.KUSCIA.value,
                show_default=True,
                help="kuscia: as Kuscia's controller makes them; plain: for plain Kubernetes.",
            ),
            click.option(
                "--ports",
                type=click.Choice([m.value for m in PortMode]),
                default=PortMode.DECLARED.value,
                show_default=True,
                help="declared: the AppImage's port numbers; allocated: deterministic "
                "numbers in 20000-32766 (or the KD's allocated-ports annotation).",
            ),
            click.option(
                "--inventory",
                type=click.Path(dir_okay=False),
                help="Inventory file with cluster facts (partner domains, KD uids, taken ports).",
            ),
        ]
    ):
        command = option(command)
    return command


class LazyGroup(click.Group):
    """A group whose heavier commands are imported only when called.

    ``status-sync`` pulls in the kubernetes client; ``generate`` should not pay for that.
    """

    LAZY: ClassVar[dict[str, str]] = {
        "status-sync": "kdgen.sync_cli:status_sync",
        "plugin": "kdgen.plugin_cli:plugin",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        """List eager and lazy commands together, sorted."""
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the command, importing it first if it is a lazy one."""
        target = self.LAZY.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kdgen")
def main() -> None:
    """Expand Kuscia KusciaDeployments into per-domain Kubernetes manifests.

    PATH is a file, a directory (its *.yaml, *.yml and *.json files) or - for stdin, holding
    KusciaDeployment, AppImage and (optionally) Inventory documents.
    """


@main.command()
@generation_options
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    help="Write a tree (one kustomization folder per domain) instead of a stream on stdout.",
)
@handles_problems
def generate(
    paths: tuple[str, ...], profile: str, ports: str, inventory: str | None, output_dir: str | None
) -> None:
    """Write the Deployments, Services and ConfigMaps for every self party."""
    expansion = expand(load_inputs(paths, inventory), _options(profile, ports))
    report(expansion.warnings)
    if output_dir:
        write_tree(Path(output_dir), render_tree(expansion.manifests))
    else:
        click.echo(render_stream(expansion.manifests), nl=False)


@main.command(name="validate")
@generation_options
@handles_problems
def validate_command(
    paths: tuple[str, ...], profile: str, ports: str, inventory: str | None
) -> None:
    """Check the inputs (schemas, Kuscia's rules, everything generate checks); write nothing."""
    expansion = expand(load_inputs(paths, inventory), _options(profile, ports))
    report(expansion.warnings)
    click.echo(
        f"ok: {len(expansion.kusciadeployments)} KusciaDeployment(s), "
        f"{len(expansion.manifests)} object(s)",
        err=True,
    )


@main.command()
@generation_options
@click.option(
    "--golden",
    required=True,
    type=click.Path(),
    help="The committed output: a YAML stream file, or a tree written by --output-dir.",
)
@click.option("--update", is_flag=True, help="Rewrite the committed output instead of comparing.")
@handles_problems
def check(
    paths: tuple[str, ...],
    profile: str,
    ports: str,
    inventory: str | None,
    golden: str,
    update: bool,
) -> None:
    """Regenerate and compare with committed output; exit 1 with a diff when they differ."""
    expansion = expand(load_inputs(paths, inventory), _options(profile, ports))
    report(expansion.warnings)
    target = Path(golden)
    as_tree = target.is_dir() or (not target.exists() and not target.suffix)
    if update:
        if as_tree:
            write_tree(target, render_tree(expansion.manifests))
        else:
            write_atomically(target, render_stream(expansion.manifests))
        click.echo(f"updated {target}", err=True)
        return
    if as_tree:
        diff = tree_diff(read_tree(target), render_tree(expansion.manifests))
    else:
        committed = target.read_text(encoding="utf-8") if target.exists() else ""
        diff = unified_diff(committed, render_stream(expansion.manifests), name=str(target))
    if diff:
        click.echo(diff, nl=False)
        click.echo(f"error: {target} is out of date; run with --update to rewrite it", err=True)
        raise ProblemsFound("")


@main.command(name="pin-ports")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--inventory", type=click.Path(dir_okay=False), help="Inventory file.")
@handles_problems
def pin_ports_command(paths: tuple[str, ...], inventory: str | None) -> None:
    """Write each KD's allocated ports into its file as the allocated-ports annotation.

    Later runs with --ports allocated (and a Kuscia controller) then reuse these numbers, so
    adding a KD never moves another one's ports. Comments and formatting are kept.
    """
    if "-" in paths:
        raise click.UsageError("pin-ports rewrites files in place, so it cannot read stdin")
    expansion = expand(load_inputs(paths, inventory), Options(ports=PortMode.ALLOCATED))
    report(expansion.warnings)
    changes: dict[str, str] = {}
    for source in sorted({kd.source for kd in expansion.kusciadeployments}):
        text = Path(source).read_text(encoding="utf-8")
        pinned = pin_ports(text, expansion.allocated_ports)
        if pinned != text:
            changes[source] = pinned
    for source, text in changes.items():
        write_atomically(Path(source), text)
        click.echo(f"pinned {source}", err=True)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_tree(root: Path) -> dict[str, str]:
    """Read every file under ``root`` into ``{relative path: text}``."""
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write_tree(root: Path, files: dict[str, str]) -> None:
    """Replace the tree at ``root`` by ``files``, refusing to touch a folder kdgen did not write.

    The new tree is written beside the old one and swapped in, so a failure never leaves a
    half-written tree behind.
    """
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise click.UsageError(
            f"refusing to replace {root}: it is not empty and was not written by kdgen"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        for relative, text in files.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if root.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old.", dir=root.parent))
            old.rmdir()
            root.rename(old)
            staging.rename(root)
            shutil.rmtree(old)
        else:
            staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
