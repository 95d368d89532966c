"""A batch's life: claimed with a fenced lease, renewed, recorded, given back, failed,
expired. The same functions serve the in-process runner (Celery tasks) and agents (the
work queue API, ``scheduling.services.work_queue``).

A lease is a fresh ``token`` on the batch and an expiry. Whatever a holder does later
(renew, record, fail, give back) names its token and is checked against the batch row
under its lock, so a holder that lost its lease (it ran out and another took the batch,
the run was cancelled, the session paused or recovered) changes nothing and learns why
(``LeaseLost.reason``).

Locks (``kernel.locking``): claiming, renewing, giving back and expiring lock the batch
alone; recording and failing may end the run, so they lock the review (shared), the
session, the run and then the batch. The session's heartbeat that accompanies a claim,
a renewal or a record is a statement of its own after the commit: liveness, not state,
and never a session lock taken while a batch is held.
"""

import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from audit.services import SYSTEM_ACTOR
from kernel.logs import context as log_context
from scheduling import conf
from scheduling.exceptions import BatchNotFound, LeaseLost
from scheduling.models import (
    OPEN_BATCH_STATUSES,
    BatchStatus,
    ExecutionStatus,
    RunBatch,
    ScheduleExecution,
)
from scheduling.results import AccountResult
from scheduling.runners import ReviewRun
from scheduling.services._hand_out import batches_hand_out
from scheduling.services._locks import batch_lock, batch_lock_with_run
from scheduling.services._moves import batch_move
from scheduling.services.results import (
    counters_check,
    results_check,
    results_summarize,
    results_write,
)
from scheduling.services.run_end import run_finish
from scheduling.transitions import BatchAction
from sessions import services as session_services
from sessions.hooks import HookEvent, hook_events_record
from sessions.models import SessionStatus

logger = logging.getLogger(__name__)

WORKER_ACTOR = "worker:run_review"


@dataclass(frozen=True)
class BatchLease:
    """A batch leased to one holder until ``expires_at``; ``token`` fences it."""

    batch_id: int
    token: uuid.UUID
    expires_at: datetime
    index: int
    attempt: int
    accounts: list[str]
    run: ReviewRun
    execution: ScheduleExecution
    batch_count: int

    @property
    def queue(self) -> str:
        return self.execution.queue


def lease_lost_reason(
    batch: RunBatch, token: uuid.UUID | None, execution: ScheduleExecution, session_status: str
) -> str | None:
    """Why ``token`` no longer holds ``batch`` (None: it holds). Read under the lock."""
    if batch.status == BatchStatus.RUNNING and batch.token == token:
        return None if execution.status == ExecutionStatus.RUNNING else "run_cancelled"
    if batch.status == BatchStatus.CANCELLED:
        return "run_cancelled"
    if batch.status == BatchStatus.FAILED:
        return "batch_failed"
    if batch.status in (BatchStatus.RUNNING, BatchStatus.DONE):
        return "taken_over"
    if session_status == SessionStatus.PAUSED:
        return "session_paused"
    if session_status != SessionStatus.RUNNING:
        return "session_stopped"
    return "lease_expired"


def lease_lost(
    batch: RunBatch, reason: str, execution: ScheduleExecution, session_status: str
) -> LeaseLost:
    return LeaseLost(batch.pk, reason, run_status=execution.status, session_status=session_status)


def _session_status(execution: ScheduleExecution) -> str:
    from sessions.models import AgentSession

    return (
        AgentSession.objects.filter(pk=execution.session_id)
        .values_list("status", flat=True)
        .first()
        or ""
    )


def new_lease_fields(holder: str, attempts: int, *, lease_seconds: int) -> dict[str, Any]:
    now = timezone.now()
    return {
        "token": uuid.uuid4(),
        "holder": holder,
        "attempts": attempts + 1,
        "started_at": now,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
    }


def lease_seconds_for(batch: RunBatch) -> int:
    """Agents heartbeat, so their leases are short; a worker's task does not."""
    return conf.work_lease_seconds() if batch.queue else conf.batch_lease_seconds()


def batch_lease_of(batch: RunBatch, execution: ScheduleExecution, *, actor: str) -> BatchLease:
    """The lease of a batch just taken; its ids join the log context of the request or
    task that took it."""
    review = execution.review
    log_context.bind(batch_id=batch.pk, execution_id=execution.pk, session_id=execution.session_id)
    return BatchLease(
        batch_id=batch.pk,
        token=batch.token,
        expires_at=batch.lease_expires_at,
        index=batch.index,
        attempt=batch.attempts,
        accounts=list(batch.account_ids),
        run=ReviewRun(
            execution_id=str(execution.pk),
            session_id=execution.session_id,
            review_id=review.pk if review else None,
            metadata=review.metadata if review else {},
            actor=actor,
        ),
        execution=execution,
        batch_count=execution.batches.count(),
    )


def heartbeat_session_quietly(session_id: str | None) -> None:
    """The session's liveness after a claim, a renewal or a record (its own statement,
    after the commit). A failure is logged: the work done is not undone for it."""
    if not session_id:
        return
    try:
        session_services.session_heartbeat(session_id)
    except DatabaseError:
        logger.warning("Heartbeat of session %s not recorded", session_id, exc_info=True)


# --- the in-process runner's claim (Celery task run_review_batch) ---------------------------


def batch_claim(
    batch_id: int,
    *,
    redelivered: bool = False,
    own_token: uuid.UUID | None = None,
    actor: str = WORKER_ACTOR,
) -> BatchLease | None:
    """Take a pending batch of a worker-executed run for this worker, or None. A leased
    batch is taken over only when its message was redelivered (Celery does that when
    the worker died) or when ``own_token`` still holds it (a retry of a claim whose
    result could not be recorded: nobody else has taken the batch meanwhile)."""
    with transaction.atomic():
        batch = batch_lock(batch_id)
        if batch is None or batch.queue:
            return None  # agents take a queue's batches through the API
        execution = (
            ScheduleExecution.objects.select_related("review").filter(pk=batch.execution_id).get()
        )
        session_status = _session_status(execution)
        takeover = batch.status == BatchStatus.RUNNING and (
            redelivered or (own_token is not None and batch.token == own_token)
        )
        if batch.status != BatchStatus.PENDING and not takeover:
            return None
        if execution.status != ExecutionStatus.RUNNING:
            batch_move(
                batch,
                BatchAction.CANCEL,
                execution=execution,
                actor=actor,
                fields={"lease_expires_at": None},
            )
            return None
        if session_status != SessionStatus.RUNNING:
            if takeover:  # its holder died while paused: it waits, pending, for the resume
                _give_back(batch, execution, BatchAction.RELEASE, actor=actor, hand_out=False)
            return None  # paused or interrupted: it stays pending until the run continues
        batch_move(
            batch,
            BatchAction.TAKE_OVER if takeover else BatchAction.CLAIM,
            execution=execution,
            actor=actor,
            fields=new_lease_fields(actor, batch.attempts, lease_seconds=lease_seconds_for(batch)),
            metadata={"holder": actor, "redelivered": redelivered} if takeover else None,
        )
        lease = batch_lease_of(batch, execution, actor=actor)
    heartbeat_session_quietly(execution.session_id)
    return lease


# --- renewing, giving back, expiring --------------------------------------------------------


def batch_lease_renew(batch_id: int, token: uuid.UUID, *, actor: str) -> RunBatch:
    """Extend the lease ``token`` holds. ``LeaseLost`` says why it no longer holds; a
    holder of a paused session loses its lease here (the batch waits, pending, for the
    resume), which is how a pause reaches an agent."""
    lost = None
    with transaction.atomic():
        batch, execution, session_status = _locked_alone(batch_id)
        reason = lease_lost_reason(batch, token, execution, session_status)
        if reason is None and session_status != SessionStatus.RUNNING:
            paused = session_status == SessionStatus.PAUSED
            reason = "session_paused" if paused else "session_stopped"
            _give_back(batch, execution, BatchAction.RELEASE, actor=actor, reason=reason)
        if reason is not None:
            lost = lease_lost(batch, reason, execution, session_status)
        else:
            batch_move(
                batch,
                BatchAction.RENEW,
                execution=execution,
                actor=actor,
                fields={
                    "lease_expires_at": timezone.now() + timedelta(seconds=lease_seconds_for(batch))
                },
            )
    if lost is not None:
        raise lost  # after the commit: the batch given back stays given back
    heartbeat_session_quietly(execution.session_id)
    return batch


def batch_release(batch_id: int, token: uuid.UUID, *, actor: str) -> RunBatch:
    """The holder gives the batch back unfinished (it is stopping): claimable again at
    once, with no attempt counted against it."""
    with transaction.atomic():
        batch, execution, session_status = _locked_alone(batch_id)
        reason = lease_lost_reason(batch, token, execution, session_status)
        if reason is not None:
            raise lease_lost(batch, reason, execution, session_status)
        _give_back(
            batch, execution, BatchAction.RELEASE, actor=actor, reason="released", refund=True
        )
    return batch


def _locked_with_run(batch_id: int) -> tuple[ScheduleExecution, RunBatch, str]:
    """The batch locked with its review, session and run (``BatchNotFound`` if none)."""
    execution, batch = batch_lock_with_run(batch_id)
    if execution is None or batch is None:
        raise BatchNotFound(batch_id)
    return execution, batch, execution.session.status if execution.session else ""


def _locked_alone(batch_id: int) -> tuple[RunBatch, ScheduleExecution, str]:
    batch = batch_lock(batch_id)
    if batch is None:
        raise BatchNotFound(batch_id)
    execution = (
        ScheduleExecution.objects.select_related("review").filter(pk=batch.execution_id).get()
    )
    return batch, execution, _session_status(execution)


def _give_back(
    batch: RunBatch,
    execution: ScheduleExecution,
    action: BatchAction,
    *,
    actor: str,
    reason: str = "",
    error: str = "",
    hand_out: bool = True,
    refund: bool = False,
) -> None:
    """A leased batch becomes claimable again (release, expiry, retry); its token dies.
    ``refund``: the attempt does not count (its holder gave it back untried)."""
    fields: dict[str, Any] = {
        "token": None,
        "holder": "",
        "lease_expires_at": None,
        "available_at": timezone.now(),
    }
    if refund:
        fields["attempts"] = max(0, batch.attempts - 1)
    if error:
        fields["error"] = error[:5000]
    batch_move(
        batch,
        action,
        execution=execution,
        actor=actor,
        fields=fields,
        metadata={k: v for k, v in {"reason": reason, "error": error[:1000]}.items() if v},
    )
    if hand_out:
        batches_hand_out(execution, [batch.pk])


def batches_expire(*, queue: str | None = None, actor: str = SYSTEM_ACTOR) -> int:
    """Leased batches whose lease ran out (their holder died, or a network cut it off)
    become claimable again; only ``queue``'s when given. Batches another transaction
    holds are skipped (``SKIP LOCKED``): it is deciding about them. Returns how many."""
    now = timezone.now()
    expired = RunBatch.objects.filter(status=BatchStatus.RUNNING, lease_expires_at__lt=now)
    if queue is not None:
        expired = expired.filter(queue=queue)
    count = 0
    with transaction.atomic():
        for batch in expired.select_for_update(skip_locked=True).order_by("pk")[:1000]:
            execution = ScheduleExecution.objects.select_related("review").get(
                pk=batch.execution_id
            )
            _give_back(
                batch,
                execution,
                BatchAction.EXPIRE,
                actor=actor,
                reason=f"lease of {batch.holder or 'its holder'} ran out",
                hand_out=execution.status == ExecutionStatus.RUNNING,
            )
            count += 1
    if count:
        logger.warning("%d batch lease(s) ran out; the batches are claimable again", count)
    return count


# --- recording and failing -----------------------------------------------------------------


def batch_record(
    batch_id: int,
    token: uuid.UUID,
    *,
    results: Sequence[AccountResult],
    events: Sequence[HookEvent] = (),
    counters: dict[str, int] | None = None,
    agent: str,
    actor: str,
) -> tuple[dict[str, Any], bool]:
    """Record a batch's results if ``token`` still holds it, in one transaction: the
    ``AccountReview`` rows, the session's metrics, checkpoint and heartbeat, the tool and task
    events, the batch's status and, for the last batch, the run's end. Returns (the
    answer, whether it is a replay): a retry with the same token gets the first answer
    again. ``LeaseLost`` if the token no longer holds the batch (nothing is recorded)."""
    counters = dict(counters or {})
    counters_check(counters)
    with transaction.atomic():
        execution, batch, session_status = _locked_with_run(batch_id)
        if batch.status == BatchStatus.DONE and batch.token == token and batch.outcome:
            return batch.outcome, True
        reason = lease_lost_reason(batch, token, execution, session_status)
        if reason is None and session_status not in (SessionStatus.RUNNING, SessionStatus.PAUSED):
            reason = "session_stopped"
        if reason is not None:
            raise lease_lost(batch, reason, execution, session_status)
        results_check(batch, results)
        summary = results_summarize(results)
        results_write(execution, batch, results, agent=agent)
        session_id = execution.session_id
        session_services.session_update_metrics(
            session_id,
            counters={**counters, **summary.counters},
            processing_times_ms=summary.processing_times_ms,
            actor=actor,
        )
        session_services.session_checkpoint(
            session_id,
            context_changes={
                "processed_accounts": summary.processed,
                "failed_accounts": summary.failed,
            },
            context_increments={
                "current_batch": 1,
                "recommendations_count": summary.recommendations,
            },
            heartbeat=True,
            actor=actor,
        )
        recorded = hook_events_record(list(events), agent_name=agent, actor=actor)
        answer = {
            "batch_id": batch.pk,
            "status": BatchStatus.DONE.value,
            "results": len(results),
            "outcomes": summary.outcomes,
            "recommendations": summary.recommendations,
            "events_recorded": len(recorded.recorded),
            "events_duplicates": len(recorded.duplicates),
        }
        batch_move(
            batch,
            BatchAction.RECORD,
            execution=execution,
            actor=actor,
            fields={"finished_at": timezone.now(), "lease_expires_at": None, "outcome": answer},
            metadata={
                "agent": agent,
                "results": len(results),
                "outcomes": summary.outcomes,
                "recommendations": summary.recommendations,
            },
        )
        _finish_if_last(execution, session_status, actor=actor)
    return answer, False


def _finish_if_last(execution: ScheduleExecution, session_status: str, *, actor: str) -> None:
    # The run's row lock serialises the batches' last look: one of them finishes it.
    if execution.batches.filter(status__in=OPEN_BATCH_STATUSES).exists():
        return
    if session_status == SessionStatus.RUNNING:
        run_finish(execution, succeeded=True, actor=actor)
    # Paused with every batch done: resuming the session finishes the run.


def batch_fail(
    batch_id: int,
    token: uuid.UUID,
    *,
    error: str,
    retryable: bool,
    actor: str,
) -> RunBatch:
    """The holder could not do the batch. Retryable, with attempts left
    (``SCHEDULING_BATCH_MAX_ATTEMPTS``): the batch is claimable again. Otherwise the
    batch fails and so does its run, which is retried as a whole if its review allows
    (like a runner that raises); its other batches are cancelled."""
    error = (error or "unspecified error").strip()
    with transaction.atomic():
        execution, batch, session_status = _locked_with_run(batch_id)
        reason = lease_lost_reason(batch, token, execution, session_status)
        if reason is not None:
            raise lease_lost(batch, reason, execution, session_status)
        if retryable and batch.attempts < conf.batch_max_attempts():
            _give_back(batch, execution, BatchAction.RETRY, actor=actor, error=error)
            return batch
        batch_move(
            batch,
            BatchAction.FAIL,
            execution=execution,
            actor=actor,
            fields={"finished_at": timezone.now(), "lease_expires_at": None, "error": error},
            metadata={"error": error[:1000], "retryable": retryable},
        )
        run_finish(
            execution,
            succeeded=False,
            actor=actor,
            error=f"batch {batch.index} failed: {error}",
        )
    return batch


def batch_fail_quietly(lease: BatchLease, error: str, *, actor: str) -> None:
    """The in-process runner raised: fail the batch and its run, unless the lease was
    lost meanwhile (then whoever holds the batch now decides)."""
    with contextlib.suppress(LeaseLost):
        batch_fail(lease.batch_id, lease.token, error=error, retryable=False, actor=actor)
