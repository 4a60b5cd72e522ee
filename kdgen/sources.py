"""Read input files, directories and standard input into ``Source`` records.

This is the input edge of the generator: the only place that touches the file system on the
way in. A directory contributes its ``*.yaml``, ``*.yml`` and ``*.json`` files (not
sub-directories), sorted by name, so the same tree always gives the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from kdgen.errors import InputError, Problem
from kdgen.load import Source

STDIN = "-"
_SUFFIXES = (".yaml", ".yml", ".json")


def read_sources(paths: Sequence[str], *, stdin: TextIO) -> list[Source]:
    """Read every path (``-`` is standard input, read once) into Sources.

    Raises:
        InputError: naming every path that does not exist or cannot be read.
    """
    sources: list[Source] = []
    problems: list[Problem] = []
    for path in paths:
        if path == STDIN:
            sources.append(Source("<stdin>", stdin.read()))
            continue
        for file in _expand(Path(path), problems):
            try:
                sources.append(Source(str(file), file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as err:
                problems.append(Problem(f"cannot read file: {err}", source=str(file)))
    if problems:
        raise InputError(problems)
    return sources


def _expand(path: Path, problems: list[Problem]) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _SUFFIXES)
    if path.is_file():
        return [path]
    problems.append(Problem("no such file or directory", source=str(path)))
    return []
