"""Counts the hostile tests report at the end of the pytest run (see tests/conftest.py)."""

from __future__ import annotations

COUNTS: dict[str, int] = {}


def add(name: str, count: int) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + count
