"""Write kdgen's outputs so that a run can never destroy a file it did not write.

The output edge, the only module that changes the file system. The rules (issue 10 item 2):

- kdgen replaces or removes only files it wrote itself. An output tree records them in its
  marker file (``.kdgen``, see ``kdgen.render.marker_text``); a file there that the marker
  does not list is never touched, and writing over one is refused. Recorded names are not
  trusted either: an entry that is not a plain relative path inside the tree is ignored.
- It never writes over, into or through a symbolic link (kdgen creates none), a special
  file, or any of the run's inputs.
- Every file is written to a temporary file in the same folder and renamed into place, so a
  reader never sees half a file. A tree is staged completely before the first rename; the
  marker is updated first to list old and new files and last to list only the new, so an
  interrupted run leaves every file whole and every kdgen file recorded.
- New files get the mode the umask gives (``0666 & ~umask``), not ``mkstemp``'s 0600; a file
  that is replaced keeps its mode (``replace_file(..., keep=True)``).

A refusal raises ``WriteRefused``; the CLI turns it into a usage error (exit status 2).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path, PurePosixPath

from kdgen.errors import KdgenError, WriteRefused, escape_controls
from kdgen.model import CONTROLLER_KUSCIA_DEPLOYMENT, LABEL_CONTROLLER
from kdgen.render import MARKER, marker_text, recorded_files
from kdgen.yamlio import read_documents


def umask_mode() -> int:
    """Return the mode a new file gets under the current umask (``0666 & ~umask``)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _shown(path: Path) -> str:
    return escape_controls(str(path))


def _kind(path: Path) -> str:
    """Return ``missing``, ``link``, ``file``, ``dir`` or ``other`` for ``path`` (not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "other"


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _check_not_input(path: Path, inputs: Collection[Path]) -> None:
    real = _real(path)
    for item in inputs:
        if _real(item) == real:
            raise WriteRefused(f"refusing to write {_shown(path)}: it is one of the inputs")


def replace_file(
    path: Path, text: str, *, inputs: Collection[Path] = (), keep: bool = False
) -> None:
    """Write ``text`` to ``path`` atomically, refusing links, special files and inputs.

    Args:
        path: the file to create or replace.
        text: its new content, written as UTF-8 exactly (no newline translation).
        inputs: the run's input files, which are never written.
        keep: keep the mode and owner of the file being replaced (``pin-ports``); a file
            kdgen cannot give back its owner, or may not write, is refused.

    Raises:
        WriteRefused: ``path`` is a link, not a regular file, an input, or (``keep``)
            read-only or owned by someone kdgen cannot hand the file back to.
    """
    mode, owner = check_replaceable(path, inputs=inputs, keep=keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _stage(path, text, mode)
    try:
        if owner is not None:
            try:
                os.chown(temp, *owner)
            except OSError as err:
                raise WriteRefused(
                    f"refusing to rewrite {_shown(path)}: cannot keep its owner ({err.strerror})"
                ) from err
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def check_replaceable(
    path: Path, *, inputs: Collection[Path] = (), keep: bool = False
) -> tuple[int, tuple[int, int] | None]:
    """Check that ``replace_file`` may write ``path``; return the mode and owner to give it.

    Raises:
        WriteRefused: as ``replace_file`` would.
    """
    kind = _kind(path)
    if kind == "link":
        raise WriteRefused(
            f"refusing to write {_shown(path)}: it is a symbolic link, which kdgen did not create"
        )
    if kind not in ("missing", "file"):
        raise WriteRefused(f"refusing to write {_shown(path)}: it is not a regular file")
    _check_not_input(path, inputs)
    mode, owner = umask_mode(), None
    if keep and kind == "file":
        status = os.lstat(path)
        if status.st_nlink > 1:
            raise WriteRefused(
                f"refusing to rewrite {_shown(path)}: it has {status.st_nlink} hard links, "
                "which replacing it would break"
            )
        if not status.st_mode & stat.S_IWUSR or not os.access(path, os.W_OK):
            raise WriteRefused(
                f"refusing to rewrite {_shown(path)}: it is read-only "
                f"(mode {stat.S_IMODE(status.st_mode):04o})"
            )
        mode = stat.S_IMODE(status.st_mode)
        if (status.st_uid, status.st_gid) != (os.geteuid(), os.getegid()):
            owner = (status.st_uid, status.st_gid)
    return mode, owner


def _stage(path: Path, text: str, mode: int) -> Path:
    """Write ``text`` to a new temporary file beside ``path``; return its path."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8", "surrogatepass"))
            handle.flush()
            os.fchmod(handle.fileno(), mode)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def read_tree(root: Path) -> dict[str, str]:
    """Read every regular file under ``root`` into ``{relative path: text}`` (links skipped).

    Raises:
        WriteRefused: ``root`` is a symbolic link.
    """
    if _kind(root) == "link":
        raise WriteRefused(f"refusing to read {_shown(root)}: it is a symbolic link")
    if not root.is_dir():
        return {}
    tree = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if _kind(Path(folder) / d) == "dir")
        for name in sorted(names):
            path = Path(folder) / name
            if _kind(path) == "file":
                data = path.read_bytes()
                tree[path.relative_to(root).as_posix()] = data.decode("utf-8", "replace")
    return tree


def _safe_relative(name: str) -> bool:
    """Tell whether a recorded name is a plain relative path (no ``..``, not absolute)."""
    path = PurePosixPath(name)
    return (
        bool(name)
        and not path.is_absolute()
        and ".." not in path.parts
        and "" not in (name.split("/"))
    )


def _walk_check(root: Path, relative: str) -> None:
    """Refuse if a folder on the way from ``root`` to ``relative`` is a link or a file."""
    current = root
    for part in PurePosixPath(relative).parts[:-1]:
        current = current / part
        kind = _kind(current)
        if kind == "link":
            raise WriteRefused(
                f"refusing to write into {_shown(current)}: it is a symbolic link, which kdgen "
                "did not create"
            )
        if kind not in ("missing", "dir"):
            raise WriteRefused(f"refusing to write into {_shown(current)}: it is not a folder")


def write_tree(root: Path, files: Mapping[str, str], *, inputs: Collection[Path] = ()) -> None:
    """Make ``root`` hold ``files``, replacing and removing only what kdgen wrote there.

    Args:
        root: the output folder; created if missing.
        files: ``{relative path: text}``, including the marker (``render_tree`` output).
        inputs: the run's input files: writing a tree that holds one is refused.

    Raises:
        WriteRefused: ``root`` is a link or a file, is non-empty without a marker, holds an
            input, or a file to write exists without being recorded, or is a link.
    """
    kind = _kind(root)
    if kind == "link":
        raise WriteRefused(
            f"refusing to write {_shown(root)}: it is a symbolic link, which kdgen did not create"
        )
    if kind not in ("missing", "dir"):
        raise WriteRefused(f"refusing to write {_shown(root)}: it is not a folder")
    recorded: set[str] = set()
    legacy = False
    if kind == "dir" and any(root.iterdir()):
        if _kind(root / MARKER) != "file":
            raise WriteRefused(
                f"refusing to replace {_shown(root)}: it is not empty and was not written by kdgen"
            )
        marker = (root / MARKER).read_bytes().decode("utf-8", "replace")
        recorded = {name for name in recorded_files(marker) if _safe_relative(name)}
        legacy = not marker.startswith("#")
    real_root = _real(root)
    for item in inputs:
        real = _real(item)
        if real == real_root or real_root in real.parents:
            raise WriteRefused(
                f"refusing to write {_shown(root)}: it holds the input {_shown(item)}"
            )
    for relative in files:
        if not _safe_relative(relative):
            raise WriteRefused(f"refusing to write {escape_controls(relative)!r}: not a plain path")
        _walk_check(root, relative)
        target_kind = _kind(root / relative)
        if target_kind == "link":
            raise WriteRefused(
                f"refusing to write {_shown(root / relative)}: it is a symbolic link, which "
                "kdgen did not create"
            )
        if target_kind not in ("missing", "file"):
            raise WriteRefused(f"refusing to write {_shown(root / relative)}: not a regular file")
        if target_kind == "file" and relative not in recorded and relative != MARKER:
            hint = (
                "; the marker was written by an older kdgen that did not list its files: "
                "remove the folder and generate it again"
                if legacy
                else ""
            )
            raise WriteRefused(
                f"refusing to replace {_shown(root / relative)}: kdgen did not write it (it is "
                f"not listed in {MARKER}){hint}"
            )
    stale = sorted(
        name
        for name in recorded - set(files)
        if _kind(root / name) == "file" and _no_link_on_the_way(root, name)
    )
    _commit(root, files, stale, recorded)


def _no_link_on_the_way(root: Path, relative: str) -> bool:
    try:
        _walk_check(root, relative)
    except WriteRefused:
        return False
    return True


def _commit(root: Path, files: Mapping[str, str], stale: list[str], recorded: set[str]) -> None:
    mode = umask_mode()
    created_root = not root.exists()
    staged: list[tuple[Path, Path]] = []
    made: list[Path] = []
    try:
        for relative, text in sorted(files.items()):
            if relative == MARKER:
                continue
            target = root / relative
            for parent in reversed([*PurePosixPath(relative).parents][:-1]):
                folder = root / parent
                if not folder.exists():
                    folder.mkdir(parents=True)
                    made.append(folder)
            if not root.exists():
                root.mkdir(parents=True)
            staged.append((_stage(target, text, mode), target))
    except BaseException:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        for folder in reversed(made):
            _remove_empty(folder)
        if created_root:
            _remove_empty(root)
        raise
    both = sorted(recorded | set(files) - {MARKER})
    replace_file(root / MARKER, marker_text(both))
    for temp, target in staged:
        os.replace(temp, target)
    for name in stale:
        (root / name).unlink(missing_ok=True)
        _prune(root, PurePosixPath(name).parent)
    replace_file(root / MARKER, files.get(MARKER, marker_text(sorted(set(files) - {MARKER}))))


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _prune(root: Path, relative: PurePosixPath) -> None:
    """Remove folders left empty by a removed file, up to (not including) ``root``."""
    while str(relative) not in ("", "."):
        folder = root / relative
        if _kind(folder) != "dir" or any(folder.iterdir()):
            return
        folder.rmdir()
        relative = relative.parent


def is_generated_stream(text: str, kinds: Iterable[str] = ()) -> bool:
    """Tell whether ``text`` looks like a stream ``kdgen generate`` wrote (empty counts).

    Every document must be a mapping labelled as made from a KusciaDeployment, or be of one of
    ``kinds`` (the inputs the stream carries along).
    """
    try:
        documents = read_documents(text, "<golden>")
    except KdgenError:
        return False
    for _, body in documents:
        if not isinstance(body, dict):
            return False
        metadata = body.get("metadata")
        labels = metadata.get("labels") if isinstance(metadata, dict) else None
        made = isinstance(labels, dict) and labels.get(LABEL_CONTROLLER) == (
            CONTROLLER_KUSCIA_DEPLOYMENT
        )
        if not made and body.get("kind") not in set(kinds):
            return False
    return True
