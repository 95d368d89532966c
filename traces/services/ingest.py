"""Storing the spans of one OTLP export request, and what they mean for their sessions.

Per session (in id order), one transaction:

1. insert its spans in one statement (``INSERT ... SELECT FROM jsonb_to_recordset ...
   ON CONFLICT DO NOTHING RETURNING``); a span already stored (same trace_id, span_id and
   start) is a duplicate, and only the spans that were new go on;
2. their tool, agent and task spans become hook events through ``hook_events_record``,
   the path of ``POST /api/v1/events``: audit rows with ids derived from the span's ids
   (so even a span stored by another path is never a second event), Prometheus after
   the commit;
3. their model usage is added to the session's metrics (``session_record_usage``).

So a resent request changes nothing, and a request that fails midway leaves its
sessions as they were; the exporter's retry does the rest.
"""

import functools
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from kernel.encoding import PreciseJSONEncoder
from kernel.pgcopy import json_rows_insert_sql
from sessions import conf as sessions_conf
from sessions.hook_events import HookEvent, error_type_of
from sessions.models import HookName
from sessions.selectors import session_ids_existing
from sessions.services import hook_events_record, session_record_usage
from traces import conf
from traces.metrics import MODEL_TOKENS, SPANS
from traces.models import Span, SpanKind
from traces.spans import Decoded, IncomingSpan, Refusal, spans_decode

# Event ids of span-derived hook events: uuid5 of the span's ids in this namespace.
SPAN_EVENTS = uuid.UUID("0f6e3b1c-5d2a-4c59-9a43-3d1f3f0e9a51")
_HOOKS = {
    SpanKind.TOOL: (HookName.PRE_TOOL, HookName.POST_TOOL),
    SpanKind.AGENT: (HookName.PRE_TASK, HookName.POST_TASK),
    SpanKind.TASK: (HookName.PRE_TASK, HookName.POST_TASK),
}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.:/-]+")  # POST /events' name pattern


@dataclass(frozen=True)
class IngestResult:
    received: int
    stored: int
    duplicates: int
    rejected: int
    # Why spans were rejected (reason -> count), and models priced at 0 for want of a price.
    refusals: dict[str, int] = field(default_factory=dict)
    unpriced_models: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """The partial success's ``error_message``: what was refused, and why."""
        parts = []
        if self.rejected:
            reasons = "; ".join(f"{count} {reason}" for reason, count in self.refusals.items())
            parts.append(f"{self.rejected} of {self.received} spans rejected: {reasons}.")
        if self.unpriced_models:
            parts.append(
                "No price for model(s) "
                + ", ".join(self.unpriced_models)
                + ': tokens counted at cost 0 (set SERGAS_TRACES["MODEL_PRICES"]).'
            )
        return " ".join(parts)


def spans_ingest(
    request: ExportTraceServiceRequest,
    *,
    agent_name: str,
    actor: str,
    sessions_created_by: str | None = None,
) -> IngestResult:
    """Store the spans of ``request``; refuse, each with its reason, those that name no
    session, an unknown one (or, with ``sessions_created_by``, one another actor
    created), or that start before the retention or in the future."""
    decoded = spans_decode(request)
    received = len(decoded.spans) + sum(decoded.refused.values())
    accepted = _admitted(decoded, sessions_created_by)
    stored: list[IncomingSpan] = []
    by_session: dict[str, list[IncomingSpan]] = defaultdict(list)
    for span in accepted:
        by_session[span.session_id].append(span)
    for session_id in sorted(by_session):
        stored += _session_spans_store(
            session_id, by_session[session_id], agent_name=agent_name, actor=actor
        )
    rejected = sum(decoded.refused.values())
    result = IngestResult(
        received=received,
        stored=len(stored),
        duplicates=len(accepted) - len(stored),
        rejected=rejected,
        refusals=dict(decoded.refused),
        unpriced_models=sorted({s.unpriced_model for s in accepted if s.unpriced_model}),
    )
    SPANS.labels(outcome="rejected").inc(rejected)
    return result


def _admitted(decoded: Decoded, sessions_created_by: str | None) -> list[IncomingSpan]:
    now = timezone.now()
    earliest = now - timedelta(days=conf.retention_days())
    latest = now + timedelta(seconds=conf.max_future_seconds())
    timely = []
    for span in decoded.spans:
        if span.start_time < earliest:
            decoded.refuse(Refusal.TOO_OLD)
        elif span.end_time > latest:
            decoded.refuse(Refusal.IN_FUTURE)
        else:
            timely.append(span)
    known = session_ids_existing(
        {span.session_id for span in timely}, created_by=sessions_created_by
    )
    admitted = []
    for span in timely:
        if span.session_id in known:
            admitted.append(span)
        else:
            decoded.refuse(Refusal.UNKNOWN_SESSION)
    return admitted


def _session_spans_store(
    session_id: str, spans: list[IncomingSpan], *, agent_name: str, actor: str
) -> list[IncomingSpan]:
    with transaction.atomic():
        new = spans_insert(spans, actor=actor)
        events = [event for span in new for event in hook_events_of(span)]
        limit = sessions_conf.events_max_batch()
        for start in range(0, len(events), limit):
            hook_events_record(events[start : start + limit], agent_name=agent_name, actor=actor)
        calls = [span for span in new if span.input_tokens is not None]
        if calls:
            session_record_usage(
                session_id,
                input_tokens=sum(span.input_tokens or 0 for span in calls),
                output_tokens=sum(span.output_tokens or 0 for span in calls),
                cost_usd=sum((span.cost_usd or Decimal(0) for span in calls), Decimal(0)),
                unpriced_models=[span.unpriced_model for span in calls if span.unpriced_model],
                actor=actor,
            )
        transaction.on_commit(partial(_observe, new, len(spans) - len(new)))
    return new


def spans_insert(spans: Sequence[IncomingSpan], *, actor: str) -> list[IncomingSpan]:
    """Insert ``spans`` (call inside a transaction); returns those that were new. The
    first of several with one key in the batch wins."""
    unique: dict[tuple[str, str, Any], IncomingSpan] = {}
    for span in spans:
        unique.setdefault((*span.key, span.start_time), span)
    if not unique:
        return []
    now = timezone.now()
    rows = json.dumps(
        [span.row(actor=actor, received_at=now) for span in unique.values()],
        cls=PreciseJSONEncoder,
        separators=(",", ":"),
    )
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    # Server-side binding: one parameter, the rows as JSON, which PostgreSQL parses.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_insert_sql(), [rows])
        inserted = {(row[0], row[1]) for row in cursor.fetchall()}
    return [span for span in unique.values() if span.key in inserted]


@functools.cache
def _insert_sql() -> str:
    # Not COPY (kernel/pgcopy.py, the bench's baseline): COPY cannot skip a resent span,
    # and the spans that were new must be known to count them once. One INSERT of a JSON
    # array of rows that PostgreSQL parses (as audit_events_record_many does) is bulk too.
    # In key order, so two requests resending the same spans lock them in the same order.
    return json_rows_insert_sql(
        Span,
        conflict=("trace_id", "span_id", "start_time"),
        returning=("trace_id", "span_id"),
        order_by=("trace_id", "span_id"),
    )


def hook_events_of(span: IncomingSpan) -> list[HookEvent]:
    """A tool, agent or task span as its two hook events (pre_* at its start, post_* at
    its end), with ids derived from the span's: a resent span makes the same events."""
    hooks = _HOOKS.get(span.kind)
    if hooks is None:
        return []
    pre, post = hooks
    pre_id = uuid.uuid5(SPAN_EVENTS, f"{span.trace_id}/{span.span_id}/pre")
    name = _UNSAFE_NAME.sub("_", span.subject)[:64] or "unnamed"
    metadata = {"trace_id": span.trace_id, "span_id": span.span_id, "source": "otlp"}
    return [
        HookEvent(
            hook=pre,
            name=name,
            event_id=pre_id,
            timestamp=span.start_time,
            session_id=span.session_id,
            invocation_id=pre_id,
            metadata=metadata,
        ),
        HookEvent(
            hook=post,
            name=name,
            event_id=uuid.uuid5(SPAN_EVENTS, f"{span.trace_id}/{span.span_id}/post"),
            timestamp=span.end_time,
            session_id=span.session_id,
            invocation_id=pre_id,
            duration_seconds=span.duration_seconds,
            error_type=error_type_of(span.error_type) if span.failed else None,
            error_message=(span.status_message or span.error_type) if span.failed else None,
            metadata=metadata,
        ),
    ]


def _observe(new: Iterable[IncomingSpan], duplicates: int) -> None:
    new = list(new)
    SPANS.labels(outcome="stored").inc(len(new))
    SPANS.labels(outcome="duplicate").inc(duplicates)
    for span in new:
        if span.input_tokens is not None:
            MODEL_TOKENS.labels(model=span.model, direction="input").inc(span.input_tokens)
            MODEL_TOKENS.labels(model=span.model, direction="output").inc(span.output_tokens or 0)
