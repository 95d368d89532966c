"""Drills: real processes, broken on purpose. Each prints what it did and counted."""

import logging
from collections.abc import Iterator

import pytest

from tests.drills.report import DrillReport


@pytest.fixture
def drill_report(request) -> Iterator[DrillReport]:
    """A report titled after the test; printed at the end, whether the drill passed or not."""
    report = DrillReport(request.node.name.removeprefix("test_").replace("_", " "))
    yield report
    report.print()


@pytest.fixture(autouse=True)
def _quiet_clients() -> None:
    """A drill sends thousands of requests; its report says what they did."""
    for name in ("httpx", "pgserver"):
        logging.getLogger(name).setLevel(logging.WARNING)
