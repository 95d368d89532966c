"""Exports of the audit explorer: every row the filters match, as CSV or JSON Lines,
streamed in constant memory.

Rows are read through ``audit_events_search`` one keyset page at a time, so each query
is the explorer's own (partition-pruned, indexed) and no transaction or server-side
cursor stays open while a slow client downloads.
"""

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from audit.export import JSONL_CONTENT_TYPE, audit_event_as_dict, audit_events_jsonl
from audit.models import AuditEvent, AuditEventType
from audit.selectors import audit_events_search
from audit.services import audit_event_record
from sergas.encoding import PreciseJSONEncoder

EXPORT_PAGE_SIZE = 1000
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
FORMATS = {"csv": CSV_CONTENT_TYPE, "jsonl": JSONL_CONTENT_TYPE}
# Every column of the table, as audit.export writes them (a column added later is too).
CSV_COLUMNS = [field.attname for field in AuditEvent._meta.concrete_fields]
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def audit_events_matching(filters: dict[str, Any]) -> Iterator[AuditEvent]:
    """Every event matching ``filters`` (``audit_events_search`` keywords), newest first."""
    cursor = None
    while True:
        page = audit_events_search(**filters, cursor=cursor, limit=EXPORT_PAGE_SIZE)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


class _Echo:
    """A file-like object whose ``write`` returns the line (Django's streaming CSV recipe)."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, cls=PreciseJSONEncoder, sort_keys=True)
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def audit_events_csv(events: Iterator[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events:
        row = audit_event_as_dict(event)
        yield writer.writerow([_cell(row[name]) for name in CSV_COLUMNS])


def audit_export_lines(fmt: str, filters: dict[str, Any]) -> Iterator[str]:
    events = audit_events_matching(filters)
    return audit_events_csv(events) if fmt == "csv" else audit_events_jsonl(events)


def audit_export_record(fmt: str, filters: dict[str, Any], *, actor: str) -> None:
    """Who exported what: exports are audit events themselves."""
    audit_event_record(
        event_type=AuditEventType.SYSTEM,
        action="audit_export",
        actor=actor,
        resource="table:audit_event",
        metadata={
            "format": fmt,
            "filters": json.loads(json.dumps(filters, cls=PreciseJSONEncoder)),
        },
    )


def export_filename(fmt: str, filters: dict[str, Any]) -> str:
    since = filters["since"].strftime("%Y%m%dT%H%M")
    until = filters["until"].strftime("%Y%m%dT%H%M") if filters.get("until") else "now"
    return f"audit-events-{since}-{until}.{fmt}"
