"""The audit search: filters, cursor pages, and partition pruning shown by EXPLAIN."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from audit.exceptions import InvalidAuditSearch
from audit.selectors import audit_events_query
from audit.services import audit_event_record, audit_partitions_maintain

pytestmark = pytest.mark.django_db

NOV, DEC = datetime(2031, 11, 1, tzinfo=UTC), datetime(2031, 12, 1, tzinfo=UTC)


@pytest.fixture
def months() -> None:
    """Partitions October 2031 to February 2032, a few events in each month."""
    audit_partitions_maintain(now=datetime(2031, 10, 5, tzinfo=UTC))
    audit_partitions_maintain(now=datetime(2031, 11, 5, tzinfo=UTC))
    for day in range(0, 150, 5):
        moment = datetime(2031, 10, 1, tzinfo=UTC) + timedelta(days=day)
        audit_event_record(
            event_type="tool" if day % 2 else "task",
            action="post_tool",
            actor=f"agent:{day % 3}",
            resource=f"session:s{day % 4}",
            session_id=f"s{day % 4}",
            metadata={"tool_name": f"tool{day % 5}", "account_id": f"acct_{day}"},
            timestamp=moment,
        )


def _scanned(queryset) -> set[str]:
    plan = queryset.explain()
    return set(re.findall(r"on (audit_event_\w+)", plan))


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"session_id": "s1"},
        {"event_type": "tool"},
        {"actor": "agent:1"},
        {"resource": "session:s2"},
        {"metadata_contains": {"tool_name": "tool3"}},
    ],
    ids=["time only", "session", "type", "actor", "resource", "metadata"],
)
def test_a_one_month_window_scans_one_partition(months, filters):
    queryset = audit_events_query(start=NOV, end=DEC, **filters)[:50]
    assert _scanned(queryset) == {"audit_event_2031_nov"}, queryset.explain()


def test_a_cursor_page_prunes_the_months_before_it(months):
    after = (datetime(2031, 12, 10, tzinfo=UTC), "00000000-0000-0000-0000-000000000000")
    queryset = audit_events_query(start=NOV, after=after)[:50]
    assert "audit_event_2031_nov" not in _scanned(queryset)


def test_without_a_time_range_every_partition_is_scanned(months):
    scanned = _scanned(audit_events_query(session_id="s1")[:50])
    assert {"audit_event_2031_oct", "audit_event_2031_nov", "audit_event_2032_feb"} <= scanned


def test_filters_combine_and_results_come_in_cursor_order(months):
    found = list(audit_events_query(start=NOV, end=DEC, session_id="s2", event_type="task"))
    assert found
    assert all(e.session_id == "s2" and e.event_type == "task" for e in found)
    assert all(NOV <= e.timestamp < DEC for e in found)
    assert [(e.timestamp, e.event_id) for e in found] == sorted(
        (e.timestamp, e.event_id) for e in found
    )
    contained = list(audit_events_query(metadata_contains={"account_id": "acct_35"}))
    assert [e.metadata["account_id"] for e in contained] == ["acct_35"]


def test_cursor_pagination_walks_every_event_once_even_with_equal_timestamps(months):
    moment = datetime(2031, 11, 20, tzinfo=UTC)
    for _ in range(7):
        audit_event_record(
            event_type="tool", action="tie", actor="a", resource="r", timestamp=moment
        )
    expected = [e.event_id for e in audit_events_query(start=NOV, end=DEC)]
    walked, after = [], None
    while page := list(audit_events_query(start=NOV, end=DEC, after=after)[:3]):
        walked += [e.event_id for e in page]
        after = (page[-1].timestamp, page[-1].event_id)
    assert walked == expected
    assert len(walked) == len(set(walked))


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"start": DEC, "end": NOV}, "start"),
        ({"start": NOV, "end": NOV}, "start"),
        ({"metadata_contains": ["a"]}, "metadata_contains"),
        ({"after": ("not", "a cursor")}, "after"),
        ({"after": (NOV,)}, "after"),
    ],
)
def test_invalid_searches_are_refused_with_the_field_named(arguments, field):
    with pytest.raises(InvalidAuditSearch) as caught:
        audit_events_query(**arguments)
    assert caught.value.field == field
