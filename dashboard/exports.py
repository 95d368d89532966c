"""Exports of the dashboard, streamed in constant memory: every audit event the
explorer's filters match (CSV or JSON Lines), and a run's results (CSV).

Rows are read through the pages' own selectors one keyset page at a time, so each query
is the page's own (partition-pruned, indexed) and no transaction or server-side cursor
stays open while a slow client downloads. Every export is itself an audit event.
"""

import csv
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from django.db.models import Model

from audit.models import AuditEvent, AuditEventType
from audit.selectors import audit_events_search
from audit.services import audit_event_record
from audit.trail.export import JSONL_CONTENT_TYPE, audit_event_as_dict, audit_events_jsonl
from kernel.encoding import PreciseJSONEncoder
from kernel.pagination import Page
from scheduling.models import AccountReview, ScheduleExecution
from scheduling.selectors import account_reviews_page

M = TypeVar("M", bound=Model)

EXPORT_PAGE_SIZE = 1000
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
FORMATS = {"csv": CSV_CONTENT_TYPE, "jsonl": JSONL_CONTENT_TYPE}
# Every column of the table, as audit.trail.export writes them (a column added later is too).
CSV_COLUMNS = [field.attname for field in AuditEvent._meta.concrete_fields]
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _every_page(fetch: Callable[[str | None], Page[M]]) -> Iterator[M]:
    """Every row of a keyset-paged list: ``fetch(cursor)`` until the last page."""
    cursor = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def audit_events_matching(filters: dict[str, Any]) -> Iterator[AuditEvent]:
    """Every event matching ``filters`` (``audit_events_search`` keywords), newest first."""
    return _every_page(
        lambda cursor: audit_events_search(**filters, cursor=cursor, limit=EXPORT_PAGE_SIZE)
    )


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


# --- a run's results -------------------------------------------------------------------

RECOMMENDATION_COLUMNS = ("kind", "priority", "title", "detail", "confidence")
RUN_RESULT_COLUMNS = [
    "account_id",
    "outcome",
    *RECOMMENDATION_COLUMNS,
    "error",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "agent",
    "recorded_at",
]


def run_results_csv(execution_id: object, *, outcome: str | None) -> Iterator[str]:
    """One row per recommendation, by account id; an account without any has one row
    with the recommendation's columns empty."""
    writer = csv.writer(_Echo())
    yield writer.writerow(RUN_RESULT_COLUMNS)
    results: Iterator[AccountReview] = _every_page(
        lambda cursor: account_reviews_page(
            execution_id, outcome=outcome, cursor=cursor, limit=EXPORT_PAGE_SIZE
        )
    )
    for result in results:
        for recommendation in result.recommendations or [{}]:
            row = [
                _cell(recommendation.get(name))
                if name in RECOMMENDATION_COLUMNS
                else _cell(getattr(result, name))
                for name in RUN_RESULT_COLUMNS
            ]
            yield writer.writerow(row)


def run_results_export_record(
    execution: ScheduleExecution, *, outcome: str | None, actor: str
) -> None:
    """Who exported which run's results, as the audit exports are recorded."""
    audit_event_record(
        event_type=AuditEventType.SYSTEM,
        action="run_results_export",
        actor=actor,
        resource=f"table:{AccountReview._meta.db_table}",
        metadata={
            "format": "csv",
            "execution_id": str(execution.pk),
            "review_id": execution.review_id,
            "filters": {"outcome": outcome},
        },
    )


def run_results_filename(execution: ScheduleExecution, *, outcome: str | None) -> str:
    return f"run-{execution.pk}-results{f'-{outcome}' if outcome else ''}.csv"
