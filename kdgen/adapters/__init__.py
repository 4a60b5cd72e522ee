"""The protocol edges other tools call kdgen through: KRM function, kustomize exec plugin, Argo CD.

Each adapter does three things and nothing more (STYLE.md §7.1 "Adapters contain no logic"):
read its tool's protocol into ``Source`` records and ``Options``, call ``parse_sources`` and
``expand``, and write its tool's protocol. Each returns an ``Outcome`` (the text for stdout and
stderr, and the exit status) instead of printing, so ``plugin_cli.py`` is the only place that
writes, and tests can call an adapter in-process as well as through its shell shim.

Error edges (STYLE.md §7.4): the KRM function turns problems into ``results[]`` and exits 1 when
any is an error; the kustomize exec plugin and the Argo CD plugin print one line per problem on
stderr, in the CLI's form (``error: <problem>``), and exit 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from kdgen.errors import InputError, Problem
from kdgen.model import Options, PortMode, Profile

E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an adapter run writes: standard output, standard error and the exit status."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


def read_options(
    profile: Any,
    ports: Any,
    include_sources: Any = None,
    *,
    at: Callable[[str], Problem],
) -> Options:
    """Return the ``Options`` spelled by a tool's settings (empty or ``None`` means default).

    Args:
        profile: the ``--profile`` value as the tool passed it (a YAML value is read as text).
        ports: the ``--ports`` value as the tool passed it.
        include_sources: ``true`` or ``false`` (a YAML boolean or its text), for
            ``--[no-]include-sources``.
        at: returns the problem locating a setting (``"profile"``, ``"ports"`` or
            ``"includeSources"``) in the tool's terms; its message is filled in here.

    Raises:
        InputError: naming every setting that is not one of its allowed values.

    >>> read_options("plain", None, at=lambda name: Problem("", field=name)).profile
    <Profile.PLAIN: 'plain'>
    >>> read_options(None, None, "false", at=lambda name: Problem("", field=name)).include_sources
    False
    >>> read_options("x", "y", "no", at=lambda name: Problem("", field=name))
    Traceback (most recent call last):
    ...
    kdgen.errors.InputError: profile: must be one of kuscia, plain, not 'x'
    ports: must be one of declared, allocated, not 'y'
    includeSources: must be one of true, false, not 'no'
    """
    problems: list[Problem] = []
    defaults = Options()
    chosen = Options(
        profile=_choose(profile, Profile, defaults.profile, at("profile"), problems),
        ports=_choose(ports, PortMode, defaults.ports, at("ports"), problems),
        include_sources=_choose_bool(
            include_sources, defaults.include_sources, at("includeSources"), problems
        ),
    )
    if problems:
        raise InputError(problems)
    return chosen


def _choose_bool(value: Any, default: bool, at: Problem, found: list[Problem]) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value)
    if text in ("true", "false"):
        return text == "true"
    found.append(replace(at, message=f"must be one of true, false, not {text!r}"))
    return default


def _choose(value: Any, enum: type[E], default: E, at: Problem, found: list[Problem]) -> E:
    if value is None or value == "":
        return default
    value = str(value)
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        found.append(replace(at, message=f"must be one of {allowed}, not {value!r}"))
        return default
