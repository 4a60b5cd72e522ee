"""The committed examples, run with the real tools they are written for.

Each example must give what ``kdgen generate examples/secretflow-serving`` gives: the README
quotes these files, so a broken example is a broken instruction.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdgen.render import sort_manifests
from tests.integrations.paths import (
    EXAMPLE,
    PLUGINS,
    REPO,
    VENV_BIN,
    kustomize,
    made_objects,
    run,
    stream_objects,
    tool_env,
    tree_objects,
)

EXAMPLES = REPO / "examples"
FLUX_TREE = EXAMPLES / "flux" / "rendered"
COMMAND_PREFIX = "#   "


def documented_command(example: Path, number: int = 0) -> tuple[dict[str, str], list[str]]:
    """The command an example's header shows (``#   VAR=value cmd args``), ready to run.

    The README quotes these lines, so running them here keeps its instructions honest.
    ``$PWD`` is the repository root, where the commands are meant to be typed.
    """
    lines = example.read_text().splitlines()
    line = [x[len(COMMAND_PREFIX) :] for x in lines if x.startswith(COMMAND_PREFIX)][number]
    words = shlex.split(line.replace("$PWD", str(REPO)))
    env = {}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


pytestmark = pytest.mark.tools


@pytest.fixture(scope="module")
def cli_objects() -> list[dict[str, Any]]:
    done = run(["kdgen", "generate", str(EXAMPLE)], cwd=REPO, env=tool_env())
    assert done.returncode == 0, done.stderr
    return stream_objects(done.stdout)


def test_kustomize_krm_example(cli_objects: list[dict[str, Any]]) -> None:
    argv = [
        kustomize(),
        "build",
        "--enable-alpha-plugins",
        "--enable-exec",
        "examples/kustomize/krm",
    ]
    done = run(argv, cwd=REPO, env=tool_env())
    assert done.returncode == 0, done.stderr
    assert sort_manifests(stream_objects(done.stdout)) == cli_objects


@pytest.mark.parametrize("kustomize_command", ["kustomize", "kubectl"])
def test_kustomize_legacy_exec_example(
    kustomize_command: str, cli_objects: list[dict[str, Any]]
) -> None:
    command = (
        [kustomize(), "build"] if kustomize_command == "kustomize" else ["kubectl", "kustomize"]
    )
    argv = [*command, "--enable-alpha-plugins", "examples/kustomize/legacy-exec"]
    done = run(argv, cwd=REPO, env=tool_env(KUSTOMIZE_PLUGIN_HOME=str(PLUGINS)))
    assert done.returncode == 0, done.stderr
    assert sort_manifests(stream_objects(done.stdout)) == cli_objects


def test_kubectl_kustomize_cannot_run_exec_functions() -> None:
    """kubectl's built-in kustomize has no --enable-exec and skips the function silently.

    The README says so; this test notices when a kubectl release changes that.
    """
    done = run(
        ["kubectl", "kustomize", "--enable-alpha-plugins", "examples/kustomize/krm"],
        cwd=REPO,
        env=tool_env(),
    )
    assert (done.returncode, done.stdout) == (0, "")
    flags = run(["kubectl", "kustomize", "--help"], cwd=REPO, env=tool_env()).stdout
    assert "--enable-exec" not in flags


def test_kpt_render_example_is_idempotent_and_prunes(
    tmp_path: Path, cli_objects: list[dict[str, Any]]
) -> None:
    package = tmp_path / "package"
    package.mkdir()
    shutil.copy(EXAMPLES / "kpt" / "Kptfile", package)
    for source in EXAMPLE.glob("*.yaml"):
        shutil.copy(source, package)
    _, render = documented_command(EXAMPLES / "kpt" / "Kptfile")
    assert render[:4] == ["kpt", "fn", "render", "examples/kpt"]
    render[3] = str(package)

    first = run(render, cwd=tmp_path, env=tool_env())
    assert first.returncode == 0, first.stderr
    # The package's own KD and AppImage files are the sources; kdgen adds no second copy.
    assert sort_manifests(tree_objects(package)) == made_objects(cli_objects)
    files = {p: p.read_bytes() for p in package.rglob("*") if p.is_file()}

    again = run(render, cwd=tmp_path, env=tool_env())
    assert again.returncode == 0, again.stderr
    assert {p: p.read_bytes() for p in package.rglob("*") if p.is_file()} == files

    (package / "secretflow-serving.yaml").unlink()
    pruned = run(render, cwd=tmp_path, env=tool_env())
    assert pruned.returncode == 0, pruned.stderr
    assert tree_objects(package) == []


def test_kpt_eval_example(tmp_path: Path, cli_objects: list[dict[str, Any]]) -> None:
    package = tmp_path / "package"
    shutil.copytree(EXAMPLE, package)
    _, argv = documented_command(EXAMPLES / "kpt" / "Kptfile", 1)
    assert argv[:4] == ["kpt", "fn", "eval", "examples/kpt"]
    argv[3] = str(package)

    done = run(argv, cwd=REPO, env=tool_env())

    assert done.returncode == 0, done.stderr
    plain = run(["kdgen", "generate", str(EXAMPLE), "--profile", "plain"], cwd=REPO, env=tool_env())
    assert sort_manifests(tree_objects(package)) == made_objects(stream_objects(plain.stdout))
    assert made_objects(stream_objects(plain.stdout)) != made_objects(cli_objects)


def test_flux_tree_is_current() -> None:
    """CI's golden diff, on the tree the Flux example applies."""
    done = run(
        ["kdgen", "check", str(EXAMPLE), "--golden", str(FLUX_TREE)], cwd=REPO, env=tool_env()
    )
    assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr


def test_flux_tree_command_writes_the_committed_tree(tmp_path: Path) -> None:
    env, argv = documented_command(EXAMPLES / "flux" / "kustomizations.yaml")
    shutil.copytree(EXAMPLE, tmp_path / "examples" / "secretflow-serving")
    done = run(argv, cwd=tmp_path, env=tool_env(**env))
    assert done.returncode == 0, done.stderr
    written = tmp_path / "examples" / "flux" / "rendered"
    files = sorted(p.relative_to(written) for p in written.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(FLUX_TREE) for p in FLUX_TREE.rglob("*") if p.is_file())
    assert all((written / f).read_bytes() == (FLUX_TREE / f).read_bytes() for f in files)


def test_every_flux_folder_builds_with_kustomize(cli_objects: list[dict[str, Any]]) -> None:
    folders = sorted(p.parent for p in FLUX_TREE.rglob("kustomization.yaml"))
    built = {}
    for folder in folders:
        done = run([kustomize(), "build", str(folder)], cwd=REPO, env=tool_env())
        assert done.returncode == 0, done.stderr
        built[folder.name] = stream_objects(done.stdout)
    folder_names = [name for name in built if name != FLUX_TREE.name]
    assert folder_names == ["alice", "bob", "cross-domain"]
    assert sort_manifests(built[FLUX_TREE.name]) == cli_objects
    for domain in ("alice", "bob"):
        assert {obj["metadata"]["namespace"] for obj in built[domain]} == {domain}
    assert {obj["kind"] for obj in built["cross-domain"]} == {"AppImage", "KusciaDeployment"}
    assert sort_manifests(obj for d in folder_names for obj in built[d]) == cli_objects


def test_flux_kustomizations_cover_every_folder_and_prune() -> None:
    documents = list(yaml.safe_load_all((EXAMPLES / "flux" / "kustomizations.yaml").read_text()))
    assert {(d["apiVersion"], d["kind"]) for d in documents} == {
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    }
    assert all(d["spec"]["prune"] is True for d in documents)
    paths = sorted((REPO / d["spec"]["path"]).resolve() for d in documents)
    folders = sorted(p for p in FLUX_TREE.iterdir() if p.is_dir())
    assert set(folders) <= set(paths)
    assert all((p / "kustomization.yaml").is_file() for p in paths)


def test_kubectl_plugin_example(cli_objects: list[dict[str, Any]]) -> None:
    done = run([str(EXAMPLES / "kubectl" / "commands.sh")], cwd=REPO, env=tool_env())
    assert done.returncode == 0, done.stderr
    listing, _, stream = done.stdout.partition("---\n")
    assert str(VENV_BIN / "kubectl-kdgen") in listing
    assert stream_objects("---\n" + stream) == cli_objects


def test_argocd_configmap_command_carries_the_plugin_config() -> None:
    env, argv = documented_command(EXAMPLES / "argocd" / "repo-server-sidecar.yaml")
    done = run([*argv, "--dry-run=client", "-o", "yaml"], cwd=REPO, env=tool_env(**env))
    assert done.returncode == 0, done.stderr
    configmap = yaml.safe_load(done.stdout)
    assert (configmap["metadata"]["name"], configmap["metadata"]["namespace"]) == (
        "kdgen-cmp",
        "argocd",
    )
    assert configmap["data"] == {"plugin.yaml": (PLUGINS / "argocd" / "plugin.yaml").read_text()}


def test_kubectl_plugin_usage_errors_exit_2() -> None:
    done = run(["kubectl", "kdgen", "generate"], cwd=REPO, env=tool_env())
    assert done.returncode == 2
    assert "Missing argument" in done.stderr
