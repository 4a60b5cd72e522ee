"""Argo CD: the CMP generate command run as the CMP server runs it, and the health Lua.

The CMP server (``cmpserver/plugin/plugin.go``) runs ``generate.command + generate.args`` with
the working directory set to the Application's path, its own environment plus the repo-server's
entries (``ARGOCD_APP_*`` and each ``plugin.env`` entry as ``ARGOCD_ENV_<name>``; entries with
an empty value are left out), and splits stdout as a YAML stream of objects. The health Lua runs
in Lua 5.1, the language of Argo CD's gopher-lua, on statuses computed by ``kdgen.status`` from
the observed-state fixtures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from kdgen.errors import Problem
from kdgen.status import compute_status
from tests.integrations.paths import (
    ARGOCD_PLUGIN,
    PLUGINS,
    REPO,
    Case,
    argocd_generate_argv,
    lay_out,
    path_cli,
    run,
    stream_objects,
    tool_env,
)

HEALTH_LUA = PLUGINS / "argocd" / "health.lua"
OBSERVED = REPO / "tests" / "fixtures" / "observed"
APPLICATION = REPO / "examples" / "argocd" / "application.yaml"
ARGOCD_CM = REPO / "examples" / "argocd" / "argocd-cm.yaml"
HEALTH_KEY = "resource.customizations.health.kuscia.secretflow_KusciaDeployment"


def cmp_environ(entries: dict[str, str]) -> dict[str, str]:
    """The environment the CMP server gives generate: its own, plus the non-empty entries."""
    env = tool_env(ARGOCD_APP_NAME="secretflow-serving", ARGOCD_APP_NAMESPACE="argocd")
    env.update({name: value for name, value in entries.items() if value})
    return env


def test_plugin_config_is_a_sidecar_cmp_named_as_the_application_uses_it() -> None:
    plugin = yaml.safe_load(ARGOCD_PLUGIN.read_text())
    app = yaml.safe_load(APPLICATION.read_text())
    assert (plugin["apiVersion"], plugin["kind"]) == (
        "argoproj.io/v1alpha1",
        "ConfigManagementPlugin",
    )
    name = f"{plugin['metadata']['name']}-{plugin['spec']['version']}"
    assert app["spec"]["source"]["plugin"]["name"] == name
    assert argocd_generate_argv() == ["kdgen", "plugin", "argocd-generate"]


@pytest.mark.parametrize(
    ("folder", "matches"),
    [
        pytest.param("examples/secretflow-serving", True, id="kd-folder"),
        pytest.param("examples/flux/rendered/alice", False, id="rendered-folder"),
        pytest.param("plugins/argocd", False, id="no-yaml-at-all"),
    ],
)
def test_discovery_matches_folders_holding_a_kd(folder: str, matches: bool) -> None:
    """The CMP server runs find.command in the app folder: output means match, failure errors."""
    find = yaml.safe_load(ARGOCD_PLUGIN.read_text())["spec"]["discover"]["find"]["command"]
    done = run(find, cwd=REPO / folder, env=tool_env())
    assert done.returncode == 0, done.stderr
    assert bool(done.stdout.strip()) is matches


def test_discovery_still_matches_once_the_last_kd_is_removed(tmp_path: Path) -> None:
    """Argo CD runs discovery even for a named plugin and drops the plugin when it fails to
    match (``cmpSupports`` in ``util/app/discovery/discovery.go``, Argo CD v3.1), so the folder
    left with only its AppImage must still match, or removing the KD could never be pruned."""
    image = REPO / "examples" / "secretflow-serving" / "secretflow-serving-image.yaml"
    (tmp_path / image.name).write_bytes(image.read_bytes())
    find = yaml.safe_load(ARGOCD_PLUGIN.read_text())["spec"]["discover"]["find"]["command"]
    done = run(find, cwd=tmp_path, env=tool_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f"./{image.name}"]


@pytest.mark.tools
def test_generate_prints_only_objects_for_the_application_example(tmp_path: Path) -> None:
    app = yaml.safe_load(APPLICATION.read_text())
    entries = {
        f"ARGOCD_ENV_{e['name']}": e["value"] for e in app["spec"]["source"]["plugin"]["env"]
    }
    entries["ARGOCD_APP_SOURCE_PATH"] = app["spec"]["source"]["path"]
    app_dir = REPO / app["spec"]["source"]["path"]

    done = run(argocd_generate_argv(), cwd=app_dir, env=cmp_environ(entries))

    assert done.returncode == 0, done.stderr
    objects = stream_objects(done.stdout)
    assert objects
    assert all({"apiVersion", "kind", "metadata"} <= set(obj) for obj in objects)
    cli = run(["kdgen", "generate", "."], cwd=app_dir, env=tool_env())
    assert done.stdout == cli.stdout


@pytest.mark.tools
@pytest.mark.parametrize(
    ("entries", "options"),
    [
        pytest.param({"ARGOCD_ENV_KDGEN_PROFILE": "plain"}, ["--profile", "plain"], id="profile"),
        pytest.param({"ARGOCD_ENV_KDGEN_PORTS": "allocated"}, ["--ports", "allocated"], id="ports"),
        pytest.param(
            {"ARGOCD_ENV_KDGEN_INVENTORY": "../inventory.yaml"},
            ["--inventory", "../inventory.yaml"],
            id="inventory",
        ),
        pytest.param({"ARGOCD_ENV_KDGEN_PROFILE": ""}, [], id="empty-is-default"),
    ],
)
def test_each_parameter_acts_as_the_cli_option(
    entries: dict[str, str], options: list[str], tmp_path: Path
) -> None:
    app = lay_out(Case("params", inventory=True), tmp_path)
    default = run(["kdgen", "generate", "."], cwd=app, env=tool_env())

    done = run(argocd_generate_argv(), cwd=app, env=cmp_environ(entries))

    want = run(["kdgen", "generate", ".", *options], cwd=app, env=tool_env())
    assert done.returncode == want.returncode == 0, done.stderr
    assert done.stdout == want.stdout
    assert (done.stdout != default.stdout) == bool(options)


@pytest.mark.tools
def test_bad_parameters_and_inputs_fail_with_nothing_on_stdout(tmp_path: Path) -> None:
    app = lay_out(Case("bad"), tmp_path)
    entries = {"ARGOCD_ENV_KDGEN_PROFILE": "helm", "ARGOCD_ENV_KDGEN_PORTS": "random"}

    done = run(argocd_generate_argv(), cwd=app, env=cmp_environ(entries))

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: environment: ARGOCD_ENV_KDGEN_PROFILE: must be one of kuscia, plain, not 'helm'",
        "error: environment: ARGOCD_ENV_KDGEN_PORTS: must be one of declared, allocated, "
        "not 'random'",
    ]
    assert "Traceback" not in done.stderr


@pytest.mark.tools
def test_broken_inputs_give_the_cli_problems(tmp_path: Path) -> None:
    broken = Case("broken", broken=True)
    app = lay_out(broken, tmp_path / "argocd")

    done = run(argocd_generate_argv(), cwd=app, env=cmp_environ({}))

    cli = path_cli(broken, tmp_path / "cli")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == cli.stderr


# --------------------------------------------------------------------------------------------
# Health


def health(obj: dict[str, Any]) -> dict[str, str]:
    """Run the health Lua as Argo CD does: ``obj`` is a global table, the script returns hs."""
    lua = lua51.LuaRuntime()
    lua.globals().obj = _to_lua(lua, obj)
    result = lua.execute(HEALTH_LUA.read_text())
    return {key: result[key] for key in ("status", "message")}


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def observed(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load((OBSERVED / name).read_text())["items"])


def alice_rolling_out() -> list[dict[str, Any]]:
    deployments = observed("rollout-two-replicas.yaml")
    return [d for d in deployments if d["metadata"]["namespace"] == "alice"]


def kd_with_status(deployments: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    kd: dict[str, Any] = yaml.safe_load((OBSERVED / "kd-secretflow-serving.yaml").read_text())
    kd["status"] = compute_status(kd, deployments, now="2026-11-25T09:00:00Z", **kwargs)
    return kd


def bob_settled() -> list[dict[str, Any]]:
    return [d for d in observed("secretflow-serving.yaml") if d["metadata"]["namespace"] == "bob"]


def stuck(deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark alice's rollout as past its progress deadline, as the Deployment controller does."""
    for deployment in deployments:
        if deployment["metadata"]["namespace"] == "alice":
            deployment["status"].setdefault("conditions", []).append(
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
            )
    return deployments


def pods(name: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    return {("alice", "secretflow-serving"): observed(name)}


@pytest.mark.parametrize(
    ("kd", "phase", "want"),
    [
        pytest.param(
            yaml.safe_load((OBSERVED / "kd-secretflow-serving.yaml").read_text()),
            None,
            {"status": "Progressing", "message": "Waiting for the KusciaDeployment status"},
            id="no-status",
        ),
        pytest.param(
            kd_with_status(observed("secretflow-serving.yaml")),
            "Available",
            {"status": "Healthy", "message": "2/2 parties available"},
            id="available",
        ),
        pytest.param(
            kd_with_status(observed("surge.yaml") + bob_settled()),
            "PartialAvailable",
            {
                "status": "Progressing",
                "message": "2/2 parties available, some replicas not yet available",
            },
            id="partial-during-rollout",
        ),
        pytest.param(
            kd_with_status(stuck(observed("surge.yaml")) + bob_settled()),
            "PartialAvailable",
            {
                "status": "Degraded",
                "message": "rollout exceeded its progress deadline: alice/secretflow-serving",
            },
            id="partial-rollout-stuck",
        ),
        pytest.param(
            kd_with_status(observed("rollout-two-replicas.yaml")),
            "Progressing",
            {"status": "Progressing", "message": "0/2 parties available"},
            id="progressing",
        ),
        pytest.param(
            kd_with_status(alice_rolling_out() + bob_settled(), pods=pods("pods-waiting.yaml")),
            "Progressing",
            {
                "status": "Progressing",
                "message": "1/2 parties available: domainID: alice, reason: CrashLoopBackOff: "
                "back-off 1m20s restarting failed container=serving",
            },
            id="progressing-with-pod-reason",
        ),
        pytest.param(
            kd_with_status(
                [],
                problem=Problem(
                    "no deploy template for role server",
                    field="spec.parties[0].role",
                    reason="BuildPartyKitInfoFailed",
                ),
            ),
            "Failed",
            {
                "status": "Degraded",
                "message": "Failed: BuildPartyKitInfoFailed: "
                "spec.parties[0].role: no deploy template for role server",
            },
            id="failed",
        ),
    ],
)
def test_health_follows_the_phase(
    kd: dict[str, Any], phase: str | None, want: dict[str, str]
) -> None:
    assert (kd.get("status") or {}).get("phase") == phase, "the fixture gives the phase named"
    assert health(kd) == want


def test_health_of_an_unknown_phase_is_unknown() -> None:
    assert health({"status": {"phase": "Exploded"}}) == {
        "status": "Unknown",
        "message": "unknown phase Exploded",
    }


def test_argocd_cm_example_carries_the_health_lua_unchanged() -> None:
    data = yaml.safe_load(ARGOCD_CM.read_text())["data"]
    assert data[HEALTH_KEY] == HEALTH_LUA.read_text()
