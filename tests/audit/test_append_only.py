"""PostgreSQL itself refuses UPDATE, DELETE and TRUNCATE on the audit tables, on every
partition, including partitions created after the migration."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.partitions.partitioning import partitions
from audit.services import audit_partitions_maintain
from tests.audit.support import record, stored

pytestmark = pytest.mark.django_db

REFUSED = "the audit trail is append-only"


def _refused(sql: str, params: list | None = None) -> str:
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params or [])
    return str(caught.value)


def _future_event() -> AuditEvent:
    """An event in a month whose partition maintenance creates now, after the migration."""
    audit_partitions_maintain(now=datetime(2031, 11, 24, tzinfo=UTC))
    (event,) = record(1, timestamp=datetime(2031, 12, 5, tzinfo=UTC))
    return event


def test_update_and_delete_are_refused_on_the_parent_table():
    (event,) = record(1)
    message = _refused(
        "UPDATE audit_event SET actor = 'someone else' WHERE event_id = %s", [event.event_id]
    )
    assert REFUSED in message
    assert "UPDATE" in message
    assert "DELETE" in _refused("DELETE FROM audit_event WHERE event_id = %s", [event.event_id])
    assert AuditEvent.objects.filter(event_id=event.event_id, actor="test").exists()


def test_the_orm_cannot_update_or_delete_events_either():
    (event,) = record(1)
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        AuditEvent.objects.filter(event_id=event.event_id).update(action="other")
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        AuditEvent.objects.filter(event_id=event.event_id).delete()


def test_truncate_is_refused_on_the_parent_and_on_each_partition():
    record(1)
    assert "TRUNCATE" in _refused("TRUNCATE audit_event")
    for partition in partitions():
        assert REFUSED in _refused(f'TRUNCATE "{partition.name}"'), partition.name


def test_a_partition_created_by_maintenance_after_the_migration_is_guarded_too():
    event = _future_event()
    assert "audit_event_2031_dec" in {p.name for p in partitions()}
    assert "audit_event_2031_dec" in _refused(
        'UPDATE "audit_event_2031_dec" SET action = %s', ["changed"]
    )
    assert "DELETE" in _refused("DELETE FROM audit_event WHERE event_id = %s", [event.event_id])
    assert "TRUNCATE" in _refused('TRUNCATE "audit_event_2031_dec"')
    assert AuditEvent.objects.filter(event_id=event.event_id).exists()


def test_the_default_partition_is_guarded():
    (event,) = record(1, timestamp=datetime(2045, 1, 1, tzinfo=UTC))
    assert REFUSED in _refused(
        'DELETE FROM "audit_event_default" WHERE event_id = %s', [event.event_id]
    )
    assert REFUSED in _refused('TRUNCATE "audit_event_default"')


def test_an_upsert_cannot_rewrite_an_event():
    (event,) = record(1)
    message = _refused(
        """
        INSERT INTO audit_event (event_id, "timestamp", event_type, actor, action, resource,
                                 metadata)
        VALUES (%s, %s, 'system', 'intruder', 'probe', 'r', '{}')
        ON CONFLICT (event_id, "timestamp") DO UPDATE SET actor = EXCLUDED.actor
        """,
        [event.event_id, event.timestamp],
    )
    assert REFUSED in message


def test_seals_and_archive_records_are_append_only():
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_archive (partition, range_start, range_end, event_count, path,"
            " sha256, dropped_at) VALUES ('p', now(), now(), 0, 'x', 'y', now())"
        )
        cursor.execute(
            "INSERT INTO audit_seal (number, previous_hash, hash, xact_from, xact_to,"
            " event_count, first_timestamp, last_timestamp, sealed_at, members_digest, members)"
            " VALUES (1, '\\x00', '\\x01', 0, 1, 1, now(), now(), now(), '\\x02', '\\x03')"
        )
    assert REFUSED in _refused("UPDATE audit_archive SET path = 'elsewhere'")
    assert REFUSED in _refused("DELETE FROM audit_archive")
    assert REFUSED in _refused("TRUNCATE audit_archive")
    assert REFUSED in _refused("UPDATE audit_seal SET event_count = 2")
    assert REFUSED in _refused("DELETE FROM audit_seal")
    assert REFUSED in _refused("TRUNCATE audit_seal")


def test_client_supplied_hashes_and_transaction_ids_are_replaced_by_the_trigger():
    event_id = uuid.uuid4()
    moment = datetime(2026, 11, 2, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audit_event (event_id, "timestamp", event_type, actor, action,
                                     resource, metadata, content_hash, xact_id)
            VALUES (%s, %s, 'system', 'a', 'b', 'c', '{}', '\\x00', 1)
            """,
            [event_id, moment],
        )
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        xact = cursor.fetchone()[0]
    event = AuditEvent.objects.get(event_id=event_id)
    assert stored(event, "xact_id") == xact
    assert len(bytes(stored(event, "content_hash"))) == 32


def test_bulk_inserts_with_conflicts_ignored_get_hashes_too():
    events = [
        AuditEvent(event_type="tool", actor="agent:x", action="pre_tool", resource="r")
        for _ in range(3)
    ]
    AuditEvent.objects.bulk_create(events)
    AuditEvent.objects.bulk_create(events, ignore_conflicts=True)  # a replayed batch
    assert AuditEvent.objects.filter(actor="agent:x").count() == 3
    for event in events:
        assert len(bytes(stored(event, "content_hash"))) == 32
