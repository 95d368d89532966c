"""Starting a run on a worker (task ``run_review``): its accounts, its session, its
batches, handed to the in-process runner or to a work queue's agents. A run prepared
ahead of its time (``scheduling.services.prepared``) that the bulk start left to a worker
starts here too, with the session and batches made for it.

``execution_claim`` is idempotent: a duplicated or redelivered message finds the run
started and only hands out its pending batches again (the broker may have lost them).
"""

import logging
import math

from django.db import transaction
from django.utils import timezone

from kernel.locking import LockRank, rows_locked
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
from scheduling.services._locks import run_batches_locked, run_lock
from scheduling.services._moves import run_move
from scheduling.services.batches import WORKER_ACTOR
from scheduling.services.run_end import run_finish
from scheduling.transitions import RunAction
from sessions import services as session_services
from sessions.models import TERMINAL_STATUSES, AgentSession, SessionStatus, SessionType

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


class _PreparationChanged(Exception):
    """The run was prepared (given a session), or its preparation discarded, between our
    look and our lock: its session must be locked before the run, so start again."""


def _start(execution_id: str, *, actor: str) -> int:
    while True:  # a run is prepared once and discarded at most once: this ends
        execution = ScheduleExecution.objects.select_related("review").get(pk=execution_id)
        try:
            if execution.session_id is not None:
                return _start_prepared(execution_id, actor=actor)
            review = execution.review
            try:
                # Before any lock: it may call the CRM and take long.
                accounts = account_source().resolve(
                    review.owner_id if review else "", review.account_filter if review else {}
                )
            except Exception as exc:
                logger.exception("Accounts of run %s could not be resolved", execution_id)
                return _fail_unstarted(execution_id, f"accounts not resolved: {exc}", actor=actor)
            return _start_fresh(execution_id, accounts, actor=actor)
        except _PreparationChanged:
            continue


def _start_fresh(execution_id: str, accounts: list[str], *, actor: str) -> int:
    with transaction.atomic():
        execution = run_lock(execution_id)
        if execution is None or execution.status != ExecutionStatus.QUEUED:
            return 0  # another message started it meanwhile
        if execution.session_id is not None:
            raise _PreparationChanged
        if _overlaps(execution):
            _defer_for_overlap(execution, actor=actor)
            return 0
        now = timezone.now()  # after the lock: the publisher's commit happened before
        size = conf.runner_batch_size()
        session = _session_for(
            execution, accounts, total_batches=math.ceil(len(accounts) / size), actor=actor
        )
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
        return _started(execution, session, [b.pk for b in batches], len(accounts), actor=actor)


def _start_prepared(execution_id: str, *, actor: str) -> int:
    """A run prepared ahead (``scheduling.services.prepared``) that the bulk start left
    to a worker: start its session unless it ended meanwhile (then the run ends too)."""
    with transaction.atomic():
        execution = run_lock(execution_id)  # review, session, run
        if execution is None or execution.status != ExecutionStatus.QUEUED:
            return 0
        if execution.session is None:
            raise _PreparationChanged
        if _overlaps(execution):
            _defer_for_overlap(execution, actor=actor)
            return 0
        session = execution.session
        if session.status in TERMINAL_STATUSES:
            # Staff cancelled the prepared session before its time: the run ends with it.
            run_finish(
                execution,
                succeeded=False,
                actor=actor,
                error=f"session {session.status} before the run started",
                retryable=session.status == SessionStatus.FAILED,
            )
            return 0
        if session.status == SessionStatus.PENDING:
            session = session_services.session_start(session.session_id, actor=actor)
        now = timezone.now()
        run_batches_locked(execution)
        pending = list(
            execution.batches.filter(status=BatchStatus.PENDING).values_list("pk", "account_ids")
        )
        RunBatch.objects.filter(pk__in=[pk for pk, _ in pending]).update(available_at=now)
        accounts = sum(len(ids) for _, ids in pending)
        return _started(execution, session, [pk for pk, _ in pending], accounts, actor=actor)


def _started(
    execution: ScheduleExecution,
    session: AgentSession,
    batch_ids: list[int],
    accounts: int,
    *,
    actor: str,
) -> int:
    """The run's move to running, then its batches handed out (or its end, if none)."""
    now = timezone.now()
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
            "batches": len(batch_ids),
            "accounts": accounts,
            "executor": execution.executor,
        },
    )
    if not batch_ids:
        run_finish(execution, succeeded=True, actor=actor)
        return 0
    batches_hand_out(execution, batch_ids)
    return len(batch_ids)


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
    """Hold or skip the run (overlap policy). A session prepared for it is cancelled and
    its batches dropped: a held run starts afresh when released."""
    prepared = execution.session_id
    held_already = ScheduleExecution.objects.filter(
        review_id=execution.review_id, status=ExecutionStatus.QUEUED, due_at__isnull=True
    ).exists()
    detach = {"session": None} if prepared else {}
    if execution.review.overlap_policy == OverlapPolicy.BUFFER_ONE and not held_already:
        run_move(
            execution,
            RunAction.HOLD,
            actor=actor,
            fields={"due_at": None, "enqueued_at": None, **detach},
            metadata={"session_discarded": prepared} if prepared else None,
        )
    else:
        run_move(
            execution,
            RunAction.SKIP,
            actor=actor,
            fields={
                "finished_at": timezone.now(),
                "error": "a previous run was still active",
                **detach,
            },
            metadata={"session_discarded": prepared} if prepared else None,
        )
    if prepared:
        session_services.sessions_cancel_unstarted(
            [prepared], reason="its run was deferred by the overlap policy", actor=actor
        )
        run_batches_locked(execution)
        execution.batches.all().delete()


def _session_for(
    execution: ScheduleExecution, accounts: list[str], *, total_batches: int, actor: str
) -> AgentSession:
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
            },
            "total_batches": total_batches,
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
