"""Helpers of the audit tests: events, sealing, tampering as a superuser would."""

import time
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from psqlextra.partitioning import PostgresPartitioningConfig, PostgresPartitioningManager

from audit.models import AuditEvent
from audit.partitions.partitioning import MonthlyPartitioningStrategy, guard_partitions
from audit.selectors import audit_seal_head
from audit.services import audit_event_record, audit_events_seal, audit_heads_publish


def record(count: int = 1, **fields: Any) -> list[AuditEvent]:
    """``count`` events through the service, one transaction each."""
    fields.setdefault("event_type", "system")
    fields.setdefault("action", "probe")
    fields.setdefault("actor", "test")
    fields.setdefault("resource", "test:resource")
    return [audit_event_record(**fields, metadata={"n": n}) for n in range(count)]


def unsealed_count() -> int:
    head = audit_seal_head()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM audit_event WHERE xact_id >= %s", [head.xact_to if head else 0]
        )
        return cursor.fetchone()[0]


def seal_everything(*, max_events: int | None = None, timeout: float = 60.0) -> None:
    """Seal until no committed event is left unsealed.

    A seal stops below the oldest transaction still running anywhere in the cluster, so
    another process's open transaction (another test run on the same server) delays a
    seal; it never makes it wrong. Wait that out instead of failing.
    """
    deadline = time.monotonic() + timeout
    while True:
        audit_events_seal(max_events=max_events)
        if unsealed_count() == 0:
            audit_heads_publish()  # as the beat task does after sealing
            return
        if time.monotonic() > deadline:
            raise AssertionError("events stayed unsealed: a transaction was held open")
        time.sleep(0.05)


def as_superuser(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> int:
    """Run ``sql`` with every trigger off, as a superuser tampering with the trail would
    (``session_replication_role = replica``). Returns the affected row count."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        return cursor.rowcount


def stored(event: AuditEvent, column: str) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM audit_event WHERE event_id = %s AND timestamp = %s",
            [event.event_id, event.timestamp],
        )
        return cursor.fetchone()[0]


def make_month(start: datetime) -> None:
    """The partition of ``start``'s month, guarded, as maintenance made it back then."""
    strategy = MonthlyPartitioningStrategy(count=1, now=start)
    config = PostgresPartitioningConfig(model=AuditEvent, strategy=strategy)
    PostgresPartitioningManager([config]).plan(skip_delete=True).apply()
    guard_partitions()
