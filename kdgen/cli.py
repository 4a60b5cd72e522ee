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
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar

import click

from kdgen import __version__
from kdgen.errors import (
    InputError,
    KdgenError,
    Problem,
    WriteRefused,
    escape_controls,
    problem_lines,
)
from kdgen.model import KIND_APP_IMAGE, KIND_KUSCIA_DEPLOYMENT, Options, PortMode, Profile

if TYPE_CHECKING:
    from kdgen.expand import Expansion
    from kdgen.load import Inputs, Source

# Start-up is part of every render (each Argo CD refresh, each kustomize build), so this module
# imports only click and kdgen's small modules. The pipeline, the YAML reader and writer, the
# file writers and pin-ports (ruamel) are imported by the commands that run them: `kdgen
# --version`, `--help` and the lazy subcommands start without them (tests/test_layering.py).


def expand(inputs: Inputs, options: Options | None = None) -> Expansion:
    """Run the pipeline (``kdgen.expand.expand``), imported on first use."""
    from kdgen.expand import expand as run

    return run(inputs, options)


def parse_sources(sources: Sequence[Source]) -> Inputs:
    """File the documents of ``sources`` (``kdgen.load.parse_sources``), imported on first use."""
    from kdgen.load import parse_sources as parse

    return parse(sources)


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
        except WriteRefused as err:
            raise click.UsageError(str(err)) from err
        except KdgenError as err:
            problems = getattr(err, "problems", None)
            if problems:
                report(problems)
            else:
                click.echo(f"error: {escape_controls(str(err))}", err=True)
            raise ProblemsFound("") from err

    return wrapper


def _options(profile: str, ports: str, include_sources: bool = True) -> Options:
    return Options(profile=Profile(profile), ports=PortMode(ports), include_sources=include_sources)


def load_inputs(paths: Sequence[str], inventory: str | None) -> Inputs:
    """Read and file every input (and the ``--inventory`` file, if given)."""
    return parse_sources(_read(paths, inventory))


def _read(paths: Sequence[str], inventory: str | None) -> list[Source]:
    from kdgen.sources import read_sources

    all_paths = [*paths, *([inventory] if inventory is not None else [])]
    return read_sources(all_paths, stdin=sys.stdin)


def _input_paths(
    paths: Sequence[str], inventory: str | None, sources: Sequence[Source]
) -> list[Path]:
    """Every file and folder the run read: outputs must never replace one."""
    named = [p for p in [*paths, *([inventory] if inventory else [])] if p and p != "-"]
    return [*map(Path, named), *(Path(s.name) for s in sources if s.name != "<stdin>")]


_STREAM_KINDS = (KIND_KUSCIA_DEPLOYMENT, KIND_APP_IMAGE)
"""Input kinds a generated stream may carry along beside the objects made from a KD."""


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
            click.option(
                "--include-sources/--no-include-sources",
                default=True,
                show_default=True,
                help="Also write the KusciaDeployments and AppImages themselves (cleaned of "
                "status and server-set fields), so a GitOps engine applies them too.",
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
    paths: tuple[str, ...],
    profile: str,
    ports: str,
    inventory: str | None,
    include_sources: bool,
    output_dir: str | None,
) -> None:
    """Write the KDs and AppImages, and the Deployments, Services and ConfigMaps of every party.

    The tree (--output-dir) has a cross-domain/ folder for the KDs and AppImages and one
    folder per domain namespace, each a kustomization.
    """
    from kdgen.render import iter_stream, render_tree

    sources = _read(paths, inventory)
    expansion = expand(parse_sources(sources), _options(profile, ports, include_sources))
    report(expansion.warnings)
    if output_dir is not None:
        from kdgen.writing import write_tree

        inputs = _input_paths(paths, inventory, sources)
        write_tree(_output_path(output_dir), render_tree(expansion.objects), inputs=inputs)
    else:
        # Every problem is known once expand returns, so building and writing each object
        # in turn cannot leave half a stream behind an error, and neither the objects nor
        # the text of the stream are ever held at once.
        for chunk in iter_stream(expansion.iter_objects()):
            click.echo(chunk, nl=False)


@main.command(name="validate")
@generation_options
@handles_problems
def validate_command(
    paths: tuple[str, ...], profile: str, ports: str, inventory: str | None, include_sources: bool
) -> None:
    """Check the inputs (schemas, Kuscia's rules, everything generate checks); write nothing."""
    expansion = expand(load_inputs(paths, inventory), _options(profile, ports, include_sources))
    report(expansion.warnings)
    click.echo(
        f"ok: {len(expansion.kusciadeployments)} KusciaDeployment(s), {expansion.count} object(s)",
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
    include_sources: bool,
    golden: str,
    update: bool,
) -> None:
    """Regenerate and compare with committed output; exit 1 with a diff when they differ.

    ``--update`` writes only a file or tree kdgen generated (or a new one), never an input.
    """
    from kdgen.render import render_stream, render_tree, tree_diff, unified_diff
    from kdgen.writing import (
        check_replaceable,
        is_generated_stream,
        read_tree,
        replace_file,
        write_tree,
    )

    sources = _read(paths, inventory)
    expansion = expand(parse_sources(sources), _options(profile, ports, include_sources))
    report(expansion.warnings)
    target = _output_path(golden)
    as_tree = target.is_dir() or (not target.exists() and not target.suffix)
    inputs = _input_paths(paths, inventory, sources)
    shown = escape_controls(str(target))
    if update:
        if as_tree:
            write_tree(target, render_tree(expansion.objects), inputs=inputs)
        else:
            check_replaceable(target, inputs=inputs)
            if target.exists() and not is_generated_stream(_read_golden(target), _STREAM_KINDS):
                raise WriteRefused(
                    f"refusing to update {shown}: it does not hold a stream kdgen generated"
                )
            replace_file(target, render_stream(expansion.objects), inputs=inputs)
        click.echo(f"updated {shown}", err=True)
        return
    if as_tree:
        diff = tree_diff(read_tree(target), render_tree(expansion.objects))
    else:
        committed = _read_golden(target) if target.exists() else ""
        diff = unified_diff(committed, render_stream(expansion.objects), name=str(target))
    if diff:
        click.echo(diff, nl=False)
        click.echo(f"error: {shown} is out of date; run with --update to rewrite it", err=True)
        raise ProblemsFound("")


def _output_path(name: str) -> Path:
    if not name:
        raise click.BadParameter("the path is empty")
    return Path(name)


def _read_golden(target: Path) -> str:
    from kdgen.sources import decode

    try:
        data = target.read_bytes()
    except OSError as err:
        problem = Problem(f"cannot read the golden file: {err.strerror}", source=str(target))
        raise InputError([problem]) from err
    return decode(data, str(target))


@main.command(name="pin-ports")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--inventory", type=click.Path(dir_okay=False), help="Inventory file.")
@handles_problems
def pin_ports_command(paths: tuple[str, ...], inventory: str | None) -> None:
    """Write each KD's allocated ports into its file as the allocated-ports annotation.

    Later runs with --ports allocated (and a Kuscia controller) then reuse these numbers, so
    adding a KD never moves another one's ports. Comments and formatting are kept.
    """
    from kdgen.pinning import CannotPin, pin_ports
    from kdgen.writing import check_replaceable, replace_file

    if "-" in paths:
        raise click.UsageError("pin-ports rewrites files in place, so it cannot read stdin")
    options = Options(ports=PortMode.ALLOCATED, include_sources=False)
    expansion = expand(load_inputs(paths, inventory), options)
    report(expansion.warnings)
    changes: dict[str, str] = {}
    problems: list[Problem] = []
    for source in sorted({kd.source for kd in expansion.kusciadeployments}):
        try:
            text = Path(source).read_bytes().decode("utf-8")
            pinned = pin_ports(text, expansion.allocated_ports)
        except (OSError, UnicodeDecodeError) as err:
            problems.append(Problem(f"cannot read the file again: {err}", source=source))
            continue
        except CannotPin as err:
            problems.append(Problem(str(err), source=source))
            continue
        if pinned != text:
            changes[source] = pinned
    if problems:
        raise InputError(problems)
    for source in changes:
        check_replaceable(Path(source), keep=True)
    for source, text in changes.items():
        replace_file(Path(source), text, keep=True)
        click.echo(f"pinned {escape_controls(source)}", err=True)


@main.command(name="import")
@click.argument("paths", nargs=-1, required=True, metavar="EXPORT...")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    help="Write one file per object (kusciadeployment-<name>.yaml, appimage-<name>.yaml) "
    "into this folder instead of a stream on stdout.",
)
@handles_problems
def import_command(paths: tuple[str, ...], output_dir: str | None) -> None:
    """Turn a live export (kubectl get kd,appimage -o yaml) into clean source files.

    Drops status, server-set metadata and tool annotations; keeps Kuscia's annotations (the
    allocated ports) and moves each KD's metadata.uid into the kdgen.kuscia.secretflow/kd-uid
    annotation, so the generated objects keep the labels and selectors Kuscia gave them. The
    result is checked as generate would check it; nothing is written if it has an error.
    """
    from kdgen.liveimport import import_live_export
    from kdgen.load import Source
    from kdgen.sources import read_sources
    from kdgen.writing import check_replaceable, replace_file
    from kdgen.yamlio import dump_document, dump_documents

    imported = import_live_export(read_sources(paths, stdin=sys.stdin))
    problems = list(imported.problems)
    texts = {name: dump_document(obj) for name, obj in imported.files.items()}
    if not any(p.severity == "error" for p in problems):
        where = Path(output_dir) if output_dir else Path()
        sources = [Source(str(where / name), text) for name, text in texts.items()]
        try:
            problems.extend(expand(parse_sources(sources)).warnings)
        except KdgenError as err:
            problems.extend(getattr(err, "problems", ()))
    report(problems)
    if any(p.severity == "error" for p in problems):
        raise ProblemsFound("")
    if not output_dir:
        click.echo(dump_documents(imported.files.values()), nl=False)
        return
    inputs = [Path(p) for p in paths if p != "-"]
    targets = {Path(output_dir) / name: text for name, text in texts.items()}
    for target, text in targets.items():
        check_replaceable(target, inputs=inputs)
        if target.exists() and target.read_bytes() != text.encode("utf-8"):
            raise WriteRefused(
                f"refusing to overwrite {escape_controls(str(target))}: it exists with other "
                "content; import into a new folder, or move it away first"
            )
    for target, text in targets.items():
        replace_file(target, text, inputs=inputs)
        click.echo(f"wrote {escape_controls(str(target))}", err=True)


@main.command(name="crds")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    help=(
        "Write each CRD's file and a kustomization.yaml into this folder (kdgen's own "
        "deploy/crds is made so) instead of a stream on stdout. Only files this command "
        "wrote are replaced."
    ),
)
@handles_problems
def crds_command(output_dir: str | None) -> None:
    """Print the KusciaDeployment and AppImage CRDs, for a cluster without Kuscia.

    They are rendered from the schemas packaged with kdgen (Kuscia's, workingDir required as
    Kuscia's CRD has it). Apply them with: kdgen crds | kubectl apply -f -
    """
    from kdgen.crds import GENERATED_HEADER, crd_files, crds
    from kdgen.writing import check_replaceable, replace_file
    from kdgen.yamlio import dump_documents

    if output_dir is None:
        click.echo(dump_documents(crds()), nl=False)
        return
    root = _output_path(output_dir)
    files = crd_files()
    for name in files:
        target = root / name
        check_replaceable(target)
        if target.exists() and not _starts_with(target, GENERATED_HEADER):
            raise WriteRefused(
                f"refusing to write {escape_controls(str(target))}: it was not written by "
                "kdgen crds (its first line is not the generated header)"
            )
    for name, text in files.items():
        replace_file(root / name, text)
    click.echo(f"wrote {len(files)} files to {escape_controls(str(root))}", err=True)


def _starts_with(target: Path, header: str) -> bool:
    try:
        data = target.read_bytes()
    except OSError as err:
        raise InputError([Problem(f"cannot read: {err.strerror}", source=str(target))]) from err
    return data.startswith(header.encode("utf-8"))
