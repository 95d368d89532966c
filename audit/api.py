"""``/api/v1/audit``: search the audit trail (admin tokens and staff)."""

import uuid
from datetime import datetime
from typing import Any

from django.db import models
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from pydantic import create_model

from audit.models import AuditEvent
from audit.selectors import (
    AUDIT_SEARCH_PAGE_LIMIT,
    AUDIT_SEARCH_PAGE_LIMIT_MAX,
    AUDIT_SEARCH_RECORDED_LATE_MAX_SECONDS,
    audit_event_proof,
    audit_events_search,
    audit_search_since,
)
from kernel.encoding import IsoDateTime
from kernel.schemas import JsonObjectQuery

# Admin scope: attached where the router is mounted (sergas.api.V1_ROUTERS).
router = Router(tags=["audit"])


# The Python types of the event's columns, for the schema derived from them.
_COLUMN_TYPES: dict[str, Any] = {
    "UUIDField": uuid.UUID,
    "DateTimeField": datetime,
    "CharField": str,
    "JSONField": dict[str, Any],
}


def _column_type(field: models.Field) -> Any:
    python_type = _COLUMN_TYPES[field.get_internal_type()]
    return python_type | None if field.null else python_type


# Every column of the stored event, each required (``recorded_at``, when the database
# recorded it, is null for events older than recording times): a column added to
# ``AuditEvent`` is answered too, as the exports write it.
AuditEventOut = create_model(
    "AuditEventOut",
    __base__=Schema,
    **{field.name: (_column_type(field), ...) for field in AuditEvent._meta.concrete_fields},
)


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
        le=AUDIT_SEARCH_RECORDED_LATE_MAX_SECONDS,
        description="Only events recorded more than this many seconds after the time they "
        "claim (backdated).",
    )
    cursor: str | None = None
    limit: int = Field(default=AUDIT_SEARCH_PAGE_LIMIT, ge=1, le=AUDIT_SEARCH_PAGE_LIMIT_MAX)


@router.get("/events", response=AuditPageOut)
def search_audit_events(request: HttpRequest, filters: Query[AuditFilters]) -> Any:
    """Events matching every filter, newest first; follow ``next_cursor`` for more."""
    return audit_events_search(
        since=audit_search_since(filters.since),
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
