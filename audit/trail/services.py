"""Recording events: one, many with client ids (replays recognised), many generated."""

import functools
import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from django.db import connection
from django.utils import timezone
from psycopg.types.json import Jsonb

from audit.integrity.canonical import EVENT_KEYS
from audit.models import AuditEvent, AuditEventType
from kernel.encoding import PreciseJSONEncoder
from kernel.logs import context as log_context
from kernel.pgcopy import copy_rows, json_rows_insert_sql

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
    the change and its event commit or roll back together. Within a request, or a task
    a request enqueued, its metadata gets the ``request_id``."""
    return AuditEvent.objects.create(
        **_event_fields(
            event_type=event_type,
            action=action,
            actor=actor,
            resource=resource,
            session_id=session_id,
            metadata=metadata,
            timestamp=timestamp,
            request_id=log_context.request_id(),
        )
    )


def audit_export_record(*, fmt: str, filters: Mapping[str, Any], actor: str) -> AuditEvent:
    """Who downloaded which events: every export of the trail (the dashboard's explorer,
    the API's session trail) is itself an event, ``system`` / ``audit_export`` on
    ``table:audit_event`` with the format and the filters. Recorded once per download,
    before the first line is streamed."""
    return audit_event_record(
        event_type=AuditEventType.SYSTEM,
        action="audit_export",
        actor=actor,
        resource=f"table:{AuditEvent._meta.db_table}",
        metadata={
            "format": fmt,
            "filters": json.loads(json.dumps(filters, cls=PreciseJSONEncoder)),
        },
    )


def audit_events_record_generated(events: Iterable[dict[str, Any]]) -> int:
    """Append many events the system itself produced (each the keyword arguments of
    ``audit_event_record``; ids are assigned here) with one COPY: for bulk operations
    such as dispatching thousands of runs. Events whose ids a client chose go through
    ``audit_events_record_many``, which recognises replays."""
    now = timezone.now()
    request_id = log_context.request_id()
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
            for fields in (_event_fields(**event, request_id=request_id) for event in events)
        ),
    )


_COPY_COLUMNS = list(EVENT_KEYS)


def _event_fields(
    *,
    event_type: AuditEventType | str,
    action: str,
    actor: str,
    resource: str,
    session_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    timestamp: datetime | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_type": str(event_type),
        "action": action,
        "actor": actor or SYSTEM_ACTOR,
        "resource": resource,
        "session_id": session_id,
        "metadata": _with_request_id(metadata or {}, request_id),
    }
    if timestamp is not None:
        fields["timestamp"] = timestamp
    return fields


def _with_request_id(metadata: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    """The metadata of an event recorded for a request (``kernel.logs``): one id finds
    the request's log lines, its tasks and its events. Ours wins over a caller's key."""
    if request_id is None:
        return metadata
    return {**metadata, "request_id": request_id}


def audit_events_record_many(
    events: Sequence[Mapping[str, Any]], *, dedupe_window: timedelta
) -> list[Mapping[str, Any]]:
    """Append a batch of events whose ids the caller chose; return the ones that were new.

    Each event maps ``AuditEvent`` field names to values; ``event_id`` and ``timestamp``
    are required, other fields take their model defaults. An event is already in the
    trail when a row with its ``event_id`` exists within ``dedupe_window`` of the batch's
    time span (one probe of the partitions' primary-key indexes), or when a row has
    exactly its (event_id, timestamp): ``ON CONFLICT`` catches that one even against a
    concurrent insert of the same batch. Within the batch the first event with an id
    wins. Call inside the transaction of the change it records. Within a request the
    stored metadata gets the ``request_id``.
    """
    request_id = log_context.request_id()
    unique: dict[Any, Mapping[str, Any]] = {}
    for event in events:
        if request_id is not None:
            metadata = dict(event.get("metadata") or {})
            event = {**event, "metadata": _with_request_id(metadata, request_id)}
        unique.setdefault(event["event_id"], event)
    if not unique:
        return []
    stamps = [event["timestamp"] for event in unique.values()]
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    # Server-side binding: Django's default client-side binding would quote a thousand
    # ids into the SQL text, in Python.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _SEEN_SQL, [list(unique), min(stamps) - dedupe_window, max(stamps) + dedupe_window]
        )
        seen = {row[0] for row in cursor.fetchall()}
        fresh = [event for event_id, event in unique.items() if event_id not in seen]
        if not fresh:
            return []
        cursor.execute(_insert_many_sql(), [_rows_json(fresh)])
        inserted = {row[0] for row in cursor.fetchall()}
    return [event for event in fresh if event["event_id"] in inserted]


_SEEN_SQL = (
    'SELECT event_id FROM audit_event WHERE event_id = ANY(%b) AND "timestamp" BETWEEN %b AND %b'
)


@functools.cache
def _insert_many_sql() -> str:
    return json_rows_insert_sql(
        AuditEvent, conflict=("event_id", "timestamp"), returning=("event_id",)
    )


def _rows_json(events: list[Mapping[str, Any]]) -> str:
    fields = AuditEvent._meta.concrete_fields
    names = {field.attname for field in fields}
    rows = []
    for event in events:
        if not event.keys() <= names:
            raise TypeError(f"AuditEvent has no field {sorted(event.keys() - names)}")
        rows.append(
            {
                field.column: event[field.attname]
                if field.attname in event
                else field.get_default()
                for field in fields
            }
        )
    # Timestamps keep their microseconds (Django's encoder would cut them to milliseconds).
    return json.dumps(rows, cls=PreciseJSONEncoder, separators=(",", ":"))


# --- Sealing ---------------------------------------------------------------------------

# Serialises sealers (beat, the command) with each other; event writers never take it.
