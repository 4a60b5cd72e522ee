"""Shared pytest options and helpers.

``--update-golden`` rewrites the expected files of golden cases instead of comparing; review
the diff like code before committing it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden/*/expected.yaml and errors.txt from the current output",
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many hostile inputs and property examples ran (issue 10: counts reported)."""
    from tests.hostile import report

    for name, count in sorted(report.COUNTS.items()):
        terminalreporter.write_line(f"kdgen {name}: {count}")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
