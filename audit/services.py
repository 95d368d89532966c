"""Writes to the audit trail. Callers record inside the transaction of the change."""

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from audit.models import AuditEvent, AuditEventType
from audit.partitioning import partitioning_manager
from sergas.pgcopy import copy_rows

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
    return AuditEvent.objects.create(
        **_event_fields(
            event_type=event_type,
            action=action,
            actor=actor,
            resource=resource,
            session_id=session_id,
            metadata=metadata,
            timestamp=timestamp,
        )
    )


def audit_events_record_many(events: Iterable[dict[str, Any]]) -> int:
    """Append many events (each the keyword arguments of ``audit_event_record``) with one
    COPY; for bulk operations such as dispatching thousands of runs."""
    now = timezone.now()
    return copy_rows(
        AuditEvent._meta.db_table,
        _COPY_COLUMNS,
        (
            (
                uuid.uuid4(),
                fields.get("timestamp", now),
                fields["session_id"],
                fields["event_type"],
                fields["actor"],
                fields["action"],
                fields["resource"],
                Jsonb(fields["metadata"]),
            )
            for fields in (_event_fields(**event) for event in events)
        ),
    )


_COPY_COLUMNS = [
    "event_id",
    "timestamp",
    "session_id",
    "event_type",
    "actor",
    "action",
    "resource",
    "metadata",
]


def _event_fields(
    *,
    event_type: AuditEventType | str,
    action: str,
    actor: str,
    resource: str,
    session_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
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
    return fields


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
