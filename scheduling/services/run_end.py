"""Ending a run: succeeded, failed, or failed with the next attempt queued.

``run_finish`` is the one way a run ends. Its caller holds the locks in order (the
review shared, the session, the run: ``scheduling.services._locks``); it then cancels
the run's open batches, stamps the review's ``last_run_at``, queues the next attempt if
there is one, lets a run buffered behind this one go, and ends the session unless it
ended first, all in the caller's transaction, each with its audit event.
"""

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from kernel.locking import LockRank, rows_locked
from scheduling.models import (
    ExecutionStatus,
    ExecutionTrigger,
    ResultOutcome,
    ScheduledReview,
    ScheduleExecution,
)
from scheduling.services._audit import record_execution_event
from scheduling.services._moves import run_batches_move, run_move
from scheduling.services.outbox import publish_on_commit
from scheduling.transitions import BatchAction, RunAction
from sessions import services as session_services
from sessions.models import TERMINAL_STATUSES, SessionStatus

ERROR_LIMIT = 5000


def run_finish(
    execution: ScheduleExecution,
    *,
    succeeded: bool,
    actor: str,
    error: str = "",
    retryable: bool = True,
) -> ScheduleExecution | None:
    """End a locked running (or queued) run; returns the next attempt if one was queued.

    A failed run with attempts left (``max_retries``) is ``retrying`` and its next
    attempt waits ``retry_delay_minutes``; ``retryable=False`` (staff cancelled it, its
    holder said retrying cannot help) makes it ``failed`` at once.
    """
    now = timezone.now()
    review = execution.review
    if succeeded:
        action = RunAction.SUCCEED
    elif retryable and review is not None and execution.attempt <= review.max_retries:
        action = RunAction.RETRY
    else:
        action = RunAction.FAIL
    processed, failed = _accounts_done(execution)
    fields = {
        "finished_at": now,
        "error": error[:ERROR_LIMIT],
        "accounts_processed": processed,
        "accounts_failed": failed,
    }
    if execution.started_at:
        fields["duration_ms"] = int((now - execution.started_at).total_seconds() * 1000)
    run_move(
        execution,
        action,
        actor=actor,
        fields=fields,
        metadata={"error": error[:1000]} if error else None,
    )
    retry = None
    if review is not None:
        _release_buffered(execution, actor=actor)  # a run: before any batch is locked
        # The review's row: its key was shared-locked first, so this is the lock order.
        ScheduledReview.objects.filter(pk=review.pk).update(last_run_at=now)
        if action is RunAction.RETRY:
            retry = _queue_next_attempt(execution, actor=actor)
    # The run ended: its open batches are cancelled, and their holders' tokens with them
    # (a late heartbeat or result is refused).
    run_batches_move(
        execution,
        BatchAction.CANCEL,
        actor=actor,
        fields={"lease_expires_at": None},
        metadata={"run_status": execution.status},
    )
    _end_session(execution, succeeded=succeeded, error=error, actor=actor)
    return retry


def _accounts_done(execution: ScheduleExecution) -> tuple[int, int]:
    counts = execution.account_reviews.aggregate(
        done=Count("pk", filter=~Q(outcome=ResultOutcome.FAILED)),
        failed=Count("pk", filter=Q(outcome=ResultOutcome.FAILED)),
    )
    return counts["done"], counts["failed"]


def _queue_next_attempt(execution: ScheduleExecution, *, actor: str) -> ScheduleExecution:
    review = execution.review
    now = timezone.now()
    retry = ScheduleExecution.objects.create(
        review=review,
        review_name=execution.review_name,
        nominal_time=execution.nominal_time,
        attempt=execution.attempt + 1,
        trigger=ExecutionTrigger.RETRY,
        priority=execution.priority,
        executor=execution.executor,
        due_at=now + timedelta(minutes=review.retry_delay_minutes),
    )
    rows_locked(LockRank.RUN, [str(retry.pk)], created=True)
    record_execution_event(
        retry, "run_queued", actor=actor, metadata={"due_at": retry.due_at.isoformat()}
    )
    if review.retry_delay_minutes == 0:
        publish_on_commit([retry.pk])
    return retry


def held_run_lock(execution: ScheduleExecution) -> ScheduleExecution | None:
    """Lock the run held behind this one (overlap policy buffer_one), if any: a path
    that will finish this run and locks a batch first calls it before the batch."""
    if execution.review_id is None:
        return None
    held_ids = list(
        ScheduleExecution.objects.filter(
            review_id=execution.review_id, status=ExecutionStatus.QUEUED, due_at__isnull=True
        ).values_list("pk", flat=True)[:1]
    )
    if not held_ids:
        return None
    rows_locked(LockRank.RUN, [str(held_ids[0])])
    return (
        ScheduleExecution.objects.select_for_update()
        .filter(pk=held_ids[0], status=ExecutionStatus.QUEUED, due_at__isnull=True)
        .first()
    )


def _release_buffered(execution: ScheduleExecution, *, actor: str) -> None:
    """Overlap policy buffer_one: the run held behind this one may go now."""
    held = held_run_lock(execution)
    if held is None:
        return
    run_move(held, RunAction.RELEASE, actor=actor, fields={"due_at": timezone.now()})
    publish_on_commit([held.pk])


def _end_session(execution: ScheduleExecution, *, succeeded: bool, error: str, actor: str) -> None:
    """The run is closed before its session ends, so the session's end finds no open run
    to close (``ScheduledRunOwner.follow``)."""
    if execution.session_id is None:
        return
    status = (
        session_services.lock_session(execution.session_id, with_state=False).status
        if execution.session is None
        else execution.session.status
    )
    if status in TERMINAL_STATUSES:
        return
    if succeeded:
        if status == SessionStatus.RUNNING:
            session_services.session_complete(execution.session_id, actor=actor)
        return
    session_services.session_fail(execution.session_id, error=error or "run failed", actor=actor)
