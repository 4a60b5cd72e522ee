"""What ``pip install kdgen`` ships and needs: the light install of issue 11, item 4.

The generator, the plugins and pre-commit use only the base dependencies; the cluster client
and the Prometheus client come with the ``status-sync`` extra, and ``kdgen status-sync``
without them prints one line naming that extra. The test control plane is not in the package.
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
CLUSTER_CLIENTS = ("kubernetes", "prometheus")


def _names(requirements: list[str]) -> list[str]:
    return [r.split(">")[0].split("=")[0].split("[")[0].strip().lower() for r in requirements]


def test_base_install_has_no_cluster_client() -> None:
    base = _names(PYPROJECT["project"]["dependencies"])
    assert [n for n in base if n.startswith(CLUSTER_CLIENTS)] == []


def test_status_sync_extra_holds_the_cluster_clients_and_dev_pulls_it_in() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert sorted(_names(extras["status-sync"])) == ["kubernetes", "orjson", "prometheus-client"]
    assert "kdgen[status-sync]" in extras["dev"]


def test_the_test_control_plane_is_not_a_packaged_module() -> None:
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    # What setuptools' find_packages(include=...) picks: package folders matching a pattern.
    folders = (p.parent.relative_to(REPO) for p in REPO.rglob("__init__.py"))
    dotted = [".".join(f.parts) for f in folders if ".venv" not in f.parts]
    packages = [p for p in dotted if any(fnmatch.fnmatchcase(p, pat) for pat in include)]
    assert "kdgen" in packages
    assert [p for p in packages if not p.startswith("kdgen") or "testing" in p] == []
    assert (REPO / "tests" / "support" / "cluster.py").is_file()


def _run_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the kdgen CLI in a fresh interpreter where importing ``module`` fails."""
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # what an absent package looks like to import\n"
        "from kdgen.cli import main\n"
        f"main({list(args)!r}, prog_name='kdgen')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_status_sync_without_the_extra_says_so_in_one_line() -> None:
    for module in ("kubernetes", "prometheus_client"):
        done = _run_without(module, "status-sync", "--once")
        assert done.returncode == 1, done.stderr
        assert done.stdout == ""
        assert done.stderr.splitlines() == [
            f"Error: kdgen status-sync needs the status-sync extra ({module} is not installed): "
            "pip install 'kdgen[status-sync]'"
        ]


def test_usage_errors_still_exit_2_without_the_extra() -> None:
    done = _run_without("kubernetes", "status-sync", "--once", "--leader-election")
    assert done.returncode == 2
    assert "--leader-election needs --watch" in done.stderr


def test_generate_runs_without_the_extra() -> None:
    done = _run_without("kubernetes", "generate", str(REPO / "examples" / "secretflow-serving"))
    assert done.returncode == 0, done.stderr
    assert "kind: Deployment" in done.stdout
