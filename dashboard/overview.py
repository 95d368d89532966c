"""What the overview page shows, gathered from the apps' selectors (a fixed number of
queries whatever the data: counts and charts are aggregates computed in PostgreSQL)."""

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cachetools import TTLCache

from audit.selectors import audit_default_partition_rows, audit_tool_calls_per_hour
from dashboard import conf
from dashboard.charts import Chart, Series, lines, stacked_bars
from scheduling.models import ScheduledReview, ScheduleExecution
from scheduling.selectors import (
    executions_needing_attention,
    executions_start_lag_per_hour,
    reviews_count_by_state,
    reviews_upcoming,
)
from sessions.models import AgentSession, SessionStatus
from sessions.selectors import (
    SessionProgress,
    sessions_active_progress,
    sessions_count_by_status,
    sessions_finished_per_day,
    sessions_needing_attention,
)
from traces.selectors import ModelUsage, usage_by_model

ATTENTION_WINDOW = timedelta(days=7)
CHART_DAYS = 14
CHART_HOURS = 24
ACTIVE_SHOWN = 20
USAGE_WINDOW = timedelta(hours=24)

# Bottom-up order of the outcome bars, and their colour classes.
OUTCOMES = [SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED]


@dataclass(frozen=True)
class Overview:
    session_counts: dict[str, int]
    review_counts: dict[str, int]
    upcoming: list[ScheduledReview]
    failed_sessions: list[AgentSession]
    attention_runs: list[ScheduleExecution]
    charts: list[Chart]
    # Audit events waiting in the default partition: an operator's job (docs/operations.md).
    audit_default_rows: int = 0
    # Tokens and cost of the model calls traced in the last USAGE_WINDOW, by model.
    model_usage: list[ModelUsage] = field(default_factory=list)

    @property
    def model_cost_usd(self) -> Decimal:
        return sum((row.cost_usd for row in self.model_usage), Decimal(0))


def active_sessions() -> list[SessionProgress]:
    """The live part of the overview (refreshed on its own)."""
    return sessions_active_progress(limit=ACTIVE_SHOWN)


_overview_cache: TTLCache[str, Overview] | None = None
_overview_lock = threading.Lock()


def overview_build(now: datetime) -> Overview:
    """The overview, recomputed at most every ``OVERVIEW_CACHE_SECONDS`` per process:
    its aggregates scan every session and a day of audit events, and several staff
    reloading (or htmx refreshing) the page need not repeat them. The live list of
    active sessions is not part of it."""
    global _overview_cache
    seconds = conf.overview_cache_seconds()
    if seconds <= 0:
        return _overview_compute(now)
    with _overview_lock:
        if _overview_cache is None or _overview_cache.ttl != seconds:
            _overview_cache = TTLCache(maxsize=1, ttl=seconds)
        cached = _overview_cache.get("overview")
    if cached is None:
        cached = _overview_compute(now)
        with _overview_lock:
            _overview_cache["overview"] = cached
    return cached


def _overview_compute(now: datetime) -> Overview:
    since = now - ATTENTION_WINDOW
    return Overview(
        session_counts=sessions_count_by_status(),
        review_counts=reviews_count_by_state(),
        upcoming=list(reviews_upcoming(limit=8)),
        failed_sessions=list(sessions_needing_attention(since=since, limit=8)),
        attention_runs=list(
            executions_needing_attention(
                since=since, late_after_ms=conf.late_run_seconds() * 1000, limit=8
            )
        ),
        charts=[outcome_chart(now), start_lag_chart(now), tool_error_chart(now)],
        audit_default_rows=audit_default_partition_rows(),
        model_usage=usage_by_model(since=now - USAGE_WINDOW),
    )


def _hours(now: datetime) -> list[datetime]:
    last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [last - timedelta(hours=h) for h in range(CHART_HOURS - 1, -1, -1)]


def outcome_chart(now: datetime) -> Chart:
    today = now.astimezone(UTC).date()
    days = [today - timedelta(days=d) for d in range(CHART_DAYS - 1, -1, -1)]
    since = datetime.combine(days[0], datetime.min.time(), UTC)
    counts = {(row.day, row.status): row.count for row in sessions_finished_per_day(since=since)}
    return stacked_bars(
        f"Sessions per day by outcome (last {CHART_DAYS} days, UTC)",
        [f"{day:%b %d}" for day in days],
        [
            Series(str(status), [counts.get((day, status)) for day in days], f"s-{status}")
            for status in OUTCOMES
        ],
    )


def start_lag_chart(now: datetime) -> Chart:
    hours = _hours(now)
    buckets = {b.hour: b for b in executions_start_lag_per_hour(since=hours[0])}

    def seconds(hour: datetime, name: str) -> float | None:
        bucket = buckets.get(hour)
        return getattr(bucket, name) / 1000 if bucket else None

    runs = [f"{buckets[h].runs} runs" if h in buckets else "" for h in hours]
    return lines(
        f"Schedule start lag (last {CHART_HOURS} hours, by due hour, UTC)",
        [f"{hour:%H:00}" for hour in hours],
        [
            Series("p50", [seconds(h, "p50_ms") for h in hours], "s-p50", runs),
            Series("p95", [seconds(h, "p95_ms") for h in hours], "s-p95", runs),
        ],
        unit="s",
    )


def tool_error_chart(now: datetime) -> Chart:
    hours = _hours(now)
    buckets = {b.hour: b for b in audit_tool_calls_per_hour(since=hours[0])}
    rates = [100 * buckets[h].error_rate if h in buckets else None for h in hours]
    notes = [
        f"{buckets[h].errors} of {buckets[h].calls} calls" if h in buckets else "" for h in hours
    ]
    return stacked_bars(
        f"Tool error rate (last {CHART_HOURS} hours, UTC)",
        [f"{hour:%H:00}" for hour in hours],
        [Series("tool calls failed", rates, "s-failed", notes)],
        unit="%",
    )
