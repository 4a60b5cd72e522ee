"""The ``kdgen`` command line: exit codes 0/1/2, the problem lines on stderr, what gets written.

Contract (issue 3 item 6, cli.py's docstring): bad input prints every problem at once, one line
each with file, document and field path (and the Kuscia reason where there is one), exits 1,
shows no traceback and writes nothing; usage errors exit 2.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from kdgen.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "secretflow-serving"
SEED_OUTPUT = REPO / "golden" / "seed-kuscia-declared" / "expected.yaml"

PROBLEM_LINE = re.compile(r"^(error|warning): \S+#\d+: (KusciaDeployment|AppImage) \S+: \S+: .+$")

BAD_KD = """\
apiVersion: kuscia.secretflow/v1alpha1
kind: KusciaDeployment
metadata:
  name: bad
  namespace: cross-domain
spec:
  initiator: carol
  inputConfig: 'not json, which Kuscia passes through'
  parties:
  - domainID: alice
    appImageRef: secretflow-serving-image
    serviceNamePrefix: 9lives
  - domainID: bob
    appImageRef: missing-image
"""

BAD_IMAGE = """\
apiVersion: kuscia.secretflow/v1alpha1
kind: AppImage
metadata:
  name: broken-image
spec:
  image:
    name: example/app
  deployTemplates: []
"""


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the seed example, safe to rewrite."""
    target = tmp_path / "in"
    shutil.copytree(EXAMPLE, target)
    return target


@pytest.fixture
def bad_inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "bad"
    shutil.copytree(EXAMPLE, folder)
    (folder / "bad-kd.yaml").write_text(BAD_KD, encoding="utf-8")
    # A kustomize document first: skipped, but counted, so the AppImage is document #2.
    (folder / "zz-image.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n---\n" + BAD_IMAGE,
        encoding="utf-8",
    )
    return folder


# --- generate ---------------------------------------------------------------------------------


def test_generate_example_writes_the_seed_objects() -> None:
    """Issue 3 item 8: for alice and bob, the seed's Deployment, 3 Services and ConfigMap.

    Issue 9 item 1: the AppImage and the KD come first, so a GitOps engine applies them too.
    """
    result = invoke("generate", str(EXAMPLE))

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == SEED_OUTPUT.read_text(encoding="utf-8")
    objects = list(yaml.safe_load_all(result.stdout))
    sources = [
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects[:2]
    ]
    assert sources == [
        ("AppImage", None, "secretflow-serving-image"),
        ("KusciaDeployment", "cross-domain", "secretflow-serving"),
    ]
    made = objects[2:]
    got = sorted((o["metadata"]["namespace"], o["kind"], o["metadata"]["name"]) for o in made)
    want = sorted(
        (ns, kind, name)
        for ns in ("alice", "bob")
        for kind, name in (
            ("Deployment", "secretflow-serving"),
            ("Service", "secretflow-serving-service"),
            ("Service", "secretflow-serving-internal"),
            ("Service", "secretflow-serving-brpc-builtin"),
            ("ConfigMap", "secretflow-serving-configtemplate"),
        )
    )
    assert got == want
    assert {o["metadata"]["labels"]["kuscia.secretflow/kd-name"] for o in made} == {
        "secretflow-serving"
    }


def test_no_include_sources_writes_only_the_objects_made_from_the_kd() -> None:
    result = invoke("generate", "--no-include-sources", str(EXAMPLE))

    assert result.exit_code == 0, result.stderr
    kinds = [o["kind"] for o in yaml.safe_load_all(result.stdout)]
    assert len(kinds) == 10
    assert "KusciaDeployment" not in kinds
    assert "AppImage" not in kinds


def test_generate_reads_stdin() -> None:
    text = "---\n".join(p.read_text(encoding="utf-8") for p in sorted(EXAMPLE.glob("*.yaml")))
    result = invoke("generate", "-", stdin=text)
    assert result.exit_code == 0
    assert result.stdout == SEED_OUTPUT.read_text(encoding="utf-8")


def test_generate_problems_on_stdin_name_stdin() -> None:
    result = invoke("generate", "-", stdin=BAD_IMAGE)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        'error: <stdin>#1: AppImage broken-image: spec.image: required field "tag" is missing'
    ]


def test_generate_reports_every_problem_at_once(bad_inputs: Path) -> None:
    result = invoke("generate", str(bad_inputs))

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert all(PROBLEM_LINE.match(line) for line in lines), lines
    kd = f"{bad_inputs / 'bad-kd.yaml'}#1: KusciaDeployment cross-domain/bad"
    image = f"{bad_inputs / 'zz-image.yaml'}#2: AppImage broken-image"
    assert lines == [
        f'error: {image}: spec.image: required field "tag" is missing',
        f"error: {kd}: spec.initiator: kusciaDeployment bad initiator carol should be one of "
        "the parties [ValidateFailed]",
        f'error: {kd}: spec.parties[0].serviceNamePrefix: field "ServiceNamePrefix" is invalid, '
        'invalid value: "9lives": regex used for validation is '
        '"^[a-z]([-a-z0-9]{0,46}[a-z0-9])?$" [ValidateFailed]',
    ]


def test_generate_reports_plan_problems_of_every_kd(tmp_path: Path) -> None:
    """Problems of later stages (kit building) are collected across KDs too."""
    folder = tmp_path / "plan"
    shutil.copytree(EXAMPLE, folder)
    for name in ("one", "two"):
        text = BAD_KD.replace("name: bad", f"name: {name}").replace("initiator: carol", "")
        text = text.replace(
            "inputConfig: 'not json, which Kuscia passes through'",
            "initiator: alice\n  inputConfig: ''",
        )
        text = text.replace("    serviceNamePrefix: 9lives\n", "")
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    result = invoke("generate", str(folder))
    assert result.exit_code == 1
    assert [line.split(": ")[2] for line in result.stderr.splitlines()] == [
        "KusciaDeployment cross-domain/one",
        "KusciaDeployment cross-domain/two",
    ]
    assert all(line.endswith("[BuildPartyKitInfoFailed]") for line in result.stderr.splitlines())


def test_generate_missing_paths_are_all_reported(tmp_path: Path) -> None:
    result = invoke("generate", str(tmp_path / "a.yaml"), str(tmp_path / "b"))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'a.yaml'}: no such file or directory",
        f"error: {tmp_path / 'b'}: no such file or directory",
    ]


def test_generate_warnings_do_not_fail() -> None:
    reference = REPO / "tests" / "fixtures" / "seed" / "kusciadeployment-reference.yaml"
    image = EXAMPLE / "secretflow-serving-image.yaml"
    result = invoke("generate", str(reference), str(image))
    assert result.exit_code == 0
    assert result.stdout.startswith("---\napiVersion: kuscia.secretflow/v1alpha1\nkind: AppImage\n")
    assert [line.split(": ")[0] for line in result.stderr.splitlines()] == ["warning", "warning"]


@pytest.mark.parametrize(
    ("inputs", "kinds"),
    [
        pytest.param([], [], id="empty-folder"),
        # A GitOps folder may hold only AppImages for a while: they are still applied.
        pytest.param(["secretflow-serving-image.yaml"], ["AppImage"], id="appimage-only"),
    ],
)
def test_generate_without_a_kd_warns_and_makes_nothing(
    tmp_path: Path, inputs: list[str], kinds: list[str]
) -> None:
    for name in inputs:
        shutil.copy(EXAMPLE / name, tmp_path / name)
    result = invoke("generate", str(tmp_path))
    assert result.exit_code == 0
    assert [o["kind"] for o in yaml.safe_load_all(result.stdout)] == kinds
    assert result.stderr == "warning: no KusciaDeployment among the inputs: nothing to generate\n"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["generate"], id="no-path"),
        pytest.param(["generate", "--profile", "k8s", str(EXAMPLE)], id="bad-profile"),
        pytest.param(["generate", "--ports", "random", str(EXAMPLE)], id="bad-ports"),
        pytest.param(["generate", "--no-such-flag", str(EXAMPLE)], id="unknown-option"),
        pytest.param(["generate", "--inventory", str(EXAMPLE), str(EXAMPLE)], id="inventory-dir"),
        pytest.param(["frobnicate"], id="unknown-command"),
        pytest.param(["check", str(EXAMPLE)], id="check-without-golden"),
        pytest.param(["pin-ports", "-"], id="pin-ports-stdin"),
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Error:" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_traceback_from_a_real_process(bad_inputs: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kdgen", "generate", str(bad_inputs)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 3


# --- --output-dir ----------------------------------------------------------------------------


def test_output_dir_writes_one_kustomization_per_domain(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("generate", str(EXAMPLE), "--output-dir", str(out))

    assert result.exit_code == 0
    assert result.stdout == ""
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    per_domain = [
        "configmap-secretflow-serving-configtemplate.yaml",
        "deployment-secretflow-serving.yaml",
        "kustomization.yaml",
        "service-secretflow-serving-brpc-builtin.yaml",
        "service-secretflow-serving-internal.yaml",
        "service-secretflow-serving-service.yaml",
    ]
    sources = [
        "cross-domain/appimage-secretflow-serving-image.yaml",
        "cross-domain/kusciadeployment-secretflow-serving.yaml",
        "cross-domain/kustomization.yaml",
    ]
    assert files == sorted(
        [".kdgen", "kustomization.yaml", *sources]
        + [f"{d}/{f}" for d in ("alice", "bob") for f in per_domain]
    )
    top = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert top["resources"] == ["cross-domain", "alice", "bob"]
    kustomization = yaml.safe_load((out / "alice" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [
        "configmap-secretflow-serving-configtemplate.yaml",
        "service-secretflow-serving-brpc-builtin.yaml",
        "service-secretflow-serving-internal.yaml",
        "service-secretflow-serving-service.yaml",
        "deployment-secretflow-serving.yaml",
    ]
    # The tree holds exactly the stream's objects.
    stream = list(yaml.safe_load_all(SEED_OUTPUT.read_text(encoding="utf-8")))
    tree = [yaml.safe_load(p.read_text()) for p in sorted(out.glob("*/*-*.yaml"))]
    key = lambda o: (o["metadata"].get("namespace", ""), o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(tree, key=key) == sorted(stream, key=key)


def test_output_dir_replaces_its_own_tree_and_drops_stale_files(tmp_path: Path) -> None:
    """Files kdgen wrote for a KD that is gone are removed; a file someone else put there stays."""
    inputs = tmp_path / "in"
    shutil.copytree(EXAMPLE, inputs)
    kd = (inputs / "secretflow-serving.yaml").read_text()
    (inputs / "second.yaml").write_text(kd.replace("name: secretflow-serving\n", "name: second\n"))
    out = tmp_path / "out"
    assert invoke("generate", str(inputs), "-o", str(out)).exit_code == 0
    assert (out / "alice" / "deployment-second.yaml").exists()
    (out / "alice" / "notes.yaml").write_text("mine: true\n")
    (inputs / "second.yaml").unlink()
    assert invoke("generate", str(inputs), "-o", str(out)).exit_code == 0
    assert not (out / "alice" / "deployment-second.yaml").exists()
    assert (out / "alice" / "notes.yaml").read_text() == "mine: true\n"
    assert (out / "alice" / "deployment-secretflow-serving.yaml").exists()


def test_output_dir_refuses_a_folder_kdgen_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n")
    result = invoke("generate", str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 2
    assert "refusing to replace" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_output_dir_is_untouched_on_error(tmp_path: Path, bad_inputs: Path) -> None:
    out = tmp_path / "out"
    assert invoke("generate", str(EXAMPLE), "-o", str(out)).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    result = invoke("generate", str(bad_inputs), "-o", str(out))

    assert result.exit_code == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "out"]  # no staging left


def test_output_dir_is_not_created_on_error(tmp_path: Path, bad_inputs: Path) -> None:
    result = invoke("generate", str(bad_inputs), "-o", str(tmp_path / "new"))
    assert result.exit_code == 1
    assert not (tmp_path / "new").exists()


# --- validate ---------------------------------------------------------------------------------


def test_validate_ok_writes_nothing_on_stdout() -> None:
    result = invoke("validate", str(EXAMPLE))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "ok: 1 KusciaDeployment(s), 12 object(s)\n"


def test_validate_reports_what_generate_reports(bad_inputs: Path) -> None:
    validated = invoke("validate", str(bad_inputs))
    generated = invoke("generate", str(bad_inputs))
    assert validated.exit_code == 1
    assert validated.stdout == ""
    assert validated.stderr == generated.stderr


@pytest.mark.parametrize("ports", ["declared", "allocated"])
def test_validate_runs_the_allocated_port_checks(example: Path, ports: str) -> None:
    """The annotation checks (AllocatePortsFailed, Kuscia's ``allocatePorts``) run in every
    port mode: a live KD's annotation wins over the declared numbers."""
    kd = example / "secretflow-serving.yaml"
    kd.write_text(
        kd.read_text().replace(
            "  name: secretflow-serving\n",
            "  name: secretflow-serving\n  annotations:\n"
            '    kuscia.secretflow/allocated-ports: \'[{"domainID":"alice"}]\'\n',
        )
    )
    result = invoke("validate", str(example), "--ports", ports)
    assert result.exit_code == 1
    assert [line.rsplit(" ", 1)[-1] for line in result.stderr.splitlines()] == [
        "[AllocatePortsFailed]",
        "[AllocatePortsFailed]",
        "[AllocatePortsFailed]",
        "[AllocatePortsFailed]",
    ]


# --- check --golden ---------------------------------------------------------------------------


def test_check_stream_matches_then_drifts_then_updates(tmp_path: Path) -> None:
    golden = tmp_path / "golden.yaml"
    golden.write_text(SEED_OUTPUT.read_text(encoding="utf-8"), encoding="utf-8")
    assert invoke("check", str(EXAMPLE), "--golden", str(golden)).exit_code == 0

    golden.write_text(golden.read_text().replace("\n  replicas: 1\n", "\n  replicas: 2\n", 1))
    drift = invoke("check", str(EXAMPLE), "--golden", str(golden))
    assert drift.exit_code == 1
    assert drift.stdout.startswith(f"--- {golden} (committed)\n+++ {golden} (generated)\n")
    assert "\n-  replicas: 2\n+  replicas: 1\n" in drift.stdout
    assert drift.stderr == f"error: {golden} is out of date; run with --update to rewrite it\n"

    updated = invoke("check", str(EXAMPLE), "--golden", str(golden), "--update")
    assert updated.exit_code == 0
    assert golden.read_text() == SEED_OUTPUT.read_text(encoding="utf-8")
    assert invoke("check", str(EXAMPLE), "--golden", str(golden)).exit_code == 0


def test_check_missing_golden_file_is_drift(tmp_path: Path) -> None:
    result = invoke("check", str(EXAMPLE), "--golden", str(tmp_path / "none.yaml"))
    assert result.exit_code == 1
    assert "+kind: Deployment\n" in result.stdout


def test_check_tree_compares_file_by_file(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    assert invoke("check", str(EXAMPLE), "--golden", str(tree), "--update").exit_code == 0
    assert (tree / "bob" / "kustomization.yaml").exists()
    assert invoke("check", str(EXAMPLE), "--golden", str(tree)).exit_code == 0

    (tree / "bob" / "service-secretflow-serving-internal.yaml").unlink()
    drift = invoke("check", str(EXAMPLE), "--golden", str(tree))
    assert drift.exit_code == 1
    assert drift.stdout.startswith(
        "--- bob/service-secretflow-serving-internal.yaml (committed)\n"
        "+++ bob/service-secretflow-serving-internal.yaml (generated)\n"
    )


def test_check_update_writes_nothing_on_error(tmp_path: Path, bad_inputs: Path) -> None:
    golden = tmp_path / "golden.yaml"
    golden.write_text("committed\n")
    result = invoke("check", str(bad_inputs), "--golden", str(golden), "--update")
    assert result.exit_code == 1
    assert golden.read_text() == "committed\n"


# --- pin-ports --------------------------------------------------------------------------------


def test_pin_ports_freezes_the_allocation(example: Path) -> None:
    before = invoke("generate", str(example), "--ports", "allocated").stdout
    kd = example / "secretflow-serving.yaml"
    original = kd.read_text()

    result = invoke("pin-ports", str(example))

    assert result.exit_code == 0
    assert result.stderr == f"pinned {kd}\n"
    pinned = kd.read_text()
    annotation = yaml.safe_load(pinned)["metadata"]["annotations"][
        "kuscia.secretflow/allocated-ports"
    ]
    assert annotation == (
        '[{"domainID":"alice","namedPort":{"brpc-builtin":24587,"internal":24586,'
        '"service":24585}},{"domainID":"bob","namedPort":{"brpc-builtin":25935,'
        '"internal":25934,"service":25933}}]'
    )
    # Only the annotation was added: every original line is still there, in order.
    added = [line for line in pinned.splitlines() if line not in original.splitlines()]
    assert added == ["  annotations:", f"    kuscia.secretflow/allocated-ports: '{annotation}'"]
    # The numbers are what --ports allocated gave, and pinning twice changes nothing.
    assert invoke("generate", str(example), "--ports", "allocated").stdout == before
    again = invoke("pin-ports", str(example))
    assert again.exit_code == 0
    assert again.stderr == ""
    assert kd.read_text() == pinned


def test_pin_ports_writes_nothing_on_error(example: Path) -> None:
    (example / "bad-kd.yaml").write_text(BAD_KD)
    files = {p: p.read_bytes() for p in example.iterdir()}
    result = invoke("pin-ports", str(example))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert {p: p.read_bytes() for p in example.iterdir()} == files
