"""Reads of the audit trail."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import TruncHour

from audit.models import AuditEvent
from sergas.pagination import Page, keyset_page

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
    cursor: str | None = None,
    limit: int = 100,
) -> Page[AuditEvent]:
    """Events matching every given filter, newest first, one keyset page at a time.

    ``since`` is required so PostgreSQL prunes the monthly partitions outside the range;
    each other filter has its ``(column, timestamp)`` index, metadata containment the GIN.
    """
    queryset = AuditEvent.objects.filter(timestamp__gte=since)
    if until is not None:
        queryset = queryset.filter(timestamp__lt=until)
    filters = {
        "event_type": event_type,
        "actor": actor,
        "resource": resource,
        "session_id": session_id,
        "action": action,
    }
    queryset = queryset.filter(**{name: value for name, value in filters.items() if value})
    if metadata_contains:
        queryset = queryset.filter(metadata__contains=metadata_contains)
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
