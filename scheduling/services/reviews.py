"""Creating, changing, pausing, resuming, deleting and triggering scheduled reviews.

Each function is one transaction that changes the review, its PeriodicTask and records
the audit event together.
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import SYSTEM_ACTOR
from kernel.locking import LockRank, rows_locked
from scheduling import conf
from scheduling.accounts import account_source
from scheduling.exceptions import (
    ALREADY_PAUSED,
    NOT_PAUSED,
    InvalidExecutor,
    InvalidSchedule,
    NoReviewRunner,
    ReviewNotFound,
    ReviewStateConflict,
)
from scheduling.models import (
    EXECUTOR_PATTERN,
    WORKER_EXECUTOR,
    ExecutionStatus,
    ExecutionTrigger,
    OverlapPolicy,
    ScheduledReview,
    ScheduleExecution,
    SchedulePriority,
    ScheduleType,
)
from scheduling.recurrence import Recurrence, zone
from scheduling.services._audit import record_execution_event, record_review_event
from scheduling.services._locks import review_lock
from scheduling.services.outbox import publish_on_commit
from scheduling.services.sync import periodic_task_delete, periodic_task_sync
from sessions import services as session_services

# Fields a caller may set; everything else is derived.
EDITABLE_FIELDS = (
    "name",
    "owner_id",
    "schedule_type",
    "time_of_day",
    "weekday",
    "day_of_month",
    "cron_expression",
    "interval_minutes",
    "scheduled_time",
    "starts_at",
    "timezone",
    "priority",
    "max_retries",
    "retry_delay_minutes",
    "overlap_policy",
    "catch_up_window_minutes",
    "account_filter",
    "metadata",
    "executor",
)
_SCHEDULE_FIELDS = frozenset(EDITABLE_FIELDS) - {
    "name",
    "owner_id",
    "priority",
    "max_retries",
    "retry_delay_minutes",
    "overlap_policy",
    "catch_up_window_minutes",
    "account_filter",
    "metadata",
    "executor",
}

# What a run prepared ahead of its time was made from (its accounts).
_PREPARED_FIELDS = frozenset({"owner_id", "account_filter"})


def _lock(review_id: int, *, for_delete: bool = False) -> ScheduledReview:
    review = review_lock(review_id, for_delete=for_delete)
    if review is None:
        raise ReviewNotFound(review_id)
    return review


def review_validate(review: ScheduledReview) -> None:
    """Normalise and check an unsaved review; raises ``InvalidSchedule`` with the field."""
    for name in EDITABLE_FIELDS:
        if getattr(review, name) is None and not ScheduledReview._meta.get_field(name).null:
            raise InvalidSchedule(f"{name} cannot be null; leave it out to keep it", field=name)
    review.name = (review.name or "").strip()
    if not review.name or len(review.name) > 200:
        raise InvalidSchedule("name must be 1-200 characters", field="name")
    if not (review.owner_id or "").strip():
        raise InvalidSchedule("owner_id is required", field="owner_id")
    if review.priority not in SchedulePriority.values:
        raise InvalidSchedule(
            f"'{review.priority}' is not a priority; use one of "
            f"{', '.join(SchedulePriority.values)}",
            field="priority",
        )
    if review.overlap_policy not in OverlapPolicy.values:
        raise InvalidSchedule(
            f"'{review.overlap_policy}' is not an overlap policy; use one of "
            f"{', '.join(OverlapPolicy.values)}",
            field="overlap_policy",
        )
    for name, low, high in (
        ("max_retries", 0, 20),
        ("retry_delay_minutes", 0, 7 * 24 * 60),
        ("catch_up_window_minutes", 0, 7 * 24 * 60),
    ):
        value = getattr(review, name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidSchedule(f"{name} must be a whole number from {low} to {high}", field=name)
    if not isinstance(review.metadata, dict):
        raise InvalidSchedule("metadata must be an object", field="metadata")
    if not isinstance(review.executor, str) or not re.match(EXECUTOR_PATTERN, review.executor):
        raise InvalidExecutor(review.executor)
    if review.executor == WORKER_EXECUTOR and not conf.review_runner_path():
        raise NoReviewRunner
    # A naive one-time or anchor datetime means wall time in the review's timezone.
    tz = zone(review.timezone)
    for name in ("scheduled_time", "starts_at"):
        value = getattr(review, name)
        if isinstance(value, datetime) and timezone.is_naive(value):
            setattr(review, name, value.replace(tzinfo=tz))
    if review.cron_expression and review.schedule_type == ScheduleType.CRON:
        review.cron_expression = " ".join(review.cron_expression.split())
    Recurrence.of(review).validate()
    account_source().validate(review.account_filter)


def _drop_prepared_runs(review: ScheduledReview, *, reason: str, actor: str) -> bool:
    """Runs queued ahead of their time (dispatch lead) that the change makes wrong: they
    were never published, so they are withdrawn rather than left to run, and a session
    prepared for one (``scheduling.services.prepared``) is cancelled first (the review is
    locked, then the sessions, then the runs). Returns whether any was withdrawn."""
    prepared = ScheduleExecution.objects.filter(
        review=review,
        trigger=ExecutionTrigger.SCHEDULE,
        status=ExecutionStatus.QUEUED,
        enqueued_at__isnull=True,
        due_at__gt=timezone.now(),
    )
    sessions = [s for s in prepared.values_list("session_id", flat=True) if s is not None]
    session_services.sessions_cancel_unstarted(
        sessions, reason=f"its run was withdrawn: {reason}", actor=actor
    )
    executions = list(prepared.order_by("pk"))
    rows_locked(LockRank.RUN, [str(execution.pk) for execution in executions])
    for execution in executions:
        record_execution_event(
            execution,
            "run_unscheduled",
            actor=actor,
            metadata={"reason": reason, "session_cancelled": execution.session_id}
            if execution.session_id
            else {"reason": reason},
        )
    prepared.delete()
    return bool(executions)


def _next_run(review: ScheduledReview, after: datetime) -> datetime | None:
    return Recurrence.of(review).next_after(after) if review.enabled else None


def review_create(*, actor: str = SYSTEM_ACTOR, **fields: Any) -> ScheduledReview:
    """Create a review from ``EDITABLE_FIELDS`` (and ``enabled``) and its PeriodicTask."""
    unknown = set(fields) - set(EDITABLE_FIELDS) - {"enabled"}
    if unknown:
        raise InvalidSchedule(
            f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
        )
    now = timezone.now()
    review = ScheduledReview(created_at=now, updated_at=now, **fields)
    if "starts_at" not in fields:
        review.starts_at = now.replace(microsecond=0)
    review_validate(review)
    if (
        review.schedule_type == ScheduleType.ONE_TIME
        and review.scheduled_time is not None
        and review.scheduled_time <= now
    ):
        raise InvalidSchedule("scheduled_time is in the past", field="scheduled_time")
    review.next_run_at = _next_run(review, now)
    with transaction.atomic():
        review.save()
        periodic_task_sync(review)
        record_review_event(
            review,
            "review_created",
            actor=actor,
            metadata={
                "schedule_type": review.schedule_type,
                "next_run_at": _iso(review.next_run_at),
            },
        )
    return review


def review_update(
    review_id: int, *, changes: dict[str, Any], actor: str = SYSTEM_ACTOR
) -> ScheduledReview:
    """Change editable fields; the next run is recomputed when the schedule changed."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidSchedule(
            f"unknown or read-only field(s): {', '.join(sorted(unknown))}",
            field=sorted(unknown)[0],
        )
    with transaction.atomic():
        review = _lock(review_id)
        changed = [name for name, value in changes.items() if getattr(review, name) != value]
        for name in changed:
            setattr(review, name, changes[name])
        review_validate(review)
        if not changed:
            return review
        if _SCHEDULE_FIELDS & set(changed):
            _drop_prepared_runs(review, reason="schedule changed", actor=actor)
            review.next_run_at = _next_run(review, timezone.now())
        elif _PREPARED_FIELDS & set(changed) and _drop_prepared_runs(
            review, reason="accounts changed", actor=actor
        ):
            # Prepared with the old owner or filter: queued (and prepared) again.
            review.next_run_at = _next_run(review, timezone.now())
        review.updated_at = timezone.now()
        review.save()
        periodic_task_sync(review)
        record_review_event(
            review,
            "review_updated",
            actor=actor,
            metadata={"changed": sorted(changed), "next_run_at": _iso(review.next_run_at)},
        )
    return review


def review_pause(review_id: int, *, note: str = "", actor: str = SYSTEM_ACTOR) -> ScheduledReview:
    """Stop scheduling runs; the note says why (shown to staff)."""
    with transaction.atomic():
        review = _lock(review_id)
        if not review.enabled:
            raise ReviewStateConflict(ALREADY_PAUSED.format(review_id=review_id))
        now = timezone.now()
        _drop_prepared_runs(review, reason="review paused", actor=actor)
        review.enabled = False
        review.paused_note = note.strip()
        review.paused_at = now
        review.next_run_at = None
        review.updated_at = now
        review.save()
        periodic_task_sync(review)
        record_review_event(review, "review_paused", actor=actor, metadata={"note": note})
    return review


def review_resume(review_id: int, *, actor: str = SYSTEM_ACTOR) -> ScheduledReview:
    """Schedule runs again. Runs that fell while paused are not fired, except one still
    inside the catch-up window, which the dispatcher runs at once."""
    with transaction.atomic():
        review = _lock(review_id)
        if review.enabled:
            raise ReviewStateConflict(NOT_PAUSED.format(review_id=review_id))
        now = timezone.now()
        window_start = now - timedelta(minutes=review.catch_up_window_minutes)
        review.enabled = True
        review.next_run_at = _next_run(review, max(window_start, review.paused_at or now))
        note = review.paused_note
        review.paused_note = ""
        review.paused_at = None
        review.updated_at = now
        review.save()
        periodic_task_sync(review)
        record_review_event(
            review,
            "review_resumed",
            actor=actor,
            metadata={"paused_note": note, "next_run_at": _iso(review.next_run_at)},
        )
    return review


def review_delete(review_id: int, *, actor: str = SYSTEM_ACTOR) -> None:
    """Delete the review and its PeriodicTask; its run history stays (review_name)."""
    with transaction.atomic():
        review = _lock(review_id, for_delete=True)
        record_review_event(review, "review_deleted", actor=actor)
        _drop_prepared_runs(review, reason="review deleted", actor=actor)
        periodic_task_delete(review)
        review.delete()


def review_trigger_on_demand(review_id: int, *, actor: str = SYSTEM_ACTOR) -> ScheduleExecution:
    """Run the review now, paused or not, outside its schedule."""
    with transaction.atomic():
        review = _lock(review_id)
        now = timezone.now()
        execution = ScheduleExecution.objects.create(
            review=review,
            review_name=review.name,
            nominal_time=now,
            trigger=ExecutionTrigger.ON_DEMAND,
            priority=review.priority,
            executor=review.executor,
            due_at=now,
        )
        record_execution_event(execution, "run_queued", actor=actor)
        publish_on_commit([execution.pk])
    return execution


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None
