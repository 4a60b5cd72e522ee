"""The one promise every integration shares: same inputs, same objects, same problems.

Each path in ``paths.PATHS`` runs the real tool (kustomize, kpt, kubectl) or the exact
protocol it speaks (the KRM shim, the legacy exec shim, Argo CD's CMP command). Its output is
compared with ``kdgen generate`` on the same inputs: byte for byte where the path hands on
kdgen's own stream, object for object (in kdgen's order) where a tool re-serialises it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kdgen.render import sort_manifests
from tests.integrations.paths import (
    PATHS,
    STREAM_PATHS,
    Case,
    made_objects,
    path_cli,
    split_problem,
)

KPT_PATHS = {"krm-kpt-eval", "krm-kpt-render"}

CASES = [
    Case("serving-defaults"),
    Case("serving-plain-allocated-inventory", profile="plain", ports="allocated", inventory=True),
]
BROKEN = Case("broken", broken=True)
# Where a path reports the KD's problems from: the legacy plugin only sees kustomize's copy.
KD_LOCATION = {"legacy-exec-protocol": "<generator config>#1"}
KD_LOCATION["legacy-exec-kustomize"] = KD_LOCATION["legacy-exec-kubectl-kustomize"] = (
    "<generator config>#1"
)

pytestmark = pytest.mark.tools


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_every_path_gives_the_cli_output(case: Case, path: str, tmp_path: Path) -> None:
    want = path_cli(case, tmp_path / "reference")
    assert want.exit_code == 0, want.stderr
    assert want.objects, "the case generates something"

    got = PATHS[path](case, tmp_path / path)

    assert got.exit_code == 0, got.stderr
    if path in STREAM_PATHS:
        assert got.raw == want.raw
    elif path in KPT_PATHS:
        # A kpt package holds its KD and AppImage files already: kdgen adds the objects only.
        assert sort_manifests(got.objects) == made_objects(want.objects)
    else:
        # kustomize and kpt write keys in their own order; objects compare regardless of it.
        assert sort_manifests(got.objects) == want.objects


@pytest.mark.parametrize("path", list(PATHS))
def test_every_path_reports_the_same_problems(path: str, tmp_path: Path) -> None:
    want = path_cli(BROKEN, tmp_path / "reference")
    assert want.exit_code == 1
    assert len(want.problem_lines) == 2, want.stderr

    got = PATHS[path](BROKEN, tmp_path / path)

    assert got.exit_code != 0
    assert got.objects == [], "nothing is generated when any input is broken"
    assert sorted(_comparable(path, line) for line in got.problem_lines) == sorted(
        _comparable("cli", line) for line in want.problem_lines
    ), got.stderr


def _comparable(path: str, line: str) -> tuple[str, str, str]:
    """A problem line with its location cut to what every path can know."""
    severity, location, rest = split_problem(line)
    file, _, index = location.rpartition("#")
    name = Path(file).name
    if rest.startswith("KusciaDeployment ") and path in KD_LOCATION:
        assert location == KD_LOCATION[path]
        name, index = "secretflow-serving.yaml", "1"
    return severity, f"{name}#{index}", rest
