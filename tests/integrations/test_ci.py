"""CI golden diffs: the pre-commit hook and the CI jobs run ``kdgen check`` as they are written.

pre-commit runs a hook's ``entry`` (split like a shell would), then its ``args``, then the
staged file names unless ``pass_filenames: false``, from the repository root. GitHub Actions
and GitLab CI run each ``run:`` / ``script:`` line with a shell from the checkout. Each test
runs those exact commands on a copy of the examples: clean (exit 0), then with a rendered file
edited by hand (exit 1 and a diff naming it).
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from tests.integrations.paths import REPO, run, tool_env

HOOKS = REPO / ".pre-commit-hooks.yaml"
CI = REPO / "examples" / "ci"
EDITED = "examples/flux/rendered/alice/deployment-secretflow-serving.yaml"


def pre_commit_argv() -> list[str]:
    (hook,) = yaml.safe_load(HOOKS.read_text())
    config = yaml.safe_load((CI / "pre-commit-config.yaml").read_text())
    (used,) = [h for repo in config["repos"] for h in repo["hooks"] if h["id"] == hook["id"]]
    assert hook["pass_filenames"] is False, "kdgen check takes its own paths"
    return [*shlex.split(hook["entry"]), *used["args"]]


def ci_commands() -> list[tuple[str, str]]:
    workflow = yaml.safe_load((CI / "github-actions.yaml").read_text())
    gitlab = yaml.safe_load((CI / "gitlab-ci.yaml").read_text())
    steps = [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]
    lines = [line for job in gitlab.values() for line in job["script"]]
    commands = [("github-actions", c) for c in steps] + [("gitlab-ci", c) for c in lines]
    return [(where, c) for where, c in commands if c.startswith("kdgen ")]


def checkout(root: Path) -> Path:
    """The parts of a repository the CI examples read."""
    for folder in ("examples/secretflow-serving", "examples/flux/rendered"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def test_the_hook_is_a_python_hook_running_kdgen_check() -> None:
    (hook,) = yaml.safe_load(HOOKS.read_text())
    assert (hook["id"], hook["language"]) == ("kdgen-check", "python")
    assert pre_commit_argv()[:2] == ["kdgen", "check"]


def test_both_ci_examples_run_the_same_check() -> None:
    commands = ci_commands()
    assert [where for where, _ in commands] == ["github-actions", "gitlab-ci"]
    assert len({command for _, command in commands}) == 1
    assert shlex.split(commands[0][1]) == pre_commit_argv()


@pytest.mark.parametrize(
    "argv",
    [pytest.param(pre_commit_argv(), id="pre-commit")]
    + [pytest.param(["bash", "-ec", command], id=where) for where, command in ci_commands()],
)
def test_check_passes_clean_and_fails_with_a_diff_on_drift(argv: list[str], tmp_path: Path) -> None:
    root = checkout(tmp_path)

    clean = run(argv, cwd=root, env=tool_env())
    assert (clean.returncode, clean.stdout) == (0, ""), clean.stderr

    edited = root / EDITED
    edited.write_text(edited.read_text().replace("replicas: 1", "replicas: 3"))
    drift = run(argv, cwd=root, env=tool_env())
    assert drift.returncode == 1
    assert "--- alice/deployment-secretflow-serving.yaml (committed)" in drift.stdout
    assert "-  replicas: 3\n+  replicas: 1\n" in drift.stdout
    assert "examples/flux/rendered is out of date" in drift.stderr
