"""Daily partitions of trace_span: made ahead, strays moved in, days past retention dropped."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from audit import conf as audit_conf
from audit.models import AuditEvent
from sergas.beat_schedule import beat_schedule
from tests.factories import make_session
from tests.traces.otel import agent_spans
from traces.models import Span
from traces.partitioning import partitions
from traces.services import trace_partitions_maintain
from traces.services.ingest import spans_insert
from traces.spans import spans_decode
from traces.tasks import maintain_trace_partitions

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 14, 30, tzinfo=UTC)


def spans_at(session_id: str, start: datetime) -> list:
    """The SDK's spans of one agent invocation, moved to start at ``start``."""
    spans = spans_decode(encode_spans(agent_spans(session_id, tools=1))).spans
    first = min(span.start_time for span in spans)
    for span in spans:
        span.start_time, span.end_time = (
            start + (span.start_time - first),
            start + (span.end_time - first),
        )
    return spans


def partition_of(span: Span) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM trace_span WHERE trace_id = %s AND span_id = %s",
            [span.trace_id, span.span_id],
        )
        return cursor.fetchone()[0]


def test_maintenance_makes_today_and_the_days_ahead_once(settings):
    settings.SERGAS_TRACES = {**settings.SERGAS_TRACES, "PREMAKE_DAYS": 2}
    report = trace_partitions_maintain(now=NOW)
    assert report.created == [
        "trace_span_2026_dec_03",
        "trace_span_2026_dec_04",
        "trace_span_2026_dec_05",
    ]
    bounds = {p.name: (p.start, p.end) for p in partitions()}
    assert bounds["trace_span_2026_dec_04"] == (
        datetime(2026, 12, 4, tzinfo=UTC),
        datetime(2026, 12, 5, tzinfo=UTC),
    )
    event = AuditEvent.objects.get(action="trace_partitions_maintained")
    assert event.metadata["created"] == report.created
    again = trace_partitions_maintain(now=NOW + timedelta(hours=3))
    assert (again.created, again.dropped) == ([], [])
    assert AuditEvent.objects.filter(action="trace_partitions_maintained").count() == 1


def test_spans_of_a_day_without_its_partition_wait_in_the_default_one_and_move_in():
    session = make_session("running")
    later = NOW + timedelta(days=30)
    stored = spans_insert(spans_at(session.session_id, later), actor="agent:a")
    span = Span.objects.get(span_id=stored[0].span_id)
    assert partition_of(span) == "trace_span_default"
    report = trace_partitions_maintain(now=later)
    assert report.moved == len(stored)
    assert partition_of(span) == "trace_span_2027_jan_02"
    assert Span.objects.filter(session_id=session.session_id).count() == len(stored)


def test_days_past_the_retention_are_dropped_whole(settings):
    settings.SERGAS_TRACES = {**settings.SERGAS_TRACES, "RETENTION_DAYS": 30, "PREMAKE_DAYS": 1}
    session = make_session("running")
    old = NOW - timedelta(days=40)
    trace_partitions_maintain(now=old)  # the days of 40 days ago had their partitions
    expired = spans_insert(spans_at(session.session_id, old), actor="agent:a")
    stray = spans_insert(spans_at(session.session_id, old - timedelta(days=5)), actor="agent:a")
    kept = spans_insert(spans_at(session.session_id, NOW - timedelta(days=29)), actor="agent:a")
    report = trace_partitions_maintain(now=NOW)
    assert report.dropped == ["trace_span_2026_oct_24", "trace_span_2026_oct_25"]
    assert report.default_rows_deleted == len(stray)
    remaining = set(Span.objects.values_list("span_id", flat=True))
    assert remaining == {span.span_id for span in kept}
    assert not {span.span_id for span in expired + stray} & remaining
    event = AuditEvent.objects.filter(action="trace_partitions_maintained").order_by("-timestamp")[
        0
    ]
    assert event.metadata["dropped"] == report.dropped


def test_a_dry_run_changes_nothing(settings):
    report = trace_partitions_maintain(dry_run=True, now=NOW)
    assert report.created
    assert not [p for p in partitions() if p.name in report.created]


def test_beat_runs_the_maintenance_on_the_maintenance_queue():
    entry = beat_schedule()["traces-maintain-partitions"]
    assert entry["task"] == maintain_trace_partitions.name
    assert entry["options"]["queue"] == audit_conf.maintenance_queue()
    assert maintain_trace_partitions()["deferred"] == ""
