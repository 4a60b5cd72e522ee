"""Read input files, directories and standard input into ``Source`` records.

This is the input edge of the generator: the only place that touches the file system on the
way in. A directory contributes its ``*.yaml``, ``*.yml`` and ``*.json`` files (not
sub-directories), sorted by name, so the same tree always gives the same order.

Nothing is skipped without a word: an empty path, a path that does not exist, an unreadable
directory or file, a dangling symbolic link or a link loop among a directory's entries, a
special file (a FIFO would block), bytes that are not UTF-8 or hold a NUL, and input beyond
``kdgen.limits.MAX_INPUT_BYTES`` are each reported on one line. When a tool gives a ``root``
(the adapters do), every path and every directory entry must resolve inside it
(``kdgen.confine``).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from kdgen import limits
from kdgen.confine import Escape, confined_path
from kdgen.errors import InputError, Problem
from kdgen.load import Source

STDIN = "-"
_SUFFIXES = (".yaml", ".yml", ".json")
BOM = "\ufeff"


def read_sources(
    paths: Sequence[str],
    *,
    stdin: TextIO,
    root: Path | None = None,
    parameters: Sequence[str] = (),
    origin: str = "",
) -> list[Source]:
    """Read every path (``-`` is standard input, read once) into Sources.

    Args:
        paths: files, directories or ``-``.
        stdin: standard input (read as bytes through ``stdin.buffer`` when it has one).
        root: when given, every path (and every file of a directory) must resolve inside it,
            symbolic links followed (``kdgen.confine``).
        parameters: the setting that named each path, for messages (``spec.files[0]``);
            defaults to the path itself.
        origin: the ``source`` of a problem about a refused path (the tool's config).

    Raises:
        InputError: naming every path that is refused or cannot be read.
    """
    sources: list[Source] = []
    problems: list[Problem] = []
    budget = [limits.MAX_INPUT_BYTES]
    for position, path in enumerate(paths):
        parameter = parameters[position] if position < len(parameters) else ""
        if path == STDIN and root is None:
            sources.append(Source("<stdin>", read_stdin(stdin, budget)))
            continue
        if not path:
            problems.append(Problem("path is empty", source=origin, field=parameter))
            continue
        if root is not None:
            try:
                confined_path(root, path, parameter or path)
            except Escape as err:
                problems.append(replace(err.problem, source=origin))
                continue
        for file in _expand(Path(path), problems, root, parameter or path, origin):
            try:
                sources.append(Source(str(file), _read_file(file, str(file), budget)))
            except InputError as err:
                problems.extend(err.problems)
    if problems:
        raise InputError(problems)
    return sources


def read_stdin(stdin: TextIO, budget: list[int] | None = None) -> str:
    """Read standard input as UTF-8, within the byte budget.

    Raises:
        InputError: the bytes are too many, not UTF-8, or hold a NUL.
    """
    budget = budget if budget is not None else [limits.MAX_INPUT_BYTES]
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        data: bytes = buffer.read(budget[0] + 1)
    else:
        data = stdin.read(budget[0] + 1).encode("utf-8", "surrogatepass")
    return decode(data, "<stdin>", budget)


def decode(data: bytes, name: str, budget: list[int] | None = None) -> str:
    r"""Return ``data`` as text: UTF-8, a leading byte order mark dropped, no NUL.

    ``budget`` holds the bytes the run may still read; this input's length is taken from it.

    Raises:
        InputError: one located line for the first problem.

    >>> decode(b"\xef\xbb\xbfa: 1\n", "x.yaml")
    'a: 1\n'
    >>> decode(b"a: 1\nb: \xff\n", "x.yaml")
    Traceback (most recent call last):
    ...
    kdgen.errors.InputError: x.yaml: line 2, column 4: not valid UTF-8 (byte 0xff)
    """
    budget = budget if budget is not None else [limits.MAX_INPUT_BYTES]
    if len(data) > budget[0]:
        raise InputError(
            [
                Problem(
                    f"input is larger than the limit of {limits.MAX_INPUT_BYTES} bytes for one run",
                    source=name,
                )
            ]
        )
    budget[0] -= len(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        where = _where(data, err.start)
        bad = data[err.start]
        problem = Problem(f"{where}: not valid UTF-8 (byte 0x{bad:02x})", source=name)
        raise InputError([problem]) from None
    nul = text.find("\0")
    if nul >= 0:
        where = _where(text, nul)
        raise InputError([Problem(f"{where}: NUL byte; kdgen reads text files", source=name)])
    return text.removeprefix(BOM)


def _where(data: bytes | str, offset: int) -> str:
    newline: bytes | str = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset) + 1  # type: ignore[arg-type]
    column = offset - (data.rfind(newline, 0, offset) + 1) + 1  # type: ignore[arg-type]
    return f"line {line}, column {column}"


def read_text_file(file: Path, name: str) -> str:
    """Read one file as ``read_sources`` would (bounded, UTF-8, no NUL), named ``name``.

    Raises:
        InputError: one located line.
    """
    return _read_file(file, name, [limits.MAX_INPUT_BYTES])


def _read_file(file: Path, name: str, budget: list[int]) -> str:
    try:
        with open(file, "rb") as handle:
            data = handle.read(budget[0] + 1)
    except OSError as err:
        raise InputError([Problem(f"cannot read file: {err.strerror}", source=name)]) from err
    return decode(data, name, budget)


def _expand(
    path: Path, problems: list[Problem], root: Path | None, parameter: str, origin: str
) -> list[Path]:
    shown = str(path)
    status = _status(path, shown, problems)
    if status is None:
        return []
    if not stat.S_ISDIR(status.st_mode):
        return [path]
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except OSError as err:
        problems.append(Problem(f"cannot read directory: {err.strerror}", source=shown))
        return []
    files = []
    for entry in entries:
        if not entry.name.endswith(_SUFFIXES):
            continue
        file = path / entry.name
        entry_shown = str(file)
        status = _status(file, entry_shown, problems)
        if status is None or stat.S_ISDIR(status.st_mode):
            continue
        if not stat.S_ISREG(status.st_mode):
            problems.append(Problem("not a regular file", source=entry_shown))
            continue
        if root is not None:
            try:
                confined_path(root, str(file), f"{parameter} ({entry.name})")
            except Escape as err:
                problems.append(replace(err.problem, source=origin))
                continue
        files.append(file)
    return files


def _status(path: Path, shown: str, problems: list[Problem]) -> os.stat_result | None:
    """``stat`` the path, following links; report why it cannot be, naming link problems."""
    try:
        return os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            message = "symbolic link loop"
        elif err.errno == errno.ENOENT and os.path.islink(path):
            message = f"dangling symbolic link to {os.readlink(path)!r}"
        elif err.errno == errno.ENOENT:
            message = "no such file or directory"
        else:
            message = f"cannot read: {err.strerror}"
        problems.append(Problem(message, source=shown))
        return None
