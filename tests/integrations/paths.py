"""Every way a tool runs kdgen, set up in a temporary directory and run for real.

A ``Case`` is one set of inputs (the serving example's KD and AppImage, maybe an Inventory)
and options. ``PATHS`` maps a path id to a function that lays the case out the way that tool
expects (a kustomization, a kpt package, an Argo CD app directory...), runs the tool or the
exact protocol it speaks, and returns a ``Run``: what came out as objects, the raw output, the
problems in the path's own error format, and the exit status.

The KD and AppImage always sit in ``<tmp>/app`` and the Inventory (if any) in
``<tmp>/inventory.yaml``, so problems name the same files (up to the relative prefix each tool
uses) on every path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kdgen.adapters.krm import PATH_ANNOTATION
from kdgen.errors import Problem
from kdgen.render import tree_path
from tests.support.cluster import ensure_binaries

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "secretflow-serving"
KD_FILE = "secretflow-serving.yaml"
IMAGE_FILE = "secretflow-serving-image.yaml"
PLUGINS = REPO / "plugins"
KRM_SHIM = PLUGINS / "krm" / "kdgen-krm"
LEGACY_SHIM = PLUGINS / "kuscia.secretflow" / "v1alpha1" / "kusciadeployment" / "KusciaDeployment"
ARGOCD_PLUGIN = PLUGINS / "argocd" / "plugin.yaml"
VENV_BIN = Path(sys.executable).parent
DATA = Path(__file__).parent / "data"
_LOCATION = re.compile(
    r"^(?P<severity>error|warning): (?:(?P<location>[^:]*#\d+|[^\s:]+): )?(?P<rest>.*)$"
)


@dataclass(frozen=True)
class Case:
    """One input set and the options every path is given."""

    id: str
    profile: str = "kuscia"
    ports: str = "declared"
    inventory: bool = False
    broken: bool = False


@dataclass
class Run:
    """What one path produced."""

    exit_code: int
    objects: list[dict[str, Any]] = field(default_factory=list)
    raw: str = ""
    problem_lines: list[str] = field(default_factory=list)
    """Problems as ``<severity>: <location>: <rest>`` lines, whatever the path's format."""
    stderr: str = ""


def tool_env(**extra: str) -> dict[str, str]:
    """A clean environment whose PATH finds kdgen (this venv), kubectl, kpt and sh."""
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    kpt = shutil.which("kpt") or "/usr/bin/kpt"
    dirs = [str(VENV_BIN), os.path.dirname(kubectl), os.path.dirname(kpt), "/usr/bin", "/bin"]
    env = {"PATH": os.pathsep.join(dict.fromkeys(dirs)), "LANG": "C.UTF-8"}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    env.update(extra)
    return env


def kustomize() -> str:
    """The standalone kustomize binary built by scripts/build-test-cluster ($KDGEN_TEST_BIN)."""
    return str(ensure_binaries() / "kustomize")


def run(argv: list[str], *, cwd: Path, env: dict[str, str], stdin: str = "") -> Any:
    return subprocess.run(
        argv, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=False
    )


# --------------------------------------------------------------------------------------------
# Laying out a case


def lay_out(case: Case, root: Path) -> Path:
    """Copy the case's inputs to ``root/app`` (and ``root/inventory.yaml``); return app.

    ``root`` is made a checkout (it holds ``.git``), as a GitOps folder is: the plugins read
    files beside the app folder only inside the checkout (``kdgen.confine``).
    """
    app = root / "app"
    app.mkdir(parents=True)
    (root / ".git").mkdir(exist_ok=True)
    for name in (KD_FILE, IMAGE_FILE):
        text = (EXAMPLE / name).read_text(encoding="utf-8")
        if case.broken:
            text = _break(name, text)
        (app / name).write_text(text, encoding="utf-8")
    if case.inventory:
        shutil.copy(DATA / "inventory.yaml", root / "inventory.yaml")
    return app


def _break(name: str, text: str) -> str:
    """Two problems in two files: an unknown AppImage field, an initiator that is no party."""
    if name == IMAGE_FILE:
        return text.replace("  deployTemplates:\n", "  deployTemplate: {}\n  deployTemplates:\n", 1)
    return text.replace("initiator: alice", "initiator: carol", 1)


def cli_args(case: Case, inventory: str) -> list[str]:
    args = ["--profile", case.profile, "--ports", case.ports]
    return [*args, "--inventory", inventory] if case.inventory else args


# --------------------------------------------------------------------------------------------
# Reading outputs


def stream_objects(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def stderr_problems(stderr: str) -> list[str]:
    """The problem lines in a tool's stderr.

    kubectl indents a plugin's stderr with a tab; kustomize puts ``Error: `` before the first.
    """
    lines = (line.strip().removeprefix("Error: ") for line in stderr.splitlines())
    return [line for line in lines if _LOCATION.match(line)]


def split_problem(line: str) -> tuple[str, str, str]:
    """``(severity, location, rest)`` of a problem line."""
    found = _LOCATION.match(line)
    assert found, line
    return found["severity"], found["location"] or "", found["rest"]


def result_line(entry: dict[str, Any]) -> str:
    """A KRM ``results[]`` entry written back as the CLI's problem line."""
    ref = entry.get("resourceRef") or {}
    name = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else ref.get("name", "")
    file = entry.get("file") or {}
    problem = Problem(
        entry["message"],
        source=file.get("path", ""),
        doc_index=file.get("index", 0) + 1 if file else 0,
        resource=f"{ref['kind']} {name}" if ref else "",
        field=(entry.get("field") or {}).get("path", ""),
        reason=(entry.get("tags") or {}).get("reason", ""),
        severity=entry["severity"],
    )
    return f"{problem.severity}: {problem}"


def made_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects made from the KDs: without the KDs and AppImages kdgen emits first."""
    return [obj for obj in objects if obj.get("kind") not in {"KusciaDeployment", "AppImage"}]


def tree_objects(root: Path, *, sources: bool = False) -> list[dict[str, Any]]:
    """Every object kpt wrote into a package, except the inputs and the Kptfile.

    With ``sources``, the package's KDs and AppImages instead (the inputs, and any copy of
    them a function added).
    """
    objects = []
    for path in sorted(root.rglob("*.yaml")):
        for obj in stream_objects(path.read_text(encoding="utf-8")):
            kind = obj.get("kind")
            if kind in {"Inventory", "Kptfile"}:
                continue
            if (kind in {"KusciaDeployment", "AppImage"}) == sources:
                objects.append(obj)
    return objects


# --------------------------------------------------------------------------------------------
# The paths


def path_cli(case: Case, root: Path) -> Run:
    app = lay_out(case, root)
    done = run(
        ["kdgen", "generate", ".", *cli_args(case, "../inventory.yaml")], cwd=app, env=tool_env()
    )
    return _stream_run(done)


def path_kubectl_plugin(case: Case, root: Path) -> Run:
    app = lay_out(case, root)
    argv = ["kubectl", "kdgen", "generate", ".", *cli_args(case, "../inventory.yaml")]
    return _stream_run(run(argv, cwd=app, env=tool_env()))


def path_argocd_cmp(case: Case, root: Path) -> Run:
    """Run plugin.yaml's generate command as Argo CD's CMP server does (see test_argocd)."""
    app = lay_out(case, root)
    env = tool_env(
        ARGOCD_APP_NAME="secretflow-serving",
        ARGOCD_APP_NAMESPACE="argocd",
        ARGOCD_APP_SOURCE_PATH="app",
        ARGOCD_ENV_KDGEN_PROFILE=case.profile,
        ARGOCD_ENV_KDGEN_PORTS=case.ports,
    )
    if case.inventory:
        env["ARGOCD_ENV_KDGEN_INVENTORY"] = "../inventory.yaml"
    return _stream_run(run(argocd_generate_argv(), cwd=app, env=env))


def argocd_generate_argv() -> list[str]:
    spec = yaml.safe_load(ARGOCD_PLUGIN.read_text(encoding="utf-8"))["spec"]["generate"]
    return [*spec["command"], *spec.get("args", [])]


def resource_list(case: Case, files: list[str]) -> str:
    config = {
        "apiVersion": "kdgen.kuscia.secretflow/v1alpha1",
        "kind": "KusciaDeploymentGenerator",
        "metadata": {"name": "secretflow-serving"},
        "spec": {"profile": case.profile, "ports": case.ports, "files": files},
    }
    body = {
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": [],
        "functionConfig": config,
    }
    return yaml.safe_dump(body, sort_keys=False)


def path_krm_protocol(case: Case, root: Path) -> Run:
    """The shim, given a ResourceList on stdin as kustomize would write it."""
    app = lay_out(case, root)
    files = [".", *(["../inventory.yaml"] if case.inventory else [])]
    done = run([str(KRM_SHIM)], cwd=app, env=tool_env(), stdin=resource_list(case, files))
    body = yaml.safe_load(done.stdout)
    objects = []
    for item in body["items"]:
        annotations = item["metadata"]["annotations"]
        # The one annotation the function adds for kpt: the file, as the --output-dir tree has it.
        assert annotations.pop(PATH_ANNOTATION) == tree_path(item)
        if not annotations:
            del item["metadata"]["annotations"]
        objects.append(item)
    lines = [result_line(entry) for entry in body.get("results") or []]
    assert stderr_problems(done.stderr) == lines, "stderr repeats the results"
    return Run(done.returncode, objects, done.stdout, lines, done.stderr)


def kustomization_krm(case: Case, root: Path) -> Path:
    lay_out(case, root)
    folder = root / "kustomize-krm"
    folder.mkdir()
    shutil.copy(REPO / "examples" / "kustomize" / "krm" / "kustomization.yaml", folder)
    config = yaml.safe_load((REPO / "examples" / "kustomize" / "krm" / "kdgen.yaml").read_text())
    function = config["metadata"]["annotations"]["config.kubernetes.io/function"]
    config["metadata"]["annotations"]["config.kubernetes.io/function"] = function.replace(
        "../../../plugins/krm/kdgen-krm", str(KRM_SHIM)
    )
    assert str(KRM_SHIM) in config["metadata"]["annotations"]["config.kubernetes.io/function"]
    config["spec"] = {
        "profile": case.profile,
        "ports": case.ports,
        "files": ["../app", *(["../inventory.yaml"] if case.inventory else [])],
    }
    (folder / "kdgen.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def path_krm_kustomize(case: Case, root: Path) -> Run:
    folder = kustomization_krm(case, root)
    argv = [kustomize(), "build", "--enable-alpha-plugins", "--enable-exec", "."]
    return _stream_run(run(argv, cwd=folder, env=tool_env()))


def kpt_package(case: Case, root: Path) -> Path:
    app = lay_out(case, root)
    if case.inventory:
        shutil.copy(root / "inventory.yaml", app / "inventory.yaml")
    return app


def path_krm_kpt_eval(case: Case, root: Path) -> Run:
    package = kpt_package(case, root)
    before = _snapshot(package)
    results = root / "results"
    argv = ["kpt", "fn", "eval", str(package), "--exec", str(KRM_SHIM)]
    argv += ["--results-dir", str(results), "--", f"profile={case.profile}", f"ports={case.ports}"]
    return _kpt_run(run(argv, cwd=root, env=tool_env()), package, before, results)


def path_krm_kpt_render(case: Case, root: Path) -> Run:
    package = kpt_package(case, root)
    kptfile = yaml.safe_load((REPO / "examples" / "kpt" / "Kptfile").read_text())
    kptfile["pipeline"]["mutators"][0]["configMap"] = {"profile": case.profile, "ports": case.ports}
    (package / "Kptfile").write_text(yaml.safe_dump(kptfile, sort_keys=False))
    before = _snapshot(package)
    results = root / "results"
    argv = ["kpt", "fn", "render", str(package), "--allow-exec", "--results-dir", str(results)]
    return _kpt_run(run(argv, cwd=root, env=tool_env()), package, before, results)


def _kpt_run(done: Any, package: Path, before: dict[str, str], results: Path) -> Run:
    lines: list[str] = []
    for result_list in results.glob("*.yaml"):
        for item in yaml.safe_load(result_list.read_text()).get("items") or []:
            lines.extend(result_line(entry) for entry in item.get("results") or [])
    if done.returncode != 0:
        assert _snapshot(package) == before, "kpt changed the package although the function failed"
    return Run(done.returncode, tree_objects(package), "", lines, done.stderr)


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def legacy_config(case: Case, root: Path) -> Path:
    """The KD as the legacy plugin's generator config, in ``root/kustomize-legacy``."""
    app = lay_out(case, root)
    folder = root / "kustomize-legacy"
    folder.mkdir()
    inputs = [f"../app/{IMAGE_FILE}", *(["../inventory.yaml"] if case.inventory else [])]
    kd = (app / KD_FILE).read_text(encoding="utf-8")
    annotations = (
        "  annotations:\n"
        f"    kdgen.kuscia.secretflow/inputs: {','.join(inputs)}\n"
        f"    kdgen.kuscia.secretflow/profile: {case.profile}\n"
        f"    kdgen.kuscia.secretflow/ports: {case.ports}\n"
    )
    (folder / KD_FILE).write_text(kd.replace("metadata:\n", "metadata:\n" + annotations, 1))
    (folder / "kustomization.yaml").write_text(
        (REPO / "examples" / "kustomize" / "legacy-exec" / "kustomization.yaml").read_text()
    )
    return folder


def path_legacy_protocol(case: Case, root: Path) -> Run:
    """The shim, run as kustomize's execplugin runs it: config file as argv[1], cwd the folder."""
    folder = legacy_config(case, root)
    config = root / "kust-plugin-config-123"
    config.write_text((folder / KD_FILE).read_text())
    env = tool_env(KUSTOMIZE_PLUGIN_CONFIG_ROOT=str(folder))
    return _stream_run(run([str(LEGACY_SHIM), str(config)], cwd=folder, env=env))


def path_legacy_kustomize(case: Case, root: Path) -> Run:
    folder = legacy_config(case, root)
    env = tool_env(KUSTOMIZE_PLUGIN_HOME=str(PLUGINS))
    argv = [kustomize(), "build", "--enable-alpha-plugins", "."]
    return _stream_run(run(argv, cwd=folder, env=env))


def path_legacy_kubectl_kustomize(case: Case, root: Path) -> Run:
    folder = legacy_config(case, root)
    env = tool_env(KUSTOMIZE_PLUGIN_HOME=str(PLUGINS))
    argv = ["kubectl", "kustomize", "--enable-alpha-plugins", "."]
    return _stream_run(run(argv, cwd=folder, env=env))


def path_flux_tree(case: Case, root: Path) -> Run:
    """``kdgen generate --output-dir``, then kustomize (as Flux does) on every domain folder."""
    app = lay_out(case, root)
    tree = root / "rendered"
    argv = ["kdgen", "generate", ".", *cli_args(case, "../inventory.yaml"), "-o", str(tree)]
    done = run(argv, cwd=app, env=tool_env())
    if done.returncode != 0:
        assert not tree.exists(), "a failed run left a tree behind"
        return Run(done.returncode, [], done.stdout, stderr_problems(done.stderr), done.stderr)
    objects = []
    for folder in sorted(p for p in tree.iterdir() if p.is_dir()):
        built = run([kustomize(), "build", str(folder)], cwd=root, env=tool_env())
        assert built.returncode == 0, built.stderr
        objects.extend(stream_objects(built.stdout))
    return Run(0, objects, done.stdout, stderr_problems(done.stderr), done.stderr)


def _stream_run(done: Any) -> Run:
    objects = stream_objects(done.stdout)
    return Run(done.returncode, objects, done.stdout, stderr_problems(done.stderr), done.stderr)


PATHS: dict[str, Callable[[Case, Path], Run]] = {
    "cli": path_cli,
    "kubectl-plugin": path_kubectl_plugin,
    "argocd-cmp": path_argocd_cmp,
    "krm-protocol": path_krm_protocol,
    "krm-kustomize": path_krm_kustomize,
    "krm-kpt-eval": path_krm_kpt_eval,
    "krm-kpt-render": path_krm_kpt_render,
    "legacy-exec-protocol": path_legacy_protocol,
    "legacy-exec-kustomize": path_legacy_kustomize,
    "legacy-exec-kubectl-kustomize": path_legacy_kubectl_kustomize,
    "flux-tree": path_flux_tree,
}
STREAM_PATHS = {"cli", "kubectl-plugin", "argocd-cmp", "legacy-exec-protocol"}
"""Paths whose stdout is kdgen's own stream, which must match the CLI byte for byte."""
