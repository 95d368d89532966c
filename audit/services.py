"""Writes to the audit trail. Callers record inside the transaction of the change."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Field, JSONField

from audit.models import AuditEvent, AuditEventType
from audit.partitioning import partitioning_manager

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"


def audit_event_record(
    *,
    event_type: AuditEventType | str,
    action: str,
    actor: str,
    resource: str,
    session_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    timestamp: datetime | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the transaction of the change it records, so
    the change and its event commit or roll back together."""
    fields: dict[str, Any] = {
        "event_type": str(event_type),
        "action": action,
        "actor": actor or SYSTEM_ACTOR,
        "resource": resource,
        "session_id": session_id,
        "metadata": metadata or {},
    }
    if timestamp is not None:
        fields["timestamp"] = timestamp
    return AuditEvent.objects.create(**fields)


def audit_events_record_many(
    events: Sequence[AuditEvent], *, dedupe_window: timedelta
) -> list[AuditEvent]:
    """Append a batch of events whose ids the caller chose; return the ones that were new.

    An event is already in the trail when a row with its ``event_id`` exists within
    ``dedupe_window`` of the batch's time span (one probe of the partitions' primary-key
    indexes), or when a row has exactly its (event_id, timestamp): ``ON CONFLICT`` catches
    that one even against a concurrent insert of the same batch. Within the batch the
    first event with an id wins. Call inside the transaction of the change it records.
    """
    unique: dict[Any, AuditEvent] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    if not unique:
        return []
    stamps = [event.timestamp for event in unique.values()]
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    # A server-side-binding cursor with binary parameters: Django's default client-side
    # binding would quote thousands of ids and array elements into the SQL, in Python.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _SEEN_SQL, [list(unique), min(stamps) - dedupe_window, max(stamps) + dedupe_window]
        )
        seen = {row[0] for row in cursor.fetchall()}
        fresh = [event for event_id, event in unique.items() if event_id not in seen]
        if not fresh:
            return []
        cursor.execute(*_insert_many_sql(fresh))
        inserted = {row[0] for row in cursor.fetchall()}
    return [event for event in fresh if event.event_id in inserted]


_SEEN_SQL = (
    'SELECT event_id FROM audit_event WHERE event_id = ANY(%b) AND "timestamp" BETWEEN %b AND %b'
)


def _insert_many_sql(events: list[AuditEvent]) -> tuple[str, list[Any]]:
    """One ``INSERT ... SELECT FROM unnest(arrays)`` for every concrete column of the model,
    so a column added to ``AuditEvent`` is written here without touching this code."""
    fields = list(AuditEvent._meta.concrete_fields)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    arrays = ", ".join(f"%b::{field.db_type(connection)}[]" for field in fields)
    params = [_column(field, events) for field in fields]
    sql = (
        f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({columns}) "
        f"SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({quote('event_id')}, {quote('timestamp')}) DO NOTHING "
        f"RETURNING {quote('event_id')}"
    )
    return sql, params


def _column(field: Field, events: list[AuditEvent]) -> list[Any]:
    values = [getattr(event, field.attname) for event in events]
    if not isinstance(field, JSONField):
        return values  # psycopg adapts UUIDs, datetimes and strings itself
    database = connections[DEFAULT_DB_ALIAS]
    return [field.get_db_prep_save(value, database) for value in values]


@dataclass(frozen=True)
class PartitionPlanSummary:
    created: list[str]
    dry_run: bool


def audit_partitions_maintain(
    *, dry_run: bool = False, actor: str = SYSTEM_ACTOR, now: datetime | None = None
) -> PartitionPlanSummary:
    """Create the current month's partition and ``AUDIT_PREMAKE_MONTHS`` after it.

    Idempotent: existing partitions are left alone. Never deletes a partition.
    """
    plan = partitioning_manager(now=now).plan(skip_delete=True)
    created = [partition.name() for partition in plan.creations]
    if dry_run or not created:
        return PartitionPlanSummary(created=created, dry_run=dry_run)
    with transaction.atomic():
        plan.apply()
        audit_event_record(
            event_type=AuditEventType.SYSTEM,
            action="partitions_created",
            actor=actor,
            resource="table:audit_event",
            metadata={"created": created},
        )
    logger.info("Created audit partitions: %s", ", ".join(created))
    return PartitionPlanSummary(created=created, dry_run=False)
