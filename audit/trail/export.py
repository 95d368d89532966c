"""The audit trail as JSON Lines: one event per line, every column, oldest first."""

import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from audit.models import AuditEvent
from kernel.encoding import PreciseJSONEncoder

JSONL_CONTENT_TYPE = "application/x-ndjson"
_COLUMNS = [field.attname for field in AuditEvent._meta.concrete_fields]


def audit_event_as_dict(event: AuditEvent) -> dict[str, Any]:
    """Every column of the row, so what a later change adds (a hash) is exported too."""
    return {name: getattr(event, name) for name in _COLUMNS}


def audit_events_jsonl(events: QuerySet[AuditEvent] | Iterable[AuditEvent]) -> Iterator[str]:
    """Stream ``events`` as JSON Lines, reading the rows in chunks (a server-side cursor),
    so a trail of any length is served in constant memory."""
    rows = events.iterator(chunk_size=2000) if isinstance(events, QuerySet) else events
    for event in rows:
        yield json.dumps(audit_event_as_dict(event), cls=PreciseJSONEncoder) + "\n"
