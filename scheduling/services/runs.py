"""A run's life on a worker: claim, session, runner outcome, finish or retry.

Claiming is a conditional UPDATE, so of two deliveries of one message (a redelivery
after a crash, a duplicate publish) exactly one runs the review. The claimant gets a
fresh ``runner_token``: a fencing token the runner checks between batches, so a worker
that was presumed dead and replaced stops as soon as it wakes up.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.services import SYSTEM_ACTOR
from scheduling.accounts import account_source
from scheduling.models import (
    ExecutionStatus,
    ExecutionTrigger,
    OverlapPolicy,
    ScheduledReview,
    ScheduleExecution,
)
from scheduling.runners import ReviewRun, RunOutcome
from scheduling.services._audit import record_execution_event
from scheduling.services.outbox import publish_on_commit
from sergas.errors import DomainError
from sessions import services as session_services
from sessions.models import TERMINAL_STATUSES, AgentSession, SessionStatus, SessionType

logger = logging.getLogger(__name__)

WORKER_ACTOR = "worker:run_review"


@dataclass(frozen=True)
class Claim:
    run: ReviewRun
    resumed: bool  # True when continuing a paused or recovered run


def execution_claim(execution_id: str, *, actor: str = WORKER_ACTOR) -> Claim | None:
    """Take a run for this worker, or None if it is not ours to run.

    A queued run starts: it becomes running, gets its session (accounts resolved from the
    review's filter) and a token. A running run whose session is running again with no
    runner attached (resumed after a pause, recovered after a crash) is taken over.
    Anything else (already running elsewhere, finished, unknown) returns None.
    """
    token = uuid.uuid4()
    with transaction.atomic():
        try:
            execution = (
                ScheduleExecution.objects.select_for_update(of=("self",))
                .select_related("review", "session")
                .get(pk=execution_id)
            )
        except (ScheduleExecution.DoesNotExist, ValueError):
            logger.warning("Run %s does not exist; message dropped", execution_id)
            return None
        now = timezone.now()  # after the lock: the publisher's commit happened before
        if execution.status == ExecutionStatus.QUEUED and _overlaps(execution):
            _defer_for_overlap(execution, actor=actor)
            return None
        if execution.status == ExecutionStatus.QUEUED:
            execution.status = ExecutionStatus.RUNNING
            execution.started_at = now
            execution.start_lag_ms = int((now - execution.nominal_time).total_seconds() * 1000)
            execution.runner_token = token
            execution.session = _session_for(execution, actor=actor)
            execution.save(
                update_fields=["status", "started_at", "start_lag_ms", "runner_token", "session"]
            )
            record_execution_event(execution, "run_started", actor=actor)
            resumed = False
        elif (
            execution.status == ExecutionStatus.RUNNING
            and execution.runner_token is None
            and execution.session is not None
            and execution.session.status == SessionStatus.RUNNING
        ):
            execution.runner_token = token
            execution.save(update_fields=["runner_token"])
            record_execution_event(execution, "run_resumed", actor=actor)
            resumed = True
        else:
            return None
    review = execution.review
    return Claim(
        run=ReviewRun(
            execution_id=str(execution.pk),
            session_id=execution.session_id,
            runner_token=str(token),
            review_id=review.pk if review else None,
            metadata=review.metadata if review else {},
            actor=actor,
        ),
        resumed=resumed,
    )


def _overlaps(execution: ScheduleExecution) -> bool:
    """A scheduled run queued ahead of its time finds another run of its review running
    (an on-demand trigger, a long run): the overlap policy applies now."""
    review = execution.review
    return (
        execution.trigger == ExecutionTrigger.SCHEDULE
        and review is not None
        and review.overlap_policy != OverlapPolicy.ALLOW
        and ScheduleExecution.objects.filter(review=review, status=ExecutionStatus.RUNNING)
        .exclude(pk=execution.pk)
        .exists()
    )


def _defer_for_overlap(execution: ScheduleExecution, *, actor: str) -> None:
    held_already = ScheduleExecution.objects.filter(
        review_id=execution.review_id, status=ExecutionStatus.QUEUED, due_at__isnull=True
    ).exists()
    if execution.review.overlap_policy == OverlapPolicy.BUFFER_ONE and not held_already:
        execution.due_at = None
        execution.enqueued_at = None
        execution.save(update_fields=["due_at", "enqueued_at"])
        record_execution_event(execution, "run_held", actor=actor)
        return
    execution.status = ExecutionStatus.SKIPPED_OVERLAP
    execution.finished_at = timezone.now()
    execution.error = "a previous run was still active"
    execution.save(update_fields=["status", "finished_at", "error"])
    record_execution_event(execution, "run_skipped_overlap", actor=actor)


def _session_for(execution: ScheduleExecution, *, actor: str) -> AgentSession:
    review = execution.review
    owner = review.owner_id if review else ""
    accounts = account_source().resolve(owner, review.account_filter if review else {})
    session_type = (
        SessionType.ON_DEMAND
        if execution.trigger == ExecutionTrigger.ON_DEMAND
        else SessionType.SCHEDULED
    )
    session = session_services.session_create(
        orchestrator_id=f"review-{review.pk if review else 'deleted'}",
        session_type=session_type,
        account_ids=accounts,
        owner_id=owner,
        context={
            "metadata": {
                "review_id": review.pk if review else None,
                "execution_id": str(execution.pk),
                "nominal_time": execution.nominal_time.isoformat(),
                "attempt": execution.attempt,
            }
        },
        actor=actor,
    )
    return session_services.session_start(session.session_id, actor=actor)


def execution_conclude(claim: Claim, outcome: RunOutcome, *, actor: str = WORKER_ACTOR) -> None:
    """Record what the runner returned: success, a pause, or that it stopped."""
    with transaction.atomic():
        execution = _lock_mine(claim)
        if execution is None:
            return  # superseded: the new owner concludes
        if outcome is RunOutcome.COMPLETED:
            session = session_services.session_complete(claim.run.session_id, actor=actor)
            _finish(execution, ExecutionStatus.SUCCEEDED, session=session, actor=actor)
        elif outcome is RunOutcome.PAUSED:
            execution.runner_token = None
            execution.save(update_fields=["runner_token"])
            record_execution_event(execution, "run_paused", actor=actor)
            # Resumed before we let go: the resume saw our token and left the run to us.
            if AgentSession.objects.filter(
                pk=claim.run.session_id, status=SessionStatus.RUNNING
            ).exists():
                transaction.on_commit(lambda: _send_continuation(execution), robust=True)
        elif outcome is RunOutcome.STOPPED:
            session = AgentSession.objects.get(pk=claim.run.session_id)
            _finish(
                execution,
                ExecutionStatus.FAILED,
                session=session,
                actor=actor,
                error=f"session {session.status} outside the run",
                retryable=session.status == SessionStatus.FAILED,
            )


def execution_fail(
    claim: Claim, error: str, *, actor: str = WORKER_ACTOR
) -> ScheduleExecution | None:
    """The runner raised: fail the session, and retry the run if attempts are left."""
    with transaction.atomic():
        execution = _lock_mine(claim)
        if execution is None:
            return None
        session = AgentSession.objects.get(pk=claim.run.session_id)
        if session.status not in TERMINAL_STATUSES:
            session = session_services.session_fail(session.session_id, error=error, actor=actor)
        return _finish(execution, ExecutionStatus.FAILED, session=session, actor=actor, error=error)


def _lock_mine(claim: Claim) -> ScheduleExecution | None:
    return (
        ScheduleExecution.objects.select_for_update(of=("self",))
        .select_related("review")
        .filter(pk=claim.run.execution_id, runner_token=claim.run.runner_token)
        .first()
    )


def _finish(
    execution: ScheduleExecution,
    status: str,
    *,
    session: AgentSession | None,
    actor: str,
    error: str = "",
    retryable: bool = True,
) -> ScheduleExecution | None:
    """Close the attempt; schedule the next one if it failed with retries left, and
    release a run buffered behind this one. Returns the retry attempt, if any."""
    now = timezone.now()
    review = execution.review
    retry = None
    if (
        status == ExecutionStatus.FAILED
        and retryable
        and review is not None
        and execution.attempt <= review.max_retries
    ):
        status = ExecutionStatus.RETRYING
    execution.status = status
    execution.finished_at = now
    execution.runner_token = None
    execution.error = error[:5000]
    if execution.started_at:
        execution.duration_ms = int((now - execution.started_at).total_seconds() * 1000)
    if session is not None:
        context = session.context or {}
        execution.accounts_processed = len(context.get("processed_accounts", []))
        execution.accounts_failed = len(context.get("failed_accounts", []))
    execution.save()
    record_execution_event(
        execution,
        f"run_{status}",
        actor=actor,
        metadata={"error": error[:1000]} if error else None,
    )
    if review is not None:
        ScheduledReview.objects.filter(pk=review.pk).update(last_run_at=now)
    if status == ExecutionStatus.RETRYING:
        retry = ScheduleExecution.objects.create(
            review=review,
            review_name=execution.review_name,
            nominal_time=execution.nominal_time,
            attempt=execution.attempt + 1,
            trigger=ExecutionTrigger.RETRY,
            priority=execution.priority,
            due_at=now + timedelta(minutes=review.retry_delay_minutes),
        )
        record_execution_event(
            retry, "run_queued", actor=actor, metadata={"due_at": retry.due_at.isoformat()}
        )
        if review.retry_delay_minutes == 0:
            publish_on_commit([retry.pk])
    _release_buffered(execution)
    return retry


def _release_buffered(execution: ScheduleExecution) -> None:
    """Overlap policy buffer_one: the run held behind this one may go now."""
    if execution.review_id is None:
        return
    held = list(
        ScheduleExecution.objects.filter(
            review_id=execution.review_id, status=ExecutionStatus.QUEUED, due_at__isnull=True
        ).values_list("pk", flat=True)[:1]
    )
    if held:
        ScheduleExecution.objects.filter(pk__in=held).update(due_at=timezone.now())
        publish_on_commit(held)


# --- runs whose session changed outside the worker -----------------------------------------


def execution_for_session(session_id: str) -> ScheduleExecution | None:
    return (
        ScheduleExecution.objects.filter(session_id=session_id, status=ExecutionStatus.RUNNING)
        .order_by("-started_at")
        .first()
    )


def execution_continue(session_id: str, *, takeover: bool, actor: str = SYSTEM_ACTOR) -> bool:
    """The session of a running run is running again (resumed, or recovered after a
    crash): hand the run to a worker. ``takeover`` drops the token of a runner presumed
    dead (recovery); a resume leaves a live runner alone. Call inside the transaction of
    the session change; the message goes out on commit."""
    execution = (
        ScheduleExecution.objects.select_for_update(of=("self",))
        .filter(session_id=session_id, status=ExecutionStatus.RUNNING)
        .first()
    )
    if execution is None:
        return False
    if execution.runner_token is not None and not takeover:
        return False  # the runner never stopped: it carries on by itself
    execution.runner_token = None
    execution.save(update_fields=["runner_token"])
    record_execution_event(
        execution, "run_handed_over" if takeover else "run_continued", actor=actor
    )
    transaction.on_commit(lambda: _send_continuation(execution), robust=True)
    return True


def _send_continuation(execution: ScheduleExecution) -> None:
    from scheduling.publishing import RunMessage, publish_runs

    publish_runs([RunMessage(str(execution.pk), execution.priority)])


def execution_end_with_session(session_id: str, status: str, *, actor: str = SYSTEM_ACTOR) -> None:
    """A session whose run has no active runner ended elsewhere (staff cancelled a paused
    run): close the run. With a runner attached, the runner notices and concludes."""
    execution = (
        ScheduleExecution.objects.select_for_update(of=("self",))
        .select_related("review", "session")
        .filter(session_id=session_id, status=ExecutionStatus.RUNNING, runner_token=None)
        .first()
    )
    if execution is None:
        return
    outcome = (
        ExecutionStatus.SUCCEEDED if status == SessionStatus.COMPLETED else ExecutionStatus.FAILED
    )
    _finish(
        execution,
        outcome,
        session=execution.session,
        actor=actor,
        error="" if outcome == ExecutionStatus.SUCCEEDED else f"session {status} outside the run",
        retryable=status == SessionStatus.FAILED,
    )


def runs_recover_interrupted(*, actor: str = SYSTEM_ACTOR) -> list[str]:
    """Recover the interrupted sessions of running runs (their worker died); each
    recovery hands the run to a new worker from the newest checkpoint."""
    session_ids = list(
        ScheduleExecution.objects.filter(
            status=ExecutionStatus.RUNNING, session__status=SessionStatus.INTERRUPTED
        ).values_list("session_id", flat=True)
    )
    recovered = []
    for session_id in session_ids:
        try:
            session_services.session_recover(session_id, actor=actor)
        except DomainError as exc:  # raced with staff or another recovery: skip it
            logger.warning("Scheduled run's session %s not recovered: %s", session_id, exc)
            continue
        recovered.append(session_id)
    return recovered
