"""Turning due reviews into runs: the dispatcher that beat calls every tick.

One pass takes the enabled reviews whose ``next_run_at`` has come (``FOR UPDATE SKIP
LOCKED``, a batch at a time, most urgent first), and in one transaction per batch
records for each of them what happens to the due run (queued, skipped because of an
overlap, or missed because it is older than the catch-up window), advances
``next_run_at`` and writes the audit events. The batch is published right after its
commit, so the first runs of a large herd are on the queue while later batches are
still being written.

A run is one (review, nominal time): ``next_run_at`` advances in the same transaction
that creates the run, under the review's row lock, and the unique constraint on
(review, nominal_time, attempt) backs it up, so two dispatchers (a standby beat that
woke up, a stock beat firing ``fire_review``) can never create the same run twice.
"""

import functools
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import audit_events_record_many
from scheduling import conf
from scheduling.models import (
    ACTIVE_EXECUTION_STATUSES,
    ExecutionStatus,
    ExecutionTrigger,
    OverlapPolicy,
    ScheduledReview,
    ScheduleExecution,
    SchedulePriority,
)
from scheduling.recurrence import Recurrence
from scheduling.services._audit import execution_event_metadata, review_resource
from scheduling.services.outbox import executions_publish

logger = logging.getLogger(__name__)

DISPATCH_ACTOR = "beat:dispatcher"

_PRIORITY_RANK = Case(
    *(
        When(priority=priority, then=Value(rank))
        for rank, priority in enumerate(SchedulePriority.values)
    ),
    output_field=IntegerField(),
)


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


@dataclass
class _Plan:
    executions: list[ScheduleExecution] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    publish: list[Any] = field(default_factory=list)
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
    while True:
        at = now or timezone.now()
        with transaction.atomic():
            due = _lock_due(at, review_ids, batch_size)
            if not due:
                break
            plan = _plan(due, at, actor)
            ScheduleExecution.objects.bulk_create(plan.executions, batch_size=1000)
            audit_events_record_many(plan.events)
            ScheduledReview.objects.bulk_update(due, ["next_run_at"], batch_size=1000)
        plan.result.published = executions_publish(plan.publish, limit=len(plan.publish))
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
    """How long until the next enabled review is due (0 if one is), None if none is."""
    nearest = (
        ScheduledReview.objects.filter(enabled=True, next_run_at__isnull=False)
        .order_by("next_run_at")
        .values_list("next_run_at", flat=True)
        .first()
    )
    if nearest is None:
        return None
    return max(0.0, (nearest - (now or timezone.now())).total_seconds())


def _lock_due(at: datetime, review_ids: list[int] | None, batch_size: int) -> list[ScheduledReview]:
    queryset = ScheduledReview.objects.select_for_update(skip_locked=True).filter(
        enabled=True, next_run_at__lte=at
    )
    if review_ids is not None:
        queryset = queryset.filter(pk__in=review_ids)
    return list(
        queryset.annotate(rank=_PRIORITY_RANK).order_by("next_run_at", "rank", "pk")[:batch_size]
    )


def _plan(due: list[ScheduledReview], at: datetime, actor: str) -> _Plan:
    plan = _Plan()
    active: dict[int, list[tuple[str, datetime | None]]] = defaultdict(list)
    for review_id, status, due_at in ScheduleExecution.objects.filter(
        review__in=due, status__in=ACTIVE_EXECUTION_STATUSES
    ).values_list("review_id", "status", "due_at"):
        active[review_id].append((status, due_at))
    # The 09:00 herd shares a handful of recurrences: compute each timeline once.
    timeline = functools.lru_cache(maxsize=4096)(_timeline)
    for review in due:
        window_start = at - timedelta(minutes=review.catch_up_window_minutes)
        missed, candidates, next_run = timeline(
            Recurrence.of(review), review.next_run_at, window_start, at
        )
        run_at = candidates[-1] if candidates else None
        for nominal in missed:
            _add(
                plan,
                review,
                nominal,
                ExecutionStatus.MISSED,
                actor,
                due_at=None,
                error="not dispatched within the catch-up window",
            )
        for nominal in candidates[:-1]:
            _add(
                plan,
                review,
                nominal,
                ExecutionStatus.MISSED,
                actor,
                due_at=None,
                error=f"superseded by the run of {run_at.isoformat()}",
            )
        if run_at is not None:
            status, due_at = _overlap_decision(review, active[review.pk], run_at)
            skipped = status == ExecutionStatus.SKIPPED_OVERLAP
            _add(
                plan,
                review,
                run_at,
                status,
                actor,
                due_at=due_at,
                error="a previous run was still active" if skipped else "",
            )
        review.next_run_at = next_run
        plan.result.reviews += 1
    return plan


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
    review: ScheduledReview, active: list[tuple[str, datetime | None]], nominal: datetime
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


def _add(
    plan: _Plan,
    review: ScheduledReview,
    nominal: datetime,
    status: str,
    actor: str,
    *,
    due_at: datetime | None,
    error: str = "",
) -> None:
    now = timezone.now()
    execution = ScheduleExecution(
        review=review,
        review_name=review.name,
        nominal_time=nominal,
        trigger=ExecutionTrigger.SCHEDULE,
        status=status,
        priority=review.priority,
        due_at=due_at,
        error=error,
        created_at=now,
        finished_at=None if status == ExecutionStatus.QUEUED else now,
    )
    plan.executions.append(execution)
    action = {
        ExecutionStatus.QUEUED: "run_queued",
        ExecutionStatus.SKIPPED_OVERLAP: "run_skipped_overlap",
        ExecutionStatus.MISSED: "run_missed",
    }[status]
    plan.events.append(
        {
            "event_type": AuditEventType.SCHEDULE,
            "action": action,
            "actor": actor,
            "resource": review_resource(review.pk),
            "metadata": {"review": review.name, **execution_event_metadata(execution)},
            "timestamp": now,
        }
    )
    if status == ExecutionStatus.QUEUED:
        plan.result.queued += 1
        if due_at is not None:
            plan.publish.append(execution.pk)
    elif status == ExecutionStatus.SKIPPED_OVERLAP:
        plan.result.skipped += 1
    else:
        plan.result.missed += 1
