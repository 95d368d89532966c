"""Starting a run on a worker (task ``run_review``): its accounts, its session, its
batches, handed to the in-process runner or to a work queue's agents.

``execution_claim`` is idempotent: a duplicated or redelivered message finds the run
started and only hands out its pending batches again (the broker may have lost them).
"""

import logging

from django.db import transaction
from django.utils import timezone

from scheduling import conf
from scheduling.accounts import account_source
from scheduling.models import (
    BatchStatus,
    ExecutionStatus,
    ExecutionTrigger,
    OverlapPolicy,
    RunBatch,
    ScheduleExecution,
    priority_rank,
)
from scheduling.services._hand_out import batches_hand_out
from scheduling.services._locks import run_lock
from scheduling.services._moves import run_move
from scheduling.services.batches import WORKER_ACTOR
from scheduling.services.run_end import run_finish
from scheduling.transitions import RunAction
from sergas.locking import LockRank, rows_locked
from sessions import services as session_services
from sessions.models import AgentSession, SessionStatus, SessionType

logger = logging.getLogger(__name__)


def execution_claim(execution_id: str, *, actor: str = WORKER_ACTOR) -> int:
    """Start a queued run (session, batches) or hand out the pending batches of a running
    one; returns how many batches were handed out. Anything else (finished, skipped by
    the overlap policy, unknown, a duplicate message) returns 0."""
    try:
        status = (
            ScheduleExecution.objects.filter(pk=execution_id)
            .values_list("status", flat=True)
            .first()
        )
    except (ValueError, TypeError):
        status = None
    if status is None:
        logger.warning("Run %s does not exist; message dropped", execution_id)
        return 0
    if status == ExecutionStatus.QUEUED:
        return _start(execution_id, actor=actor)
    if status == ExecutionStatus.RUNNING:
        return run_hand_out_pending(execution_id, actor=actor)
    return 0


def _start(execution_id: str, *, actor: str) -> int:
    execution = ScheduleExecution.objects.select_related("review").get(pk=execution_id)
    review = execution.review
    try:
        # Before any lock: it may call the CRM and take long.
        accounts = account_source().resolve(
            review.owner_id if review else "", review.account_filter if review else {}
        )
    except Exception as exc:
        logger.exception("Accounts of run %s could not be resolved", execution_id)
        return _fail_unstarted(execution_id, f"accounts not resolved: {exc}", actor=actor)
    with transaction.atomic():
        execution = run_lock(execution_id)
        if execution is None or execution.status != ExecutionStatus.QUEUED:
            return 0  # another message started it meanwhile
        if _overlaps(execution):
            _defer_for_overlap(execution, actor=actor)
            return 0
        now = timezone.now()  # after the lock: the publisher's commit happened before
        session = _session_for(execution, accounts, actor=actor)
        size = conf.runner_batch_size()
        batches = RunBatch.objects.bulk_create(
            RunBatch(
                execution=execution,
                index=index,
                account_ids=accounts[start : start + size],
                queue=execution.queue,
                rank=priority_rank(execution.priority),
                nominal_time=execution.nominal_time,
                available_at=now,
            )
            for index, start in enumerate(range(0, len(accounts), size))
        )
        rows_locked(LockRank.BATCH, [batch.pk for batch in batches], created=True)
        session_services.session_update_context(
            session.session_id, changes={"total_batches": len(batches)}, actor=actor
        )
        run_move(
            execution,
            RunAction.START,
            actor=actor,
            fields={
                "started_at": now,
                "start_lag_ms": int((now - execution.nominal_time).total_seconds() * 1000),
                "session": session,
            },
            metadata={
                "batches": len(batches),
                "accounts": len(accounts),
                "executor": execution.executor,
            },
        )
        if not batches:
            run_finish(execution, succeeded=True, actor=actor)
            return 0
        batches_hand_out(execution, [batch.pk for batch in batches])
    return len(batches)


def _fail_unstarted(execution_id: str, error: str, *, actor: str) -> int:
    with transaction.atomic():
        execution = run_lock(execution_id)
        if execution is not None and execution.status == ExecutionStatus.QUEUED:
            run_finish(execution, succeeded=False, actor=actor, error=error)
    return 0


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
        run_move(
            execution, RunAction.HOLD, actor=actor, fields={"due_at": None, "enqueued_at": None}
        )
        return
    run_move(
        execution,
        RunAction.SKIP,
        actor=actor,
        fields={"finished_at": timezone.now(), "error": "a previous run was still active"},
    )


def _session_for(execution: ScheduleExecution, accounts: list[str], *, actor: str) -> AgentSession:
    review = execution.review
    session_type = (
        SessionType.ON_DEMAND
        if execution.trigger == ExecutionTrigger.ON_DEMAND
        else SessionType.SCHEDULED
    )
    session = session_services.session_create(
        orchestrator_id=f"review-{review.pk if review else 'deleted'}",
        session_type=session_type,
        account_ids=accounts,
        owner_id=review.owner_id if review else "",
        context={
            "metadata": {
                "review_id": review.pk if review else None,
                "execution_id": str(execution.pk),
                "nominal_time": execution.nominal_time.isoformat(),
                "attempt": execution.attempt,
                "executor": execution.executor,
            }
        },
        actor=actor,
    )
    return session_services.session_start(session.session_id, actor=actor)


def run_hand_out_pending(execution_id: str, *, actor: str = WORKER_ACTOR) -> int:
    """A running run whose session runs: hand out its pending batches (again), or finish
    it if none is open (resumed with every batch done). Returns how many were handed."""
    with transaction.atomic():
        execution = run_lock(execution_id)
        if execution is None or execution.status != ExecutionStatus.RUNNING:
            return 0
        if execution.session is None or execution.session.status != SessionStatus.RUNNING:
            return 0
        open_batches = list(
            execution.batches.filter(
                status__in=(BatchStatus.PENDING, BatchStatus.RUNNING)
            ).values_list("pk", "status")
        )
        if not open_batches:
            run_finish(execution, succeeded=True, actor=actor)
            return 0
        pending = [pk for pk, status in open_batches if status == BatchStatus.PENDING]
        batches_hand_out(execution, pending)
    return len(pending)
