"""kdgen.writing: only files kdgen recorded are replaced or removed; every write is whole.

The hostile corpus (tests/test_hostile.py) drives these rules through the CLI; here the edge
cases a CLI run cannot force: a failure half-way through staging a tree, another umask, a
pinned file owned by someone else, a legacy marker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kdgen import writing
from kdgen.errors import WriteRefused
from kdgen.render import MARKER, marker_text
from kdgen.writing import replace_file, write_tree


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


FILES = {
    "a/one.yaml": "one\n",
    "a/two.yaml": "two\n",
    "b/three.yaml": "three\n",
    "kustomization.yaml": "k\n",
}


def _files(**extra: str) -> dict[str, str]:
    files = {**FILES, **extra}
    return {**files, MARKER: marker_text(files)}


def test_a_failure_while_staging_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "out"
    write_tree(root, _files())
    before = _tree(root)
    real_stage = writing._stage
    calls = []

    def failing(path: Path, text: str, mode: int) -> Path:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_stage(path, text, mode)

    monkeypatch.setattr(writing, "_stage", failing)
    changed = {name: text.upper() for name, text in FILES.items()}
    with pytest.raises(OSError, match="No space left"):
        write_tree(root, {**changed, MARKER: marker_text(changed)})
    assert _tree(root) == before  # no file replaced, no temporary file left behind
    assert len(calls) == 3


def test_new_files_and_folders_honour_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_tree(tmp_path / "out", _files())
        replace_file(tmp_path / "stream.yaml", "x\n")
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "a" / "one.yaml").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "out" / MARKER).stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "out" / "a").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "stream.yaml").stat().st_mode & 0o777 == 0o640


def test_stale_recorded_files_go_and_their_empty_folders_with_them(tmp_path: Path) -> None:
    root = tmp_path / "out"
    write_tree(root, _files(**{"c/gone.yaml": "gone\n"}))
    (root / "a" / "mine.txt").write_text("mine\n")
    write_tree(root, _files())
    assert not (root / "c").exists()
    assert (root / "a" / "mine.txt").read_text() == "mine\n"
    assert (root / MARKER).read_text() == marker_text(FILES)


def test_a_legacy_marker_says_how_to_recover(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "a").mkdir(parents=True)
    (root / MARKER).write_text("This folder is written by `kdgen generate --output-dir`.\n")
    (root / "a" / "one.yaml").write_text("old\n")
    with pytest.raises(WriteRefused, match="older kdgen"):
        write_tree(root, _files())
    assert (root / "a" / "one.yaml").read_text() == "old\n"


def test_replace_file_keeps_mode_and_owner(tmp_path: Path) -> None:
    target = tmp_path / "kd.yaml"
    target.write_text("old\n")
    target.chmod(0o604)
    if os.geteuid() == 0:
        os.chown(target, 4321, 4321)
    owner = (target.stat().st_uid, target.stat().st_gid)
    replace_file(target, "new\n", keep=True)
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o604
    assert (target.stat().st_uid, target.stat().st_gid) == owner
