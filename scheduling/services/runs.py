"""A run's life on the workers: claim, fan out into batches, record each, finish.

1. ``execution_claim`` (task ``run_review``): a queued run becomes running, gets its
   session (accounts from the review's filter) and is split into ``RunBatch`` rows, one
   message each, which any worker on any host may take. For a running run (resumed,
   recovered) it publishes the batches still pending.
2. ``batch_claim`` (task ``run_review_batch``): a conditional update takes a pending
   batch with a fresh token, if the session is running; a paused or interrupted session
   leaves it pending, an ended one cancels it.
3. ``batch_record``: the runner's result, the session's metrics and checkpoint, the tool
   and task events and the batch's status commit together, only if the token still
   holds (fencing: a worker presumed dead and replaced records nothing). The batch that
   finds no other batch open completes the run.

A batch whose worker died runs again: at once when Celery redelivers its message (the
worker child was lost), after ``SCHEDULING_BATCH_LEASE_SECONDS`` otherwise, or when the
session, silent past the heartbeat timeout, is recovered. Its metrics were never
committed, so no account is counted twice.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.services import SYSTEM_ACTOR
from scheduling import conf
from scheduling.accounts import account_source
from scheduling.models import (
    BatchStatus,
    ExecutionStatus,
    ExecutionTrigger,
    OverlapPolicy,
    RunBatch,
    ScheduledReview,
    ScheduleExecution,
)
from scheduling.publishing import BATCH_TASK, RunMessage, publish_runs
from scheduling.runners import BatchResult, ReviewRun, review_runner
from scheduling.services._audit import record_execution_event
from scheduling.services.outbox import publish_on_commit
from sergas.errors import DomainError
from sessions import services as session_services
from sessions.exceptions import SessionNotRunning
from sessions.hooks import AgentHooks, HookEvent, hook_events_record
from sessions.models import TERMINAL_STATUSES, AgentSession, HookName, SessionStatus, SessionType
from sessions.selectors import session_context

logger = logging.getLogger(__name__)

WORKER_ACTOR = "worker:run_review"
_OPEN = (BatchStatus.PENDING, BatchStatus.RUNNING)


# --- the run -------------------------------------------------------------------------------


def execution_claim(execution_id: str, *, actor: str = WORKER_ACTOR) -> int:
    """Start a queued run (session, batches) or continue a running one; publishes its
    open batches on commit and returns how many. Anything else (finished, skipped by the
    overlap policy, unknown, a duplicate message) returns 0."""
    with transaction.atomic():
        execution = _lock_execution(execution_id)
        if execution is None:
            logger.warning("Run %s does not exist; message dropped", execution_id)
            return 0
        if execution.status == ExecutionStatus.QUEUED:
            if _overlaps(execution):
                _defer_for_overlap(execution, actor=actor)
                return 0
            return _start(execution, actor=actor)
        if execution.status == ExecutionStatus.RUNNING and execution.session is not None:
            return _continue(execution, actor=actor)
        return 0


def _lock_execution(execution_id: str) -> ScheduleExecution | None:
    try:
        return (
            ScheduleExecution.objects.select_for_update(of=("self",))
            .select_related("review", "session")
            .get(pk=execution_id)
        )
    except (ScheduleExecution.DoesNotExist, ValueError):
        return None


def _start(execution: ScheduleExecution, *, actor: str) -> int:
    now = timezone.now()  # after the lock: the publisher's commit happened before
    execution.status = ExecutionStatus.RUNNING
    execution.started_at = now
    execution.start_lag_ms = int((now - execution.nominal_time).total_seconds() * 1000)
    execution.session = _session_for(execution, actor=actor)
    execution.save(update_fields=["status", "started_at", "start_lag_ms", "session"])
    accounts = execution.session.account_ids
    size = conf.runner_batch_size()
    batches = RunBatch.objects.bulk_create(
        RunBatch(execution=execution, index=index, account_ids=accounts[start : start + size])
        for index, start in enumerate(range(0, len(accounts), size))
    )
    session_services.session_update_context(
        execution.session_id, changes={"total_batches": len(batches)}, actor=actor
    )
    record_execution_event(
        execution,
        "run_started",
        actor=actor,
        metadata={"batches": len(batches), "accounts": len(accounts)},
    )
    if not batches:
        _succeed(execution, actor=actor)
        return 0
    _publish_batches_on_commit(execution, [batch.pk for batch in batches])
    return len(batches)


def _continue(execution: ScheduleExecution, *, actor: str) -> int:
    """Resumed or recovered: publish what is still pending; finish if nothing is."""
    if execution.session.status != SessionStatus.RUNNING:
        return 0
    open_batches = list(execution.batches.filter(status__in=_OPEN).values_list("pk", "status"))
    if not open_batches:
        _succeed(execution, actor=actor)
        return 0
    pending = [pk for pk, status in open_batches if status == BatchStatus.PENDING]
    _publish_batches_on_commit(execution, pending)
    return len(pending)


def _publish_batches_on_commit(execution: ScheduleExecution, batch_ids: list[int]) -> None:
    messages = [RunMessage(str(pk), execution.priority, task=BATCH_TASK) for pk in batch_ids]
    transaction.on_commit(lambda: publish_runs(messages), robust=True)


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


def _succeed(execution: ScheduleExecution, *, actor: str) -> None:
    """Every batch is done: the run succeeded. The execution is closed before the
    session completes, so the session's end finds no open run to close."""
    session = execution.session
    _finish(execution, ExecutionStatus.SUCCEEDED, session=session, actor=actor)
    session_services.session_complete(session.session_id, actor=actor)


# --- batches -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchClaim:
    batch_id: int
    token: uuid.UUID
    index: int
    accounts: list[str]
    run: ReviewRun


def batch_claim(
    batch_id: int,
    *,
    redelivered: bool = False,
    own_token: uuid.UUID | None = None,
    actor: str = WORKER_ACTOR,
) -> BatchClaim | None:
    """Take a pending batch for this worker, or None. A running batch is taken over only
    when its message was redelivered (Celery does that when the worker died) or when
    ``own_token`` still holds it (a retry of a claim whose result could not be recorded:
    nobody else has taken the batch meanwhile)."""
    with transaction.atomic():
        batch = (
            RunBatch.objects.select_for_update(of=("self",))
            .select_related("execution__review", "execution__session")
            .filter(pk=batch_id)
            .first()
        )
        if batch is None:
            return None
        takeover = batch.status == BatchStatus.RUNNING and (
            redelivered or (own_token is not None and batch.token == own_token)
        )
        if batch.status != BatchStatus.PENDING and not takeover:
            return None
        execution = batch.execution
        session = execution.session
        if execution.status != ExecutionStatus.RUNNING or session.status in TERMINAL_STATUSES:
            batch.status = BatchStatus.CANCELLED
            batch.save(update_fields=["status"])
            return None
        if session.status != SessionStatus.RUNNING:
            return None  # paused or interrupted: stays pending until the run continues
        now = timezone.now()
        batch.status = BatchStatus.RUNNING
        batch.token = uuid.uuid4()
        batch.attempts += 1
        batch.started_at = now
        batch.lease_expires_at = now + timedelta(seconds=conf.batch_lease_seconds())
        batch.save(update_fields=["status", "token", "attempts", "started_at", "lease_expires_at"])
        # In the claim's transaction: a heartbeat that fails must undo the claim, or the
        # task's retry would find the batch taken (by itself) and leave it to the lease.
        session_services.session_heartbeat(session.session_id)
    review = execution.review
    return BatchClaim(
        batch_id=batch.pk,
        token=batch.token,
        index=batch.index,
        accounts=list(batch.account_ids),
        run=ReviewRun(
            execution_id=str(execution.pk),
            session_id=session.session_id,
            review_id=review.pk if review else None,
            metadata=review.metadata if review else {},
            actor=actor,
        ),
    )


def batch_review(claim: BatchClaim) -> None:
    """Run the runner on the batch and record the result (the task's whole body)."""
    runner = review_runner()
    hooks = AgentHooks(runner.agent_name, session_id=claim.run.session_id, actor=claim.run.actor)
    task = hooks.pre_task("review_batch", metadata={"batch": claim.index})
    try:
        result = runner.review_batch(claim.run, claim.accounts)
    except Exception as exc:
        hooks.post_task(task, error=exc)
        batch_fail(claim, f"{type(exc).__name__}: {exc}")
        raise
    finished = HookEvent(
        hook=HookName.POST_TASK,
        name="review_batch",
        session_id=claim.run.session_id,
        invocation_id=task.invocation_id,
        duration_seconds=time.monotonic() - task.started,
        metadata={"batch": claim.index},
    )
    batch_record(claim, result, events=[*result.events, finished], agent=runner.agent_name)


def batch_record(
    claim: BatchClaim, result: BatchResult, *, events: list[HookEvent], agent: str
) -> bool:
    """Record a batch's result if this worker still owns it; the last batch completes the
    run. Returns False when the batch was taken over or the session ended meanwhile."""
    run = claim.run
    try:
        with transaction.atomic():
            batch = _lock_mine(claim)
            if batch is None:
                return False  # superseded: the new owner records
            session_services.session_update_metrics(
                run.session_id,
                counters=result.counters,
                processing_times_ms=result.processing_times_ms,
                actor=run.actor,
            )
            session_services.session_checkpoint(
                run.session_id,
                context_changes={
                    "processed_accounts": result.processed,
                    "failed_accounts": result.failed,
                },
                context_increments={
                    "current_batch": 1,
                    "recommendations_count": result.recommendations,
                },
                actor=run.actor,
            )
            hook_events_record(events, agent_name=agent, actor=run.actor)
            batch.status = BatchStatus.DONE
            batch.finished_at = timezone.now()
            batch.lease_expires_at = None
            batch.save(update_fields=["status", "finished_at", "lease_expires_at"])
            _finish_if_last(run, actor=run.actor)
    except SessionNotRunning:
        return False  # the session ended during the batch: nothing is recorded
    session_services.session_heartbeat(run.session_id)
    return True


def _lock_mine(claim: BatchClaim) -> RunBatch | None:
    return (
        RunBatch.objects.select_for_update()
        .filter(pk=claim.batch_id, token=claim.token, status=BatchStatus.RUNNING)
        .first()
    )


def _finish_if_last(run: ReviewRun, *, actor: str) -> None:
    # The execution row lock serialises the batches' last look: one of them finishes.
    execution = _lock_execution(run.execution_id)
    if execution is None or execution.status != ExecutionStatus.RUNNING:
        return
    if execution.batches.filter(status__in=_OPEN).exists():
        return
    if execution.session.status == SessionStatus.RUNNING:
        _succeed(execution, actor=actor)
    # Paused with every batch done: resuming the session finishes the run (_continue).


def batch_fail(claim: BatchClaim, error: str, *, actor: str = WORKER_ACTOR) -> None:
    """The runner raised: fail the session and the run (retried as a whole if attempts
    are left); the run's other batches are cancelled."""
    with transaction.atomic():
        if _lock_mine(claim) is None:
            return
        execution = _lock_execution(claim.run.execution_id)
        if execution is None or execution.status != ExecutionStatus.RUNNING:
            return
        _finish(
            execution, ExecutionStatus.FAILED, session=execution.session, actor=actor, error=error
        )
        if execution.session.status not in TERMINAL_STATUSES:
            session_services.session_fail(execution.session_id, error=error, actor=actor)


def batches_reap_expired(*, actor: str = SYSTEM_ACTOR) -> int:
    """Running batches whose lease expired (their worker died and Celery did not
    redeliver) go back to pending and are published again; returns how many."""
    now = timezone.now()
    expired = list(
        RunBatch.objects.filter(status=BatchStatus.RUNNING, lease_expires_at__lt=now)
        .select_related("execution")
        .values_list("pk", "execution__priority")
    )
    if not expired:
        return 0
    with transaction.atomic():
        reset = RunBatch.objects.filter(
            pk__in=[pk for pk, _ in expired], status=BatchStatus.RUNNING, lease_expires_at__lt=now
        ).update(status=BatchStatus.PENDING, token=None, lease_expires_at=None)
        messages = [RunMessage(str(pk), priority, task=BATCH_TASK) for pk, priority in expired]
        transaction.on_commit(lambda: publish_runs(messages), robust=True)
    logger.warning("Re-queued %d batch(es) whose lease expired", reset)
    return reset


# --- closing a run -------------------------------------------------------------------------


def _finish(
    execution: ScheduleExecution,
    status: str,
    *,
    session: AgentSession | None,
    actor: str,
    error: str = "",
    retryable: bool = True,
) -> ScheduleExecution | None:
    """Close the attempt and cancel its open batches; schedule the next attempt if it
    failed with retries left, and release a run buffered behind this one."""
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
    execution.error = error[:5000]
    if execution.started_at:
        execution.duration_ms = int((now - execution.started_at).total_seconds() * 1000)
    if session is not None:
        context = session_context(session.session_id)
        execution.accounts_processed = len(context.processed_accounts)
        execution.accounts_failed = len(context.failed_accounts)
    execution.save()
    execution.batches.filter(status__in=_OPEN).update(
        status=BatchStatus.CANCELLED, token=None, lease_expires_at=None
    )
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


# --- runs whose session changed outside the workers ----------------------------------------


def execution_continue(session_id: str, *, takeover: bool, actor: str = SYSTEM_ACTOR) -> bool:
    """The session of a running run is running again: hand the run to the workers.

    On resume, in-flight batches carry on and the pending ones are published. On
    recovery (``takeover``), batches still marked running lost their worker: they go
    back to pending first (their tokens die, so a worker that was only slow records
    nothing). Call inside the transaction of the session change; messages go on commit.
    """
    execution = (
        ScheduleExecution.objects.select_for_update()
        .filter(session_id=session_id, status=ExecutionStatus.RUNNING)
        .first()
    )
    if execution is None:
        return False
    if takeover:
        execution.batches.filter(status=BatchStatus.RUNNING).update(
            status=BatchStatus.PENDING, token=None, lease_expires_at=None
        )
    record_execution_event(
        execution, "run_handed_over" if takeover else "run_continued", actor=actor
    )
    message = RunMessage(str(execution.pk), execution.priority)
    transaction.on_commit(lambda: publish_runs([message]), robust=True)
    return True


def execution_end_with_session(session_id: str, status: str, *, actor: str = SYSTEM_ACTOR) -> None:
    """A session whose run is still open ended elsewhere (staff cancelled it, an agent
    failed or completed it): close the run. Batches in flight then record nothing."""
    execution = (
        ScheduleExecution.objects.select_for_update(of=("self",))
        .select_related("review", "session")
        .filter(session_id=session_id, status=ExecutionStatus.RUNNING)
        .first()
    )
    if execution is None:
        return
    succeeded = status == SessionStatus.COMPLETED
    _finish(
        execution,
        ExecutionStatus.SUCCEEDED if succeeded else ExecutionStatus.FAILED,
        session=execution.session,
        actor=actor,
        error="" if succeeded else f"session {status} outside the run",
        retryable=status == SessionStatus.FAILED,
    )


def runs_recover_interrupted(*, actor: str = SYSTEM_ACTOR) -> list[str]:
    """Recover the interrupted sessions of running runs (their workers died); each
    recovery hands the run to the workers from the newest checkpoint."""
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
