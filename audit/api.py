"""``/api/v1/audit``: search the audit trail (admin tokens and staff)."""

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from access.auth import admin_access
from access.inputs import JsonObjectQuery
from audit.selectors import audit_event_proof, audit_events_search
from kernel.encoding import IsoDateTime

router = Router(tags=["audit"], auth=admin_access)

# Without ``since`` a search covers the last week: a bounded range keeps it on a few
# monthly partitions.
DEFAULT_WINDOW = timedelta(days=7)


class AuditEventOut(Schema):
    event_id: uuid.UUID
    timestamp: datetime
    session_id: str | None
    event_type: str
    actor: str
    action: str
    resource: str
    metadata: dict[str, Any]
    # When the database recorded it (null for events older than recording times).
    recorded_at: datetime | None


class AuditPageOut(Schema):
    items: list[AuditEventOut]
    next_cursor: str | None


class AuditFilters(Schema):
    since: IsoDateTime | None = Field(default=None, description="Default: 7 days ago.")
    until: IsoDateTime | None = None
    event_type: str | None = None
    action: str | None = None
    actor: str | None = None
    resource: str | None = None
    session_id: str | None = None
    metadata: JsonObjectQuery | None = Field(
        default=None, description='JSON object the metadata must contain, e.g. {"to":"failed"}.'
    )
    recorded_late_seconds: int | None = Field(
        default=None,
        ge=0,
        le=100 * 365 * 86400,
        description="Only events recorded more than this many seconds after the time they "
        "claim (backdated).",
    )
    cursor: str | None = None
    limit: int = Field(default=100, ge=1, le=500)


@router.get("/events", response=AuditPageOut)
def search_audit_events(request: HttpRequest, filters: Query[AuditFilters]) -> Any:
    """Events matching every filter, newest first; follow ``next_cursor`` for more."""
    return audit_events_search(
        since=filters.since or timezone.now() - DEFAULT_WINDOW,
        until=filters.until,
        event_type=filters.event_type,
        action=filters.action,
        actor=filters.actor,
        resource=filters.resource,
        session_id=filters.session_id,
        metadata_contains=filters.metadata or None,
        recorded_late_seconds=filters.recorded_late_seconds,
        cursor=filters.cursor,
        limit=filters.limit,
    )


@router.get("/events/{event_id}/proof", response=dict[str, Any])
def event_proof(request: HttpRequest, event_id: uuid.UUID) -> Any:
    """The event's inclusion proof: its canonical text, the audit path to its seal's
    Merkle root and the seal's signed head. Check it offline with ``python -m
    audit.proof FILE --public-key KEY`` (docs/audit.md). 409 ``proof_unavailable`` while
    the event is not sealed yet."""
    return audit_event_proof(event_id)
