from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection

from audit.models import AuditEvent
from audit.partitions.partitioning import MonthlyPartitioningStrategy
from audit.services import audit_event_record, audit_partitions_maintain

pytestmark = pytest.mark.django_db


def _partitions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname, pg_get_expr(child.relpartbound, child.oid)
              FROM pg_inherits
              JOIN pg_class child ON child.oid = pg_inherits.inhrelid
             WHERE pg_inherits.inhparent = 'audit_event'::regclass
            """
        )
        return dict(cursor.fetchall())


@pytest.mark.parametrize(
    "now",
    [
        datetime(2031, 3, 1, 0, 0, tzinfo=UTC),
        datetime(2031, 3, 15, 2, 37, tzinfo=UTC),
        datetime(2031, 3, 31, 23, 59, 59, tzinfo=UTC),
    ],
)
def test_bounds_are_the_first_of_the_month_at_midnight_utc_whatever_the_hour(now):
    strategy = MonthlyPartitioningStrategy(count=4, now=now)
    bounds = [(p.from_values, p.to_values) for p in strategy.to_create()]
    assert bounds == [
        ("2031-03-01 00:00:00", "2031-04-01 00:00:00"),
        ("2031-04-01 00:00:00", "2031-05-01 00:00:00"),
        ("2031-05-01 00:00:00", "2031-06-01 00:00:00"),
        ("2031-06-01 00:00:00", "2031-07-01 00:00:00"),
    ]
    assert list(strategy.to_delete()) == []


def test_bounds_cross_the_year_and_ignore_the_callers_timezone():
    from zoneinfo import ZoneInfo

    # 31 Dec 20:00 in New York is already 1 Jan in UTC.
    now = datetime(2031, 12, 31, 20, 0, tzinfo=ZoneInfo("America/New_York"))
    names = [p.name() for p in MonthlyPartitioningStrategy(count=2, now=now).to_create()]
    assert names == ["2032_jan", "2032_feb"]


def test_maintenance_creates_the_current_and_premade_months_in_postgresql(settings):
    settings.AUDIT_PREMAKE_MONTHS = 3
    summary = audit_partitions_maintain(now=datetime(2031, 11, 24, 2, 30, tzinfo=UTC))
    assert summary.created == ["2031_nov", "2031_dec", "2032_jan", "2032_feb"]
    partitions = _partitions()
    assert partitions["audit_event_2031_nov"] == (
        "FOR VALUES FROM ('2031-11-01 00:00:00+00') TO ('2031-12-01 00:00:00+00')"
    )
    assert partitions["audit_event_2032_feb"] == (
        "FOR VALUES FROM ('2032-02-01 00:00:00+00') TO ('2032-03-01 00:00:00+00')"
    )
    assert partitions["audit_event_default"] == "DEFAULT"
    event = AuditEvent.objects.get(action="partitions_created")
    assert event.metadata["created"] == summary.created


def test_a_second_run_at_another_hour_creates_nothing_and_does_not_collide():
    audit_partitions_maintain(now=datetime(2031, 11, 24, 2, 30, tzinfo=UTC))
    again = audit_partitions_maintain(now=datetime(2031, 11, 24, 17, 5, tzinfo=UTC))
    assert again.created == []
    assert AuditEvent.objects.filter(action="partitions_created").count() == 1


def test_a_new_month_adds_one_partition():
    audit_partitions_maintain(now=datetime(2031, 11, 24, tzinfo=UTC))
    later = audit_partitions_maintain(now=datetime(2031, 12, 2, tzinfo=UTC))
    assert later.created == ["2032_mar"]


def test_events_land_in_their_month_and_outside_ones_in_the_default_partition():
    audit_partitions_maintain(now=datetime(2031, 11, 24, tzinfo=UTC))
    inside = audit_event_record(
        event_type="system",
        action="probe",
        actor="t",
        resource="r",
        timestamp=datetime(2031, 11, 30, 23, 59, 59, tzinfo=UTC),
    )
    boundary = audit_event_record(
        event_type="system",
        action="probe",
        actor="t",
        resource="r",
        timestamp=datetime(2031, 12, 1, 0, 0, tzinfo=UTC),
    )
    outside = audit_event_record(
        event_type="system",
        action="probe",
        actor="t",
        resource="r",
        timestamp=datetime(2040, 1, 1, tzinfo=UTC),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id::text, tableoid::regclass::text"
            " FROM audit_event WHERE action = 'probe'"
        )
        where = dict(cursor.fetchall())
    assert where[str(inside.event_id)] == "audit_event_2031_nov"
    assert where[str(boundary.event_id)] == "audit_event_2031_dec"
    assert where[str(outside.event_id)] == "audit_event_default"


def test_the_command_dry_run_prints_the_plan_and_creates_nothing(capsys):
    before = _partitions()
    call_command("maintain_audit_partitions", "--dry-run")
    out = capsys.readouterr().out
    assert _partitions() == before
    assert "Would create" in out or "up to date" in out


def test_the_five_indexes_exist_on_the_partitioned_table():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_event'")
        definitions = " | ".join(row[0] for row in cursor.fetchall())
    for columns in (
        '(session_id, "timestamp")',
        '(event_type, "timestamp")',
        '(actor, "timestamp")',
        '(resource, "timestamp")',
    ):
        assert columns in definitions
    assert "gin (metadata jsonb_path_ops)" in definitions
