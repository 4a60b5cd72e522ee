"""Run one golden case: ``golden/<case>/input/`` (+ ``options.yaml``) through kdgen.

A case expects either ``expected.yaml`` (the output stream, followed by nothing) or
``errors.txt`` (exactly the lines the CLI prints for the problems, errors and warnings).
Warnings of a successful case go to ``warnings.txt`` when there are any.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kdgen.errors import KdgenError, problem_lines
from kdgen.expand import expand
from kdgen.load import Source, parse_sources
from kdgen.model import Options, PortMode, Profile
from kdgen.render import render_stream

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
OPTION_KEYS = {"profile", "ports"}
"""What ``options.yaml`` may set; Inventory facts go in an Inventory document under input/."""


@dataclass(frozen=True)
class Outcome:
    files: dict[str, str]
    """Expected file name -> its text (expected.yaml, warnings.txt or errors.txt)."""


def case_names() -> list[str]:
    return sorted(p.name for p in GOLDEN.iterdir() if (p / "input").is_dir())


def case_options(case: Path) -> Options:
    path = case / "options.yaml"
    raw: dict[str, Any] = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    unknown = set(raw) - OPTION_KEYS
    if unknown:
        raise ValueError(
            f"{path}: unknown option(s) {sorted(unknown)}; known: {sorted(OPTION_KEYS)}"
        )
    return Options(
        profile=Profile(raw.get("profile", "kuscia")), ports=PortMode(raw.get("ports", "declared"))
    )


def case_sources(case: Path) -> list[Source]:
    inputs = case / "input"
    return [
        Source(f"input/{p.name}", p.read_text(encoding="utf-8"))
        for p in sorted(inputs.iterdir())
        if p.suffix in (".yaml", ".yml", ".json")
    ]


def run_case(case: Path, sources: list[Source] | None = None) -> Outcome:
    try:
        expansion = expand(parse_sources(sources or case_sources(case)), case_options(case))
    except KdgenError as err:
        return Outcome({"errors.txt": problem_lines(getattr(err, "problems", ()))})
    files = {"expected.yaml": render_stream(expansion.objects)}
    if expansion.warnings:
        files["warnings.txt"] = problem_lines(expansion.warnings)
    return Outcome(files)
