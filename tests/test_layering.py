"""The pure pipeline stays pure (ARCHITECTURE.md): no click, no kubernetes, no I/O, no clock.

Two checks. Statically, every pure module's imports and calls are read from its source: it may
import only the standard library's pure parts, a few data libraries and other pure modules.
Dynamically, a fresh interpreter imports the pure entry points and must not have loaded click,
the kubernetes client or any I/O module of kdgen.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

KDGEN = Path(__file__).resolve().parent.parent / "kdgen"

PURE = (
    "appconfig",
    "bounds",
    "configrender",
    "crds",
    "emit",
    "errors",
    "expand",
    "gostrconv",
    "jsontext",
    "kusciamessages",
    "limits",
    "liveimport",
    "load",
    "manifests",
    "model",
    "naming",
    "parties",
    "pinning",
    "plan",
    "ports",
    "render",
    "schemas",
    "sourceobjects",
    "status",
    "validate",
    "yamlio",
)
"""Modules (``kdgen.<name>``) that decide what the objects are: ARCHITECTURE.md's pure set."""

IO_MODULES = (
    "kdgen.cli",
    "kdgen.confine",
    "kdgen.sources",
    "kdgen.sync_cli",
    "kdgen.plugin_cli",
    "kdgen.writing",
)
IO_PACKAGES = ("kdgen.adapters", "kdgen.controller", "tests")

FORBIDDEN_IMPORTS = (
    "click",
    "kubernetes",
    "urllib3",
    "prometheus_client",
    "os",
    "pathlib",
    "shutil",
    "tempfile",
    "subprocess",
    "socket",
    "http",
    "urllib",
    "time",
    "random",
    "secrets",
    "logging",
    "signal",
    "threading",
)
"""Top-level modules a pure module must not import: CLI, cluster, files, processes, clock."""

FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "breakpoint"}
CLOCK_ATTRIBUTES = {"now", "utcnow", "today", "fromtimestamp"}


def _source(name: str) -> Path:
    package = KDGEN / name / "__init__.py"
    return package if package.exists() else KDGEN / f"{name}.py"


def _imports(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def _is_io(module: str) -> bool:
    return module in IO_MODULES or any(
        module == p or module.startswith(p + ".") for p in IO_PACKAGES
    )


def _bad_imports(tree: ast.AST) -> list[str]:
    return [m for m in _imports(tree) if m.split(".")[0] in FORBIDDEN_IMPORTS or _is_io(m)]


def _bad_calls(tree: ast.AST) -> list[str]:
    bad: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            bad.append(f"{func.id}() at line {node.lineno}")
        if isinstance(func, ast.Attribute) and func.attr in CLOCK_ATTRIBUTES:
            bad.append(f".{func.attr}() at line {node.lineno}")
    return bad


def test_pure_set_names_real_modules() -> None:
    missing = [name for name in PURE if not _source(name).exists()]
    assert missing == []


@pytest.mark.parametrize("name", PURE)
def test_pure_module_imports_nothing_impure(name: str) -> None:
    tree = ast.parse(_source(name).read_text(encoding="utf-8"))
    assert _bad_imports(tree) == [], f"kdgen.{name} imports something impure"


@pytest.mark.parametrize("name", PURE)
def test_pure_module_calls_no_io_or_clock(name: str) -> None:
    tree = ast.parse(_source(name).read_text(encoding="utf-8"))
    assert _bad_calls(tree) == [], f"kdgen.{name} does I/O or reads the clock"


def test_checks_catch_an_impure_module() -> None:
    """The static checks themselves can fail: feed them a module that breaks every rule."""
    tree = ast.parse(
        "import click\nfrom kubernetes import client\nfrom kdgen.sources import read_sources\n"
        "import os.path\nimport datetime\nx = datetime.datetime.now()\nopen('f')\n"
    )
    assert _bad_imports(tree) == ["click", "kubernetes", "kdgen.sources", "os.path"]
    assert _bad_calls(tree) == [".now() at line 6", "open() at line 7"]


def test_importing_the_pipeline_loads_no_cli_cluster_or_io_module() -> None:
    """A fresh interpreter importing every pure module must not pull in click or kubernetes."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(PURE)!r}:\n"
        "    importlib.import_module('kdgen.' + name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)
    assert "kdgen.expand" in loaded  # the check ran against the real pipeline
    bad = [
        m
        for m in loaded
        if m.split(".")[0] in ("click", "kubernetes", "urllib3", "prometheus_client") or _is_io(m)
    ]
    assert bad == []


def test_cli_start_up_imports_no_pipeline_library() -> None:
    """``kdgen --version`` and ``--help`` load only click and kdgen's light modules.

    jsonschema, Jinja, ruamel and the kubernetes client are imported by the commands that use
    them (start-up was most of a small run's time).
    """
    heavy = ("jsonschema", "jinja2", "ruamel", "kubernetes", "prometheus_client")
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from kdgen.cli import main\n"
        "assert CliRunner().invoke(main, ['--version']).exit_code == 0\n"
        "assert CliRunner().invoke(main, ['--help']).exit_code == 0\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
