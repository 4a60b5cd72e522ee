"""Errors kdgen raises, and the ``Problem`` record that validation collects.

The tree, by who must act::

    KdgenError
    ├── InputError        a file cannot be read or parsed, or a document has an unknown kind
    ├── ValidationError   the inputs are readable but wrong: carries every Problem at once
    └── ClusterError      a Kubernetes API call failed; chained from the client's ApiException

The core raises these and never prints, logs or exits. ``cli.py`` and the adapters translate
them: one line per problem on stderr and exit 1 for the CLI, ``results[]`` for the KRM function.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    r"""Show control characters as escapes, so input text cannot drive the terminal.

    Covers C0 and C1 controls, DEL, and Unicode's line separators and bidirectional
    overrides: an input's file name, key or value may hold any of them, and kdgen prints
    those in its messages.

    >>> print(escape_controls("a\x1b[31mred\nb\u202e"))
    a\x1b[31mred\nb\u202e
    """
    return _CONTROLS.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth a warning) in the input, located as precisely as we can.

    Attributes:
        message: what is wrong and what was expected, lower case, no trailing period.
        source: the file it came from (``<stdin>`` for standard input), or ``""``.
        doc_index: 1-based position of the YAML document in ``source``; 0 when unknown.
        resource: ``Kind namespace/name`` (or ``Kind name`` when cluster-scoped), or ``""``.
        field: dotted field path inside the document, such as ``spec.parties[1].role``.
        reason: the Kuscia ``KdStatusReason`` name when the controller has one for this case.
        severity: ``error`` fails the run; ``warning`` is reported and the run goes on.
    """

    message: str
    source: str = ""
    doc_index: int = 0
    resource: str = ""
    field: str = ""
    reason: str = ""
    severity: Severity = "error"

    def location(self) -> str:
        """Return ``file#doc`` (or just the file, or ``""``) for this problem."""
        if not self.source:
            return ""
        return f"{self.source}#{self.doc_index}" if self.doc_index else self.source

    def __str__(self) -> str:
        r"""Render the problem as the single line the CLI prints.

        A line break inside the message is shown as ``\n``, so one problem stays one line;
        every other control character is escaped too (``escape_controls``).

        >>> print(Problem("parties can't be empty", source="kd.yaml", doc_index=1,
        ...               resource="KusciaDeployment cross-domain/x", field="spec.parties",
        ...               reason="ValidateFailed"))  # doctest: +NORMALIZE_WHITESPACE
        kd.yaml#1: KusciaDeployment cross-domain/x: spec.parties: parties can't be empty
        [ValidateFailed]
        >>> print(Problem("bad value 'a\nb'", field="spec.x"))
        spec.x: bad value 'a\nb'
        """
        parts = [p for p in (self.location(), self.resource, self.field) if p]
        head = ": ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        text = escape_controls(text)  # one problem, one line, nothing for the terminal
        return f"{text} [{self.reason}]" if self.reason else text


class KdgenError(Exception):
    """Base class of every error kdgen raises on purpose."""


class InputError(KdgenError):
    """A file cannot be read or parsed, or holds a document kdgen does not know."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def problem_lines(problems: Iterable[Problem]) -> str:
    """Return problems as every kdgen edge prints them: ``<severity>: <problem>``, one a line.

    >>> print(problem_lines([Problem("no KD", severity="warning")]), end="")
    warning: no KD
    """
    return "".join(f"{problem.severity}: {problem}\n" for problem in problems)


class WriteRefused(KdgenError):
    """kdgen will not write where it was asked to; the message says why.

    Raised by ``kdgen.writing``; the CLI turns it into a usage error (exit status 2).
    """


class ValidationError(KdgenError):
    """The inputs are readable but break the schema or Kuscia's rules.

    Carries every problem found, not only the first, so a user fixes them in one round.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ClusterError(KdgenError):
    """A Kubernetes API call failed; ``status`` and ``reason`` are copied from the response."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)
