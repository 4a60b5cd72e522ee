"""kdgen.liveimport and ``kdgen import``: a live export in, clean source files out.

The export fixture is the seed KD as a cluster holds it after Kuscia's controller reconciled it
(``tests/fixtures/migration/live-export.yaml``); the objects Kuscia's controller made for it
are ``kuscia-controller-objects.yaml``, derived from Kuscia's ``generateService``,
``generateConfigMap`` and ``generateDeployment`` (its header says how). What the import keeps
is exactly what those objects need: the uid of their ``kd-uid`` labels and selectors, and the
numbers of the ``allocated-ports`` annotation (``allocatePorts`` reuses it).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kdgen.cli import main
from kdgen.errors import Problem
from kdgen.expand import expand
from kdgen.liveimport import import_live_export
from kdgen.load import Source, parse_sources
from kdgen.yamlio import dump_document

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "migration"
EXPORT = FIXTURES / "live-export.yaml"
KUSCIA_OBJECTS = FIXTURES / "kuscia-controller-objects.yaml"
UID = "0d3c5c2e-8f5a-4c1b-9a39-6e2f1b7d4a10"
UID_ANNOTATION = "kdgen.kuscia.secretflow/kd-uid"
KD_FILE = "kusciadeployment-secretflow-serving.yaml"
IMAGE_FILE = "appimage-secretflow-serving-image.yaml"
SERVER_SET = {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"}


def export_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = yaml.safe_load(EXPORT.read_text())["items"]
    return items


def stream(*bodies: dict[str, Any]) -> str:
    return "---\n".join(dump_document(body) for body in bodies)


def imported_from(*bodies: dict[str, Any]) -> Any:
    return import_live_export([Source("export.yaml", stream(*bodies))])


def test_export_becomes_one_clean_file_per_object() -> None:
    imported = import_live_export([Source(str(EXPORT), EXPORT.read_text())])
    assert imported.problems == ()
    assert list(imported.files) == [IMAGE_FILE, KD_FILE]
    kd, image = imported.files[KD_FILE], imported.files[IMAGE_FILE]
    for obj in (kd, image):
        assert "status" not in obj
        assert SERVER_SET.isdisjoint(obj["metadata"])
        assert list(obj)[:3] == ["apiVersion", "kind", "metadata"]
    assert "namespace" not in image["metadata"]  # AppImage is cluster-scoped
    assert kd["metadata"]["namespace"] == "cross-domain"
    live = export_items()[0]["metadata"]["annotations"]
    assert kd["metadata"]["annotations"] == {
        # Kuscia's own annotations stay (spec §8; allocated-ports above all), kubectl's goes
        **{k: v for k, v in live.items() if k.startswith("kuscia.secretflow/")},
        UID_ANNOTATION: UID,
    }
    assert kd["spec"] == export_items()[0]["spec"]


def test_generating_from_the_import_gives_the_objects_kuscia_made() -> None:
    """Kuscia's generateDeployment/Service/ConfigMap (the fixture) = kdgen on the import."""
    imported = import_live_export([Source(str(EXPORT), EXPORT.read_text())])
    sources = [Source(name, dump_document(obj)) for name, obj in imported.files.items()]
    expansion = expand(parse_sources(sources))
    ours = [m for m in expansion.manifests if m["kind"] in ("Deployment", "Service", "ConfigMap")]
    theirs = [
        doc
        for doc in yaml.safe_load_all(KUSCIA_OBJECTS.read_text().replace("${KD_UID}", UID))
        if doc
    ]

    def key(obj: dict[str, Any]) -> tuple[str, str, str]:
        return (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])

    assert sorted(map(key, ours)) == sorted(map(key, theirs))
    by_key = {key(obj): obj for obj in ours}
    for obj in theirs:
        assert by_key[key(obj)] == obj, key(obj)


def test_a_pinned_uid_is_kept_over_a_new_metadata_uid() -> None:
    """A KD re-created by GitOps has a new uid; its objects still carry the pinned one."""
    kd = copy.deepcopy(export_items()[0])
    kd["metadata"]["annotations"][UID_ANNOTATION] = "old-uid"
    imported = imported_from(kd)
    assert imported.files[KD_FILE]["metadata"]["annotations"][UID_ANNOTATION] == "old-uid"
    assert imported.problems == (
        Problem(
            f"metadata.uid '{UID}' differs from the {UID_ANNOTATION} annotation 'old-uid', "
            "kept because the existing objects' labels and selectors carry it",
            source="export.yaml",
            doc_index=1,
            resource="KusciaDeployment cross-domain/secretflow-serving",
            field="metadata.uid",
            severity="warning",
        ),
    )


def test_a_kd_without_uid_is_imported_with_a_warning() -> None:
    kd = copy.deepcopy(export_items()[0])
    del kd["metadata"]["uid"]
    imported = imported_from(kd)
    assert UID_ANNOTATION not in imported.files[KD_FILE]["metadata"]["annotations"]
    assert [(p.field, p.severity) for p in imported.problems] == [("metadata.uid", "warning")]
    assert "kdgen's stand-in" in imported.problems[0].message


def test_other_kinds_are_skipped_and_list_items_are_located() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    listed = {"apiVersion": "v1", "kind": "List", "items": [deployment, export_items()[1]]}
    imported = imported_from(listed)
    assert list(imported.files) == [IMAGE_FILE]
    assert imported.problems == (
        Problem(
            "not a kuscia.secretflow/v1alpha1 KusciaDeployment or AppImage; skipped (kdgen "
            "makes the other objects)",
            source="export.yaml",
            doc_index=1,
            resource="Deployment x",
            field="items[0]",
            severity="warning",
        ),
    )


def test_an_object_exported_twice_is_an_error() -> None:
    image = export_items()[1]
    imported = imported_from(image, image)
    assert [(p.doc_index, p.field, p.severity) for p in imported.problems] == [
        (2, "metadata.name", "error")
    ]


# --- the command ---------------------------------------------------------------------------


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_import_writes_the_files_that_generate_reads(tmp_path: Path) -> None:
    out = tmp_path / "src"
    result = invoke("import", str(EXPORT), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [IMAGE_FILE, KD_FILE]
    generated = invoke("generate", str(out))
    assert generated.exit_code == 0, generated.stderr
    # per domain: the ConfigMap, 3 Services, the Deployment's labels, selector and pod labels;
    # and the emitted KD's kdgen.kuscia.secretflow/kd-uid annotation
    assert generated.stdout.count(f"kuscia.secretflow/kd-uid: {UID}") == 2 * 7 + 1
    assert "port: 22291\n" in generated.stdout  # the annotation's number, not the AppImage's


def test_import_to_stdout_is_the_same_objects(tmp_path: Path) -> None:
    result = invoke("import", str(EXPORT))
    assert result.exit_code == 0, result.stderr
    imported = import_live_export([Source(str(EXPORT), EXPORT.read_text())])
    assert list(yaml.safe_load_all(result.stdout)) == list(imported.files.values())


@pytest.mark.parametrize(
    ("change", "line"),
    [
        pytest.param(
            lambda kd: kd["spec"]["parties"][0].update(appImageRef="gone"),
            'failed to get appImage "gone"',
            id="generate-check-fails",
        ),
        pytest.param(
            lambda kd: kd["metadata"]["annotations"].update(
                {"kuscia.secretflow/allocated-ports": "[]x"}
            ),
            "[AllocatePortsFailed]",
            id="annotation-broken",
        ),
    ],
)
def test_import_writes_nothing_when_the_result_would_not_generate(
    tmp_path: Path, change: Any, line: str
) -> None:
    kd, image = export_items()
    change(kd)
    export = tmp_path / "export.yaml"
    export.write_text(stream(kd, image))
    out = tmp_path / "src"
    result = invoke("import", str(export), "-o", str(out))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert line in result.stderr
    assert all(text.startswith(("error: ", "warning: ")) for text in result.stderr.splitlines())
    assert not out.exists()
