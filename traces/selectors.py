"""Reads of spans: a session's trace, one span, model usage."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from traces import conf
from traces.models import Span, SpanKind

# Spans may start a little before their session was created (an agent's root span):
# reads look this far back, and no further, so only the partitions of those days are read.
LEAD = timedelta(hours=1)


def session_spans(session_id: str, *, since: datetime, limit: int) -> list[Span]:
    """The session's spans that started after ``since - LEAD``, oldest first, at most
    ``limit`` (the first ones: a trace is read from its start)."""
    return list(
        Span.objects.filter(session_id=session_id, start_time__gte=since - LEAD)
        .defer("resource")
        .order_by("start_time", "trace_id", "span_id")[:limit]
    )


def session_span_count(session_id: str, *, since: datetime) -> int:
    return Span.objects.filter(session_id=session_id, start_time__gte=since - LEAD).count()


def span_get(session_id: str, trace_id: str, span_id: str, *, since: datetime) -> Span | None:
    return Span.objects.filter(
        session_id=session_id, trace_id=trace_id, span_id=span_id, start_time__gte=since - LEAD
    ).first()


@dataclass(frozen=True)
class ModelUsage:
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    priced: bool  # the price table names the model


def _usage(spans: QuerySet[Span]) -> list[ModelUsage]:
    prices = conf.model_prices()
    rows = (
        spans.filter(kind=SpanKind.MODEL)
        .filter(Q(input_tokens__isnull=False) | Q(output_tokens__isnull=False))
        .values("model")
        .annotate(
            calls=Count("span_id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost_usd=Sum("cost_usd"),
        )
        .order_by("-cost_usd", "-input_tokens", "model")
    )
    return [
        ModelUsage(
            model=row["model"],
            calls=row["calls"],
            input_tokens=row["input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
            cost_usd=row["cost_usd"] or Decimal(0),
            priced=row["model"] in prices,
        )
        for row in rows
    ]


def session_usage_by_model(session_id: str, *, since: datetime) -> list[ModelUsage]:
    """Tokens and cost of the session's model calls still kept, by model."""
    return _usage(Span.objects.filter(session_id=session_id, start_time__gte=since - LEAD))


def usage_by_model(*, since: datetime) -> list[ModelUsage]:
    """Tokens and cost of every model call that started since ``since``, by model."""
    return _usage(Span.objects.filter(start_time__gte=since))
