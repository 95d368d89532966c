"""Rows that landed in the default partition are reported, and --repair moves them into
partitions of their months without touching a hash or a seal."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.integrity.verification import audit_trail_verify
from audit.models import AuditEvent
from audit.partitions.partitioning import partitions
from audit.services import audit_partitions_maintain
from tests.audit.support import record, seal_everything, stored

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("drop_new_partitions"),
]

NOW = datetime(2031, 11, 24, 2, 30, tzinfo=UTC)


@pytest.fixture
def strays() -> dict[str, list[AuditEvent]]:
    """Events written while no partition existed for their months. (The partitions of
    the real current month exist, so maintenance's own events do not add strays.)"""
    audit_partitions_maintain()
    events = {
        "audit_event_2031_dec": record(3, timestamp=datetime(2031, 12, 31, 23, 59, tzinfo=UTC)),
        "audit_event_2040_jan": record(2, timestamp=datetime(2040, 1, 1, tzinfo=UTC)),
    }
    seal_everything()
    return events


def _tables(events: list[AuditEvent]) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tableoid::regclass::text FROM audit_event WHERE event_id = ANY(%s)",
            [[event.event_id for event in events]],
        )
        return {row[0] for row in cursor.fetchall()}


def test_default_rows_are_reported_and_block_only_their_own_month(strays):
    report = audit_partitions_maintain(now=NOW)
    assert report.default_rows == {"audit_event_2031_dec": 3, "audit_event_2040_jan": 2}
    assert report.blocked == ["audit_event_2031_dec"]
    assert report.created == ["2031_nov", "2032_jan", "2032_feb"]
    assert _tables(strays["audit_event_2031_dec"]) == {"audit_event_default"}


def test_the_command_tells_the_operator_to_repair(strays, capsys):
    call_command("maintain_audit_partitions")
    out = capsys.readouterr().out
    assert "The default partition holds 3 event(s) of audit_event_2031_dec" in out
    assert "run with --repair" in out


def test_repair_moves_rows_keeping_their_hashes_and_seals_valid(strays):
    hashes = {
        event.event_id: bytes(stored(event, "content_hash"))
        for events in strays.values()
        for event in events
    }
    report = audit_partitions_maintain(now=NOW, repair=True)

    assert report.repaired == {"audit_event_2031_dec": 3, "audit_event_2040_jan": 2}
    assert "2031_dec" not in report.created
    for name, events in strays.items():
        assert _tables(events) == {name}
        for event in events:
            assert bytes(stored(event, "content_hash")) == hashes[event.event_id]
    with connection.cursor() as cursor:  # what is left there: this run's own events ("now")
        cursor.execute('SELECT count(*) FROM audit_event_default WHERE "timestamp" > %s', [NOW])
        assert cursor.fetchone()[0] == 0
    assert AuditEvent.objects.get(action="default_partition_repaired").metadata["moved"] == {
        "audit_event_2031_dec": 3,
        "audit_event_2040_jan": 2,
    }
    verification = audit_trail_verify()
    assert verification.ok, verification.problems


def test_repaired_partitions_and_the_reattached_default_are_guarded(strays):
    audit_partitions_maintain(now=NOW, repair=True)
    (moved,) = strays["audit_event_2040_jan"][:1]
    for statement in (
        ("UPDATE audit_event SET actor = 'x' WHERE event_id = %s", [moved.event_id]),
        ('TRUNCATE "audit_event_2040_jan"', []),
        ('TRUNCATE "audit_event_default"', []),
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(*statement)
    # New strays still land in the default partition after the repair.
    (stray,) = record(1, timestamp=datetime(2050, 6, 1, tzinfo=UTC))
    assert _tables([stray]) == {"audit_event_default"}
    assert audit_trail_verify().ok


def test_the_repair_dry_run_prints_the_moves_and_changes_nothing(strays, capsys):
    before = {partition.name for partition in partitions()}
    call_command("maintain_audit_partitions", "--dry-run", "--repair")
    out = capsys.readouterr().out
    assert "Would move 3 event(s) from the default partition into audit_event_2031_dec" in out
    assert "Would move 2 event(s) from the default partition into audit_event_2040_jan" in out
    assert {partition.name for partition in partitions()} == before
    assert _tables(strays["audit_event_2031_dec"]) == {"audit_event_default"}


def test_repair_then_maintenance_again_is_a_no_op(strays):
    audit_partitions_maintain(now=NOW, repair=True)
    events = AuditEvent.objects.count()
    again = audit_partitions_maintain(now=NOW, repair=True)
    assert (again.repaired, again.created, again.default_rows) == ({}, [], {})
    assert AuditEvent.objects.count() == events


def test_the_daily_task_repairs_a_few_rows_by_itself(strays):
    from audit.tasks import maintain_audit_partitions

    result = maintain_audit_partitions()  # as beat runs it, in this process
    assert result["repaired"] == {"audit_event_2031_dec": 3, "audit_event_2040_jan": 2}
    assert result["repair_declined"] == ""
    assert _tables(strays["audit_event_2031_dec"]) == {"audit_event_2031_dec"}
    assert _tables(strays["audit_event_2040_jan"]) == {"audit_event_2040_jan"}
    assert AuditEvent.objects.filter(action="default_partition_repaired").count() == 1
    assert audit_trail_verify().ok


def test_the_daily_task_leaves_many_rows_to_an_operator(strays, settings):
    settings.AUDIT_AUTO_REPAIR_MAX_ROWS = 4  # five strays
    report = audit_partitions_maintain(now=NOW, auto_repair=True)
    assert report.repaired == {}
    assert "5 rows in the default partition" in report.repair_declined
    assert "--repair" in report.repair_declined
    assert _tables(strays["audit_event_2031_dec"]) == {"audit_event_default"}
    settings.AUDIT_AUTO_REPAIR_MAX_ROWS = 0  # never by itself
    assert audit_partitions_maintain(now=NOW, auto_repair=True).repaired == {}
