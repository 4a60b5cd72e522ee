"""deploy/crds is kdgen's rendering of its packaged schemas (``kdgen crds``), byte for byte."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kdgen.cli import main
from kdgen.crds import CRD_FILE_NAMES, GENERATED_HEADER, crd_files, crds
from kdgen.schemas import (
    APP_IMAGE_SCHEMA,
    KUSCIA_DEPLOYMENT_SCHEMA,
    crd_schema,
    schema_problems,
    without_working_dir,
)

CRDS = Path(__file__).resolve().parent.parent / "deploy" / "crds"
REGENERATE = "kdgen crds --output-dir deploy/crds"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def containers(schema: Any) -> Any:
    """``spec.parties[].template.spec.containers[]`` of a KD schema."""
    party = schema["properties"]["spec"]["properties"]["parties"]["items"]
    spec = party["properties"]["template"]["properties"]["spec"]
    return spec["properties"]["containers"]["items"]


def test_deploy_crds_is_the_rendered_output_byte_for_byte() -> None:
    committed = {path.name: path.read_text(encoding="utf-8") for path in CRDS.iterdir()}
    rendered = crd_files()
    assert sorted(committed) == sorted(rendered), f"run {REGENERATE}"
    for name, text in rendered.items():
        assert committed[name] == text, f"deploy/crds/{name} is out of date: run {REGENERATE}"


def test_rendering_is_deterministic_and_fresh() -> None:
    first = crd_files()
    crds()[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["type"] = "changed"
    assert crd_files() == first


def test_applied_kd_crd_keeps_the_working_dir_rule_of_kuscia() -> None:
    """The CRD requires workingDir as Kuscia's does (the Go field has no omitempty)."""
    kd_crd, _ = crds()
    schema = kd_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert containers(schema)["required"] == ["name", "workingDir"]
    assert schema == crd_schema("KusciaDeployment")


def test_validation_schema_is_the_crd_schema_relaxed_in_one_place() -> None:
    """kdgen's KD schema is the CRD's with workingDir dropped from that one required list."""
    assert containers(KUSCIA_DEPLOYMENT_SCHEMA)["required"] == ["name"]
    assert KUSCIA_DEPLOYMENT_SCHEMA == without_working_dir(crd_schema("KusciaDeployment"))
    assert KUSCIA_DEPLOYMENT_SCHEMA != crd_schema("KusciaDeployment")
    assert APP_IMAGE_SCHEMA == crd_schema("AppImage")


def test_a_container_without_working_dir_passes_only_the_relaxed_schema() -> None:
    kd = {
        "metadata": {"name": "x"},
        "spec": {
            "initiator": "alice",
            "inputConfig": "",
            "parties": [
                {
                    "domainID": "alice",
                    "appImageRef": "img",
                    "template": {"spec": {"containers": [{"name": "c"}]}},
                }
            ],
        },
    }
    field = "spec.parties[0].template.spec.containers[0]"
    assert schema_problems(crd_schema("KusciaDeployment"), kd) == [
        (field, 'required field "workingDir" is missing')
    ]
    assert schema_problems(KUSCIA_DEPLOYMENT_SCHEMA, kd) == []


def test_files_name_and_list_both_crds() -> None:
    files = crd_files()
    assert list(files) == [
        "kuscia.secretflow_kusciadeployments.yaml",
        "kuscia.secretflow_appimages.yaml",
        "kustomization.yaml",
    ]
    assert list(CRD_FILE_NAMES.values()) == list(files)[:2]
    for text in files.values():
        assert text.startswith(GENERATED_HEADER)
    kustomization = yaml.safe_load(files["kustomization.yaml"])
    assert kustomization["resources"] == list(files)[:2]
    kinds = [yaml.safe_load(files[name])["spec"]["names"]["kind"] for name in list(files)[:2]]
    assert kinds == ["KusciaDeployment", "AppImage"]


def test_command_prints_both_crds_as_one_stream() -> None:
    result = invoke("crds")
    assert result.exit_code == 0
    documents = list(yaml.safe_load_all(result.stdout))
    assert documents == crds()
    assert result.stdout.startswith("---\n")


def test_output_dir_writes_then_rewrites_its_own_files(tmp_path: Path) -> None:
    target = tmp_path / "crds"
    result = invoke("crds", "--output-dir", str(target))
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_text(encoding="utf-8") for p in target.iterdir()} == crd_files()
    stale = target / "kustomization.yaml"
    stale.write_text(GENERATED_HEADER + "old\n", encoding="utf-8")
    assert invoke("crds", "-o", str(target)).exit_code == 0
    assert stale.read_text(encoding="utf-8") == crd_files()["kustomization.yaml"]


def test_output_dir_refuses_a_file_it_did_not_write(tmp_path: Path) -> None:
    hand = tmp_path / "kuscia.secretflow_appimages.yaml"
    hand.write_text("# mine\n", encoding="utf-8")
    result = invoke("crds", "-o", str(tmp_path))
    assert result.exit_code == 2
    assert "was not written by kdgen crds" in result.output
    assert hand.read_text(encoding="utf-8") == "# mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [hand.name]  # nothing half-written


@pytest.mark.parametrize("flag", ["--output-dir", "-o"])
def test_help_describes_the_flag(flag: str) -> None:
    result = invoke("crds", "--help")
    assert flag in result.output
    assert "Only files this command wrote are replaced" in " ".join(result.output.split())
