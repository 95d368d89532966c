"""Stored events as sealing, verification and archiving read them: every column,
including the two the ORM model does not declare, streamed by a server-side cursor."""

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from django.db import connection

from audit.integrity.canonical import content_hash, event_canonical_text, timestamp_micros

# metadata::text is jsonb's own printed form, which the canonical text embeds verbatim.
EVENT_COLUMNS = (
    'event_id, "timestamp", session_id, event_type, actor, action, resource, '
    "metadata::text, content_hash, xact_id, recorded_at"
)


class EventRow(NamedTuple):
    event_id: UUID
    timestamp: datetime
    session_id: str | None
    event_type: str
    actor: str
    action: str
    resource: str
    metadata_text: str
    content_hash: bytes
    xact_id: int
    recorded_at: datetime | None  # NULL before hash format 2

    @classmethod
    def from_db(cls, row: Sequence[Any]) -> "EventRow":
        values = list(row)
        values[8] = bytes(values[8])
        return cls(*values)

    @property
    def key(self) -> tuple[UUID, int]:
        """What identifies the event in a seal: its id and timestamp (the primary key)."""
        return self.event_id, timestamp_micros(self.timestamp)

    def canonical_text(self) -> str:
        return event_canonical_text(
            event_id=self.event_id,
            timestamp=self.timestamp,
            session_id=self.session_id,
            event_type=self.event_type,
            actor=self.actor,
            action=self.action,
            resource=self.resource,
            metadata_text=self.metadata_text,
            recorded_at=self.recorded_at,
        )

    def recomputed_hash(self) -> bytes:
        return content_hash(self.canonical_text())


def stream_rows(sql: str, params: Sequence[Any] = (), *, batch: int = 5000) -> Iterator[tuple]:
    """Rows of ``sql`` fetched ``batch`` at a time through a server-side cursor, so a
    month of events never sits in memory at once."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(batch):
            yield from rows


def stream_events(
    where: str = "TRUE", params: Sequence[Any] = (), *, order_by: str = '"timestamp", event_id'
) -> Iterator[EventRow]:
    sql = f"SELECT {EVENT_COLUMNS} FROM audit_event WHERE {where} ORDER BY {order_by}"
    for row in stream_rows(sql, params):
        yield EventRow.from_db(row)


def time_range_condition(
    start: datetime | None, end: datetime | None, *, column: str = '"timestamp"'
) -> tuple[str, list[datetime]]:
    """``start <= column < end`` (either side optional) as SQL and parameters."""
    clauses, params = [], []
    if start is not None:
        clauses.append(f"{column} >= %s")
        params.append(start)
    if end is not None:
        clauses.append(f"{column} < %s")
        params.append(end)
    return (" AND ".join(clauses) or "TRUE"), params
