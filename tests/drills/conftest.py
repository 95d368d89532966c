"""Drills: real processes, broken on purpose. Each prints what it did and counted."""

from collections.abc import Iterator

import pytest

from tests.drills.report import DrillReport


@pytest.fixture
def drill_report(request) -> Iterator[DrillReport]:
    """A report titled after the test; printed at the end, whether the drill passed or not."""
    report = DrillReport(request.node.name.removeprefix("test_").replace("_", " "))
    yield report
    report.print()
