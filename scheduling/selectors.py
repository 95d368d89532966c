"""Reads of the scheduling domain."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    FloatField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncHour
from django.utils import timezone

from kernel.pagination import Page, keyset_page
from scheduling import conf
from scheduling.models import (
    FINISHED_EXECUTION_STATUSES,
    AccountReview,
    BatchStatus,
    ExecutionStatus,
    RunBatch,
    ScheduledReview,
    ScheduleExecution,
    executor_of,
)
from scheduling.recurrence import Recurrence
from sessions.models import BULKY_COLUMNS, SessionStatus

REVIEW_ORDERING = ("name", "id")
EXECUTION_ORDERING = ("-nominal_time", "-attempt", "-id")


def review_get(review_id: int) -> ScheduledReview | None:
    return ScheduledReview.objects.filter(pk=review_id).first()


def reviews_list(
    *,
    owner_id: str | None = None,
    enabled: bool | None = None,
    name_contains: str | None = None,
    schedule_type: str | None = None,
    priority: str | None = None,
) -> QuerySet:
    queryset = ScheduledReview.objects.all()
    if owner_id:
        queryset = queryset.filter(owner_id=owner_id)
    if enabled is not None:
        queryset = queryset.filter(enabled=enabled)
    if name_contains:
        queryset = queryset.filter(name__icontains=name_contains)
    if schedule_type:
        queryset = queryset.filter(schedule_type=schedule_type)
    if priority:
        queryset = queryset.filter(priority=priority)
    return queryset.order_by("name", "pk")


def reviews_with_last_run(queryset: QuerySet[ScheduledReview]) -> QuerySet[ScheduledReview]:
    """Annotate each review with its latest run's status and nominal time (one subquery
    on the (review, -nominal_time) index per row, in the same statement)."""
    latest = ScheduleExecution.objects.filter(review=OuterRef("pk")).order_by(
        "-nominal_time", "-attempt"
    )
    return queryset.annotate(
        last_run_status=Subquery(latest.values("status")[:1]),
        last_run_nominal_time=Subquery(latest.values("nominal_time")[:1]),
    )


def review_next_runs(
    review: ScheduledReview, *, count: int = 5, after: datetime | None = None
) -> list[datetime]:
    """The next ``count`` run times (UTC), computed from the review, paused or not."""
    return Recurrence.of(review).preview(after or timezone.now(), count)


def review_executions(review_id: int) -> QuerySet[ScheduleExecution]:
    """The review's run history, newest first."""
    return ScheduleExecution.objects.filter(review_id=review_id).order_by(
        "-nominal_time", "-attempt"
    )


def execution_of_session(session_id: str) -> ScheduleExecution | None:
    """The run a session belongs to, if a schedule started it."""
    return ScheduleExecution.objects.filter(session_id=session_id).order_by("-created_at").first()


def reviews_page(
    *,
    owner_id: str | None = None,
    enabled: bool | None = None,
    name_contains: str | None = None,
    schedule_type: str | None = None,
    priority: str | None = None,
    with_last_run: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[ScheduledReview]:
    queryset = reviews_list(
        owner_id=owner_id,
        enabled=enabled,
        name_contains=name_contains,
        schedule_type=schedule_type,
        priority=priority,
    )
    if with_last_run:
        queryset = reviews_with_last_run(queryset)
    return keyset_page(queryset, ordering=REVIEW_ORDERING, cursor=cursor, limit=limit)


def executions_page(
    *,
    review_id: int | None = None,
    statuses: Sequence[str] = (),
    cursor: str | None = None,
    limit: int = 50,
) -> Page[ScheduleExecution]:
    """Runs newest first, one keyset page at a time."""
    queryset = ScheduleExecution.objects.all()
    if review_id is not None:
        queryset = queryset.filter(review_id=review_id)
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    return keyset_page(queryset, ordering=EXECUTION_ORDERING, cursor=cursor, limit=limit)


# --- dashboard aggregates ------------------------------------------------------------------

# Runs an operator should look at: they did not run, or not as planned.
ATTENTION_STATUSES = (
    ExecutionStatus.FAILED,
    ExecutionStatus.RETRYING,
    ExecutionStatus.SKIPPED_OVERLAP,
    ExecutionStatus.MISSED,
)
# Runs a worker started (they have a start lag).
STARTED_STATUSES = (
    ExecutionStatus.RUNNING,
    ExecutionStatus.SUCCEEDED,
    ExecutionStatus.FAILED,
    ExecutionStatus.RETRYING,
)


def reviews_upcoming(*, limit: int = 8) -> QuerySet[ScheduledReview]:
    """Enabled reviews by next run (the dispatcher's own partial index)."""
    return ScheduledReview.objects.filter(enabled=True, next_run_at__isnull=False).order_by(
        "next_run_at", "pk"
    )[:limit]


def reviews_count_by_state() -> dict[str, int]:
    """``{"enabled": n, "paused": m}``."""
    counts = ScheduledReview.objects.aggregate(
        enabled_count=Count("pk", filter=Q(enabled=True)),
        paused_count=Count("pk", filter=Q(enabled=False)),
    )
    return {"enabled": counts["enabled_count"], "paused": counts["paused_count"]}


def executions_needing_attention(
    *, since: datetime, late_after_ms: int, limit: int = 10
) -> QuerySet[ScheduleExecution]:
    """Runs due since ``since`` that failed, were skipped or missed, or started late
    (both halves of the condition use the (status, nominal_time) index)."""
    return (
        ScheduleExecution.objects.filter(nominal_time__gte=since)
        .filter(
            Q(status__in=ATTENTION_STATUSES)
            | Q(status__in=STARTED_STATUSES, start_lag_ms__gt=late_after_ms)
        )
        .order_by("-nominal_time", "-attempt")[:limit]
    )


class _Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float) -> None:
        super().__init__(expression, fraction=float(fraction))


@dataclass(frozen=True)
class LagBucket:
    hour: datetime
    runs: int
    p50_ms: float
    p95_ms: float
    max_ms: int


def executions_start_lag_per_hour(*, since: datetime) -> list[LagBucket]:
    """Start lag (nominal time to a worker starting the run) of the runs due since
    ``since`` that started, per UTC hour of their nominal time: count, median, p95, max."""
    rows = (
        ScheduleExecution.objects.filter(
            status__in=STARTED_STATUSES, nominal_time__gte=since, start_lag_ms__isnull=False
        )
        .annotate(hour=TruncHour("nominal_time", tzinfo=UTC))
        .order_by()
        .values("hour")
        .annotate(
            runs=Count("pk"),
            p50_ms=_Percentile("start_lag_ms", 0.5),
            p95_ms=_Percentile("start_lag_ms", 0.95),
            max_ms=Max("start_lag_ms"),
        )
        .order_by("hour")
    )
    return [LagBucket(**row) for row in rows]


# --- results -------------------------------------------------------------------------------

RESULT_ORDERING = ("account_id", "id")
ACCOUNT_HISTORY_ORDERING = ("-recorded_at", "-id")


def execution_get(
    execution_id: object, *, review_id: int | None = None
) -> ScheduleExecution | None:
    """A run (of ``review_id`` when given), or None (also for an id that is no UUID)."""
    queryset = ScheduleExecution.objects.select_related("review", "session").defer(
        *(f"session__{column}" for column in BULKY_COLUMNS)  # a context may be megabytes
    )
    if review_id is not None:
        queryset = queryset.filter(review_id=review_id)
    try:
        return queryset.filter(pk=execution_id).first()
    except (ValueError, ValidationError):
        return None


def account_reviews_of_run(
    execution_id: object, *, outcome: str | None = None
) -> QuerySet[AccountReview]:
    """A run's results, one per account, by account id."""
    queryset = AccountReview.objects.filter(execution_id=execution_id)
    if outcome:
        queryset = queryset.filter(outcome=outcome)
    return queryset.order_by(*RESULT_ORDERING)


def account_reviews_page(
    execution_id: object, *, outcome: str | None = None, cursor: str | None = None, limit: int = 50
) -> Page[AccountReview]:
    return keyset_page(
        account_reviews_of_run(execution_id, outcome=outcome),
        ordering=RESULT_ORDERING,
        cursor=cursor,
        limit=limit,
    )


def account_history_page(
    account_id: str, *, outcome: str | None = None, cursor: str | None = None, limit: int = 50
) -> Page[AccountReview]:
    """One account's results across runs, newest first, each with its run."""
    queryset = AccountReview.objects.filter(account_id=account_id).select_related("execution")
    if outcome:
        queryset = queryset.filter(outcome=outcome)
    return keyset_page(queryset, ordering=ACCOUNT_HISTORY_ORDERING, cursor=cursor, limit=limit)


@dataclass(frozen=True)
class RunProgress:
    batches: dict[str, int]  # by status
    outcomes: dict[str, int]  # results by outcome
    recommendations: int


def execution_progress(execution_id: object) -> RunProgress:
    """How far a run got: its batches by status and its results by outcome."""
    batches = dict(
        RunBatch.objects.filter(execution_id=execution_id)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    outcomes: dict[str, int] = {}
    recommendations = 0
    for outcome, count, recs in (
        AccountReview.objects.filter(execution_id=execution_id)
        .order_by()
        .values_list("outcome")
        .annotate(n=Count("pk"), r=Sum("recommendations_count"))
    ):
        outcomes[outcome] = count
        recommendations += recs or 0
    return RunProgress(batches=batches, outcomes=outcomes, recommendations=recommendations)


def execution_status(execution_id: object) -> str | None:
    """A run's status alone, for a live page's poll (None if there is no such run)."""
    return (
        ScheduleExecution.objects.filter(pk=execution_id).values_list("status", flat=True).first()
    )


def batches_prunable(cutoff: datetime) -> QuerySet[RunBatch]:
    """Batches of runs that finished before ``cutoff`` (scheduling.services.pruning)."""
    return RunBatch.objects.filter(
        execution__status__in=FINISHED_EXECUTION_STATUSES, execution__finished_at__lt=cutoff
    ).order_by("pk")


def executions_prunable(cutoff: datetime) -> QuerySet[ScheduleExecution]:
    """Runs that finished before ``cutoff`` (scheduling.services.pruning)."""
    return ScheduleExecution.objects.filter(
        status__in=FINISHED_EXECUTION_STATUSES, finished_at__lt=cutoff
    ).order_by("pk")


# --- operations: the work backlog and the beat's leadership (metrics, /readyz) --------------


@dataclass(frozen=True)
class WorkBacklog:
    executor: str  # "worker" (the in-process runner) or "queue:<name>"
    pending: int
    oldest_pending_seconds: float


def work_backlog() -> list[WorkBacklog]:
    """Claimable batches per executor: pending, their run running and its session running
    (what a claim would take; a paused session's batches wait and are left out), with
    how long the oldest has been claimable. One statement over the open batches' partial
    index."""
    now = timezone.now()
    rows = (
        RunBatch.objects.filter(
            status=BatchStatus.PENDING,
            execution__status=ExecutionStatus.RUNNING,
            execution__session__status=SessionStatus.RUNNING,
        )
        .order_by()
        .values("queue")
        .annotate(pending=Count("pk"), oldest=Min("available_at"))
        .order_by("queue")
    )
    return [
        WorkBacklog(
            executor=executor_of(row["queue"]),
            pending=row["pending"],
            oldest_pending_seconds=max(0.0, (now - row["oldest"]).total_seconds())
            if row["oldest"]
            else 0.0,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class BeatLeader:
    backend_pid: int  # the PostgreSQL backend holding the lock
    address: str  # the beat's address as PostgreSQL sees it; "local" (a socket), "unknown"
    renewed_seconds: float | None  # since its last tick's statement; None: hidden from us


# A bigint advisory key shows in pg_locks as (classid: high 32 bits, objid: low 32 bits,
# objsubid 1). Activity columns of another role's backend are NULL unless this role may
# read them (the same role, or pg_read_all_stats).
_BEAT_LEADERS_SQL = """
SELECT l.pid,
       CASE WHEN a.backend_start IS NULL THEN 'unknown'
            WHEN a.client_addr IS NULL THEN 'local'
            ELSE host(a.client_addr) END,
       EXTRACT(EPOCH FROM clock_timestamp() - a.query_start)::float8
  FROM pg_locks AS l
  LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
 ORDER BY l.pid
"""


def beat_leaders() -> list[BeatLeader]:
    """Who holds beat's leadership lock now (at most one; none while no beat leads), as
    PostgreSQL's lock table has it. A beat renews it at every tick with a statement on
    the lock's connection, so ``renewed_seconds`` growing means the leader is stuck or
    cut off while PostgreSQL still keeps its connection (until TCP keepalives end it)."""
    key = conf.beat_lock_key()
    with connection.cursor() as cursor:
        cursor.execute(_BEAT_LEADERS_SQL, [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF])
        rows = cursor.fetchall()
    return [
        BeatLeader(
            backend_pid=pid,
            address=address,
            renewed_seconds=max(0.0, renewed) if renewed is not None else None,
        )
        for pid, address, renewed in rows
    ]
