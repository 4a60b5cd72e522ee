"""kdgen.load (filing documents by kind) and kdgen.sources (files, directories, stdin).

What counts as an input: KusciaDeployment and AppImage (kuscia.secretflow/v1alpha1) and the
Inventory (kdgen.kuscia.secretflow/v1alpha1); kustomize's own files are skipped; anything else,
or anything unreadable, is an InputError naming file and document, every one at once.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kdgen.errors import InputError, Problem
from kdgen.load import Document, Source, parse_sources
from kdgen.sources import read_sources

KD = "apiVersion: kuscia.secretflow/v1alpha1\nkind: KusciaDeployment\nmetadata:\n  name: kd\n"
KD_NS = KD + "  namespace: cross-domain\n"
IMAGE = "apiVersion: kuscia.secretflow/v1alpha1\nkind: AppImage\nmetadata:\n  name: img\n"
INVENTORY = "apiVersion: kdgen.kuscia.secretflow/v1alpha1\nkind: Inventory\n"
KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


def test_documents_are_filed_by_kind_in_input_order() -> None:
    inputs = parse_sources(
        [
            Source("a.yaml", f"{IMAGE}---\n{KD_NS}---\n---\n{KUSTOMIZATION}---\n{INVENTORY}"),
            Source(
                "b.json",
                '{"apiVersion": "kuscia.secretflow/v1alpha1", '
                '"kind": "AppImage", "metadata": {"name": "img2"}}',
            ),
        ]
    )
    assert [(d.source, d.index, d.name) for d in inputs.app_images] == [
        ("a.yaml", 1, "img"),
        ("b.json", 1, "img2"),
    ]
    # The empty document between two markers still counts, as an editor shows it.
    assert [(d.source, d.index, d.resource) for d in inputs.kusciadeployments] == [
        ("a.yaml", 2, "KusciaDeployment cross-domain/kd")
    ]
    assert [(d.source, d.index) for d in inputs.inventories] == [("a.yaml", 5)]


def test_every_bad_document_of_every_source_is_reported() -> None:
    with pytest.raises(InputError) as caught:
        parse_sources(
            [
                Source("broken.yaml", "kind: [unclosed\n"),
                Source("mixed.yaml", f"{KD}---\n- a list\n---\napiVersion: v1\nkind: Pod\n"),
                Source("wrong-group.yaml", "apiVersion: kuscia.secretflow/v1\nkind: AppImage\n"),
            ]
        )
    assert caught.value.problems == (
        Problem(
            "invalid YAML at line 2, column 1: did not find expected ',' or ']'", "broken.yaml", 1
        ),
        Problem("document is not a mapping", "mixed.yaml", 2),
        Problem(
            "unknown document apiVersion 'v1' kind 'Pod'; kdgen reads kuscia.secretflow/v1alpha1 "
            "KusciaDeployment and AppImage, and kdgen.kuscia.secretflow/v1alpha1 Inventory",
            "mixed.yaml",
            3,
        ),
        Problem(
            "unknown document apiVersion 'kuscia.secretflow/v1' kind 'AppImage'; kdgen reads "
            "kuscia.secretflow/v1alpha1 KusciaDeployment and AppImage, and "
            "kdgen.kuscia.secretflow/v1alpha1 Inventory",
            "wrong-group.yaml",
            1,
        ),
    )


def test_yaml_error_in_a_later_document_names_that_document() -> None:
    with pytest.raises(InputError) as caught:
        parse_sources([Source("x.yaml", f"{KD}---\n{IMAGE}---\nkey: : bad\n")])
    [problem] = caught.value.problems
    assert (problem.source, problem.doc_index) == ("x.yaml", 3)
    assert problem.message.startswith("invalid YAML at line 11, column 6: ")


def test_document_problem_is_located() -> None:
    doc = Document("kd.yaml", 2, {"kind": "KusciaDeployment", "metadata": {"name": "kd"}})
    assert str(doc.problem("spec.parties", "bad", reason="ValidateFailed")) == (
        "kd.yaml#2: KusciaDeployment kd: spec.parties: bad [ValidateFailed]"
    )
    assert Document("f", 1, {"kind": "AppImage", "metadata": "oops"}).resource == "AppImage"


def test_nothing_is_an_empty_run() -> None:
    inputs = parse_sources([Source("empty.yaml", ""), Source("comments.yaml", "# only\n")])
    assert (inputs.kusciadeployments, inputs.app_images, inputs.inventories) == ((), (), ())


# --- sources: the file-system edge -------------------------------------------------------------


def test_directory_contributes_its_yaml_and_json_files_sorted_not_recursively(
    tmp_path: Path,
) -> None:
    for name in ("b.yaml", "a.yml", "c.json", "notes.txt", "d.YAML.bak"):
        (tmp_path / name).write_text(name, encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.yaml").write_text("e", encoding="utf-8")

    sources = read_sources([str(tmp_path)], stdin=io.StringIO())

    assert [(Path(s.name).name, s.text) for s in sources] == [
        ("a.yml", "a.yml"),
        ("b.yaml", "b.yaml"),
        ("c.json", "c.json"),
    ]


def test_files_keep_command_line_order_and_stdin_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "z.yaml").write_text("z", encoding="utf-8")
    (tmp_path / "a.txt").write_text("any suffix when named", encoding="utf-8")
    stdin = io.StringIO("from stdin")
    sources = read_sources([str(tmp_path / "z.yaml"), "-", str(tmp_path / "a.txt")], stdin=stdin)
    assert [(s.name, s.text) for s in sources] == [
        (str(tmp_path / "z.yaml"), "z"),
        ("<stdin>", "from stdin"),
        (str(tmp_path / "a.txt"), "any suffix when named"),
    ]


def test_missing_and_unreadable_paths_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InputError) as caught:
        read_sources(
            [str(tmp_path / "missing.yaml"), str(tmp_path / "latin1.yaml"), str(tmp_path / "gone")],
            stdin=io.StringIO(),
        )
    problems = caught.value.problems
    assert [(Path(p.source).name, p.message.split(":")[0]) for p in problems] == [
        ("missing.yaml", "no such file or directory"),
        ("latin1.yaml", "line 1, column 10"),
        ("gone", "no such file or directory"),
    ]


def test_an_unreadable_directory_is_reported_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root, a mode of 000 does not stop reading, so the refusal is made by the fake.
    folder = tmp_path / "locked"
    folder.mkdir()

    def refuse(path: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("kdgen.sources.os.scandir", refuse)
    with pytest.raises(InputError) as caught:
        read_sources([str(folder)], stdin=io.StringIO())
    assert [str(p) for p in caught.value.problems] == [
        f"{folder}: cannot read directory: Permission denied"
    ]
