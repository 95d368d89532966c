"""Reads of the trail: search, counts, a session's events."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django.db.models import BooleanField, Count, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.db.models.functions import TruncHour

from audit.exceptions import (
    INVALID_CURSOR,
    INVALID_METADATA_FILTER,
    INVALID_TIME_RANGE,
    InvalidAuditSearch,
)
from audit.models import AuditEvent
from kernel.pagination import Page, keyset_page

# Newest first; event_id breaks ties between events of the same microsecond.
SEARCH_ORDERING = ("-timestamp", "-event_id")


def audit_events_for_session(session_id: str) -> QuerySet[AuditEvent]:
    """The session's trail, oldest first."""
    return AuditEvent.objects.filter(session_id=session_id).order_by("timestamp", "event_id")


def audit_events_search(
    *,
    since: datetime,
    until: datetime | None = None,
    event_type: str | None = None,
    actor: str | None = None,
    resource: str | None = None,
    session_id: str | None = None,
    action: str | None = None,
    metadata_contains: dict[str, Any] | None = None,
    recorded_late_seconds: int | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[AuditEvent]:
    """Events matching every given filter, newest first, one keyset page at a time (the
    API and the dashboard). ``since`` is required so PostgreSQL prunes the monthly
    partitions outside the range (``audit_events_query`` says how each filter is served).
    """
    queryset = audit_events_query(
        start=since,
        end=until,
        event_type=event_type or None,
        actor=actor or None,
        resource=resource or None,
        session_id=session_id or None,
        action=action or None,
        metadata_contains=metadata_contains or None,
        recorded_late_seconds=recorded_late_seconds,
    )
    return keyset_page(queryset, ordering=SEARCH_ORDERING, cursor=cursor, limit=limit)


@dataclass(frozen=True)
class EventCount:
    event_type: str
    action: str
    error_type: str | None
    count: int


def audit_session_event_counts(session_id: str, *, since: datetime) -> list[EventCount]:
    """How many events the session has per (type, action, error type) since ``since``."""
    rows = (
        AuditEvent.objects.filter(session_id=session_id, timestamp__gte=since)
        .values("event_type", "action", error_type=KT("metadata__error_type"))
        .annotate(count=Count("event_id"))
        .order_by()
    )
    return [EventCount(**row) for row in rows]


def audit_events_query(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    session_id: str | None = None,
    event_type: str | None = None,
    actor: str | None = None,
    resource: str | None = None,
    action: str | None = None,
    metadata_contains: dict[str, Any] | None = None,
    recorded_late_seconds: int | None = None,
    after: tuple[datetime, UUID] | None = None,
) -> QuerySet[AuditEvent]:
    """Events with ``start <= timestamp < end`` matching every filter given, ordered by
    (timestamp, event_id) for cursor pagination: pass the last row's pair as ``after``
    to get the next page. ``recorded_late_seconds`` keeps the events the database
    recorded more than that long after the time they claim (backdated: a forgery, or a
    late report worth a look).

    Give a time range: PostgreSQL then scans only the partitions of those months (a
    one-month window reads one partition). Each equality filter has an index led by its
    column and followed by the timestamp; ``metadata_contains`` (``@>``) uses the GIN
    index.
    """
    if start is not None and end is not None and start >= end:
        raise InvalidAuditSearch(INVALID_TIME_RANGE.format(start=start, end=end), field="start")
    if metadata_contains is not None and not isinstance(metadata_contains, dict):
        raise InvalidAuditSearch(
            INVALID_METADATA_FILTER.format(kind=type(metadata_contains).__name__),
            field="metadata_contains",
        )
    events = AuditEvent.objects.all()
    if start is not None:
        events = events.filter(timestamp__gte=start)
    if end is not None:
        events = events.filter(timestamp__lt=end)
    for column, value in (
        ("session_id", session_id),
        ("event_type", event_type),
        ("actor", actor),
        ("resource", resource),
        ("action", action),
    ):
        if value is not None:
            events = events.filter(**{column: value})
    if metadata_contains:
        events = events.filter(metadata__contains=metadata_contains)
    if recorded_late_seconds is not None:
        events = events.filter(
            recorded_at__gt=F("timestamp") + timedelta(seconds=recorded_late_seconds)
        )
    if after is not None:
        events = _after(events, after)
    return events.order_by("timestamp", "event_id")


def _after(events: QuerySet[AuditEvent], after: tuple[datetime, UUID]) -> QuerySet[AuditEvent]:
    try:
        moment, event_id = after
        event_id = UUID(str(event_id))
    except (TypeError, ValueError):
        raise InvalidAuditSearch(INVALID_CURSOR, field="after") from None
    # The row comparison is one index bound; the plain bound on timestamp lets the
    # planner prune the partitions before the cursor.
    return events.filter(timestamp__gte=moment).filter(
        RawSQL('("timestamp", "event_id") > (%s, %s)', (moment, event_id), BooleanField())
    )


def audit_events_count(*, start: datetime | None = None, end: datetime | None = None) -> int:
    """How many events lie in ``[start, end)``: the total of a verification's progress."""
    return audit_events_query(start=start, end=end).count()


@dataclass(frozen=True)
class ToolCallsHour:
    hour: datetime
    calls: int
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


def audit_tool_calls_per_hour(*, since: datetime) -> list[ToolCallsHour]:
    """Finished tool calls (``post_tool``) since ``since`` per UTC hour, and how many of
    them reported an error (on the (event_type, timestamp) index, pruned to the range)."""
    rows = (
        AuditEvent.objects.filter(event_type="tool", action="post_tool", timestamp__gte=since)
        .annotate(hour=TruncHour("timestamp", tzinfo=UTC))
        .order_by()
        .values("hour")
        .annotate(
            calls=Count("event_id"),
            errors=Count("event_id", filter=Q(metadata__has_key="error_type")),
        )
        .order_by("hour")
    )
    return [ToolCallsHour(**row) for row in rows]
