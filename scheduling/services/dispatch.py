"""Turning due reviews into runs: the dispatcher that beat calls every tick.

A pass takes the enabled reviews whose ``next_run_at`` falls before now plus
``DISPATCH_LEAD_SECONDS`` (``FOR UPDATE SKIP LOCKED``, a batch at a time, most urgent
first) and, in one transaction per batch, records what happens to each due run as a
``ScheduleExecution`` row with its audit event, and advances ``next_run_at``:

- a run whose time has come is queued (or skipped because of an overlap, or missed
  because it is older than the catch-up window) and published right after the commit;
- a run due within the lead time is queued ahead, with ``due_at`` its nominal time, and
  the workers are asked to prepare it (accounts, session, batches:
  ``scheduling.services.prepared``); at that second the outbox starts it in bulk, or
  publishes it if it was not prepared. At 09:00 sharp only starting is left to do for
  the herd, however large. Reviews with an active run are not queued ahead (whether
  the run overlaps is decided when it is due), and a run queued ahead still checks the
  overlap policy when it starts.

A run is one (review, nominal time): ``next_run_at`` advances in the same transaction
that creates the run, under the review's row lock, and the unique constraint on
(review, nominal_time, attempt) backs it up, so two dispatchers (a standby beat that
woke up, a stock beat firing ``fire_review``) can never create the same run twice.
"""

import functools
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import audit_events_record_generated
from kernel.locking import LockRank, rows_locked
from kernel.pgcopy import copy_rows
from scheduling import conf
from scheduling.metrics import observe_runs_finished
from scheduling.models import (
    ACTIVE_EXECUTION_STATUSES,
    PRIORITY_RANK,
    ExecutionStatus,
    ExecutionTrigger,
    OverlapPolicy,
    ScheduledReview,
    ScheduleExecution,
)
from scheduling.recurrence import Recurrence
from scheduling.services._audit import review_resource
from scheduling.services.outbox import executions_publish_new
from scheduling.services.prepared import runs_prepare_request

logger = logging.getLogger(__name__)

DISPATCH_ACTOR = "beat:dispatcher"


@dataclass
class DispatchResult:
    queued: int = 0
    skipped: int = 0
    missed: int = 0
    published: int = 0
    reviews: int = 0

    def add(self, other: "DispatchResult") -> None:
        for name in ("queued", "skipped", "missed", "published", "reviews"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(slots=True)
class _DueReview:
    """The columns of a due review the dispatcher needs (no model instances: the herd
    is thousands of rows and model construction would dominate)."""

    id: int
    name: str
    priority: str
    next_run_at: datetime
    catch_up_window_minutes: int
    overlap_policy: str
    schedule_type: str
    timezone: str
    time_of_day: Any
    weekday: int | None
    day_of_month: int | None
    cron_expression: str
    interval_minutes: int | None
    scheduled_time: datetime | None
    starts_at: datetime | None
    executor: str


_DUE_FIELDS = [field.name for field in fields(_DueReview)]

_EXECUTION_COLUMNS = [
    "id",
    "review_id",
    "review_name",
    "nominal_time",
    "attempt",
    "trigger",
    "status",
    "priority",
    "executor",
    "due_at",
    "finished_at",
    "error",
    "accounts_processed",
    "accounts_failed",
    "created_at",
]


@dataclass
class _Plan:
    at: datetime
    actor: str
    executions: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    publish: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    prepare: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    next_runs: dict[datetime | None, list[int]] = field(default_factory=lambda: defaultdict(list))
    left_for_later: list[int] = field(default_factory=list)
    finished: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    result: DispatchResult = field(default_factory=DispatchResult)


def reviews_dispatch_due(
    *,
    now: datetime | None = None,
    review_ids: list[int] | None = None,
    actor: str = DISPATCH_ACTOR,
) -> DispatchResult:
    """Dispatch every review due at ``now`` (default: the current time), batch by batch."""
    total = DispatchResult()
    batch_size = conf.dispatch_batch_size()
    lead = timedelta(seconds=conf.dispatch_lead_seconds())
    left_for_later: list[int] = []  # reviews with an active run: not prepared ahead
    while True:
        at = now or timezone.now()
        with transaction.atomic():
            due = _lock_due(at + lead, review_ids, left_for_later, batch_size)
            if not due:
                break
            plan = _plan(due, at, actor)
            left_for_later += plan.left_for_later
            copy_rows(ScheduleExecution._meta.db_table, _EXECUTION_COLUMNS, plan.executions)
            audit_events_record_generated(plan.events)
            for status, executors in plan.finished.items():
                observe_runs_finished(status, executors)
            # The herd shares a handful of next run times: one UPDATE per distinct value.
            for next_run_at, ids in plan.next_runs.items():
                ScheduledReview.objects.filter(pk__in=ids).update(next_run_at=next_run_at)
        plan.result.published = executions_publish_new(plan.publish)
        runs_prepare_request(plan.prepare)
        total.add(plan.result)
        if len(due) < batch_size:
            break
    if total.reviews:
        logger.info(
            "Dispatched %d review(s): %d queued, %d skipped (overlap), %d missed, %d published",
            total.reviews,
            total.queued,
            total.skipped,
            total.missed,
            total.published,
        )
    return total


def seconds_until_next_due(*, now: datetime | None = None) -> float | None:
    """How long until the dispatcher has work: a review to prepare or a prepared run to
    publish (0 if now), None if nothing is scheduled."""
    now = now or timezone.now()
    next_review = (
        ScheduledReview.objects.filter(enabled=True, next_run_at__isnull=False)
        .order_by("next_run_at")
        .values_list("next_run_at", flat=True)
        .first()
    )
    next_publish = (
        ScheduleExecution.objects.filter(
            status=ExecutionStatus.QUEUED, enqueued_at__isnull=True, due_at__isnull=False
        )
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    moments = []
    if next_review is not None:
        moments.append(next_review - timedelta(seconds=conf.dispatch_lead_seconds()))
    if next_publish is not None:
        moments.append(next_publish)
    if not moments:
        return None
    return max(0.0, (min(moments) - now).total_seconds())


def _lock_due(
    until: datetime, review_ids: list[int] | None, excluded: list[int], batch_size: int
) -> list[_DueReview]:
    # NO KEY UPDATE: runs of these reviews finishing meanwhile hold their key shared.
    queryset = ScheduledReview.objects.select_for_update(skip_locked=True, no_key=True).filter(
        enabled=True, next_run_at__lte=until
    )
    if review_ids is not None:
        queryset = queryset.filter(pk__in=review_ids)
    if excluded:
        queryset = queryset.exclude(pk__in=excluded)
    rows = (
        queryset.annotate(rank=PRIORITY_RANK)
        .order_by("next_run_at", "rank", "pk")
        .values_list(*_DUE_FIELDS)[:batch_size]
    )
    due = [_DueReview(*row) for row in rows]
    rows_locked(LockRank.REVIEW, [review.id for review in due])
    return due


def _plan(due: list[_DueReview], at: datetime, actor: str) -> _Plan:
    plan = _Plan(at=at, actor=actor)
    active: dict[int, list[tuple[str, datetime | None]]] = defaultdict(list)
    for review_id, status, due_at in ScheduleExecution.objects.filter(
        review_id__in=[review.id for review in due], status__in=ACTIVE_EXECUTION_STATUSES
    ).values_list("review_id", "status", "due_at"):
        active[review_id].append((status, due_at))
    # The 09:00 herd shares a handful of recurrences: compute each timeline once.
    timeline = functools.lru_cache(maxsize=4096)(_timeline)
    for review in due:
        if review.next_run_at > at:
            _prepare(plan, review, active[review.id], timeline)
            continue
        window_start = at - timedelta(minutes=review.catch_up_window_minutes)
        recurrence = Recurrence.of(review).normalized_after(review.next_run_at)
        missed, candidates, next_run = timeline(recurrence, review.next_run_at, window_start, at)
        run_at = candidates[-1] if candidates else None
        for nominal in missed:
            _add(
                plan,
                review,
                nominal,
                ExecutionStatus.MISSED,
                error="not dispatched within the catch-up window",
            )
        for nominal in candidates[:-1]:
            _add(
                plan,
                review,
                nominal,
                ExecutionStatus.MISSED,
                error=f"superseded by the run of {run_at.isoformat()}",
            )
        if run_at is not None:
            status, due_at = _overlap_decision(review, active[review.id], run_at)
            skipped = status == ExecutionStatus.SKIPPED_OVERLAP
            _add(
                plan,
                review,
                run_at,
                status,
                due_at=due_at,
                error="a previous run was still active" if skipped else "",
            )
        plan.next_runs[next_run].append(review.id)
        plan.result.reviews += 1
    return plan


def _prepare(
    plan: _Plan,
    review: _DueReview,
    active: list[tuple[str, datetime | None]],
    timeline: Any,
) -> None:
    """Queue a run due within the lead time ahead of its time (published when due)."""
    if active:
        plan.left_for_later.append(review.id)  # overlap is decided when it is due
        return
    nominal = review.next_run_at
    recurrence = Recurrence.of(review).normalized_after(nominal)
    _missed, _runnable, next_run = timeline(recurrence, nominal, nominal, nominal)
    _add(plan, review, nominal, ExecutionStatus.QUEUED, due_at=nominal)
    plan.next_runs[next_run].append(review.id)
    plan.result.reviews += 1


def _timeline(
    recurrence: Recurrence, first: datetime, window_start: datetime, at: datetime
) -> tuple[list[datetime], list[datetime], datetime | None]:
    """(missed, runnable, next): occurrences from ``first`` up to ``at`` split at the
    catch-up window (missed ones capped), and the first occurrence after ``at``."""
    cap = conf.missed_runs_recorded_max()
    missed: list[datetime] = []
    occurrence: datetime | None = first
    occurrences = recurrence.occurrences(first)
    while occurrence is not None and occurrence < window_start:
        if len(missed) < cap:
            missed.append(occurrence)
        else:
            # Too many to record one by one: jump to the window instead of walking.
            occurrences = recurrence.occurrences(window_start - timedelta(microseconds=1))
        occurrence = next(occurrences, None)
    runnable = []
    while occurrence is not None and occurrence <= at:
        runnable.append(occurrence)
        occurrence = next(occurrences, None)
    return missed, runnable, occurrence


def _overlap_decision(
    review: _DueReview, active: list[tuple[str, datetime | None]], nominal: datetime
) -> tuple[str, datetime | None]:
    """(status, due_at) of a run due while ``active`` runs of the same review exist."""
    if not active or review.overlap_policy == OverlapPolicy.ALLOW:
        return ExecutionStatus.QUEUED, nominal
    if review.overlap_policy == OverlapPolicy.BUFFER_ONE:
        already_buffered = any(
            status == ExecutionStatus.QUEUED and due_at is None for status, due_at in active
        )
        if not already_buffered:
            return ExecutionStatus.QUEUED, None  # held until the active run finishes
    return ExecutionStatus.SKIPPED_OVERLAP, None


_ACTIONS = {
    ExecutionStatus.QUEUED: "run_queued",
    ExecutionStatus.SKIPPED_OVERLAP: "run_skipped_overlap",
    ExecutionStatus.MISSED: "run_missed",
}


def _add(
    plan: _Plan,
    review: _DueReview,
    nominal: datetime,
    status: str,
    *,
    due_at: datetime | None = None,
    error: str = "",
) -> None:
    execution_id = uuid.uuid4()
    finished_at = None if status == ExecutionStatus.QUEUED else plan.at
    plan.executions.append(
        (
            execution_id,
            review.id,
            review.name,
            nominal,
            1,
            ExecutionTrigger.SCHEDULE.value,
            status,
            review.priority,
            review.executor,
            due_at,
            finished_at,
            error,
            0,
            0,
            plan.at,
        )
    )
    plan.events.append(
        {
            "event_type": AuditEventType.SCHEDULE,
            "action": _ACTIONS[status],
            "actor": plan.actor,
            "resource": review_resource(review.id),
            "metadata": {
                "review": review.name,
                "execution_id": str(execution_id),
                "nominal_time": nominal.isoformat(),
                "attempt": 1,
                "trigger": ExecutionTrigger.SCHEDULE.value,
                "status": status,
            },
            "timestamp": plan.at,
        }
    )
    if status == ExecutionStatus.QUEUED:
        plan.result.queued += 1
        if due_at is not None and due_at <= plan.at:
            plan.publish.append((execution_id, review.priority))
        elif due_at is not None:
            plan.prepare.append((execution_id, review.priority))
    else:
        plan.finished[status].append(review.executor)
        if status == ExecutionStatus.SKIPPED_OVERLAP:
            plan.result.skipped += 1
        else:
            plan.result.missed += 1
