"""Runs whose session moves outside the run: staff pause, resume, recover or cancel it,
an agent ends it, the stale detector interrupts it.

``ScheduledRunOwner`` (``scheduling.session_owner``) calls ``run_follow_session`` from
inside every transition of a run's session, after the session row was saved, with the
run's review already shared-locked: so the run and its batches are locked after the
session, in the lock order, and change in the session's transaction.
"""

import logging

from django.db import connection, transaction
from django.utils import timezone

from audit.services import SYSTEM_ACTOR
from kernel.errors import DomainError
from kernel.locking import LockRank, rows_locked
from scheduling.models import (
    ACTIVE_EXECUTION_STATUSES,
    BatchStatus,
    ExecutionStatus,
    ScheduleExecution,
)
from scheduling.publishing import RunMessage, publish_runs
from scheduling.services._hand_out import batches_hand_out
from scheduling.services._locks import review_lock_shared, run_lock
from scheduling.services._moves import run_batches_move, run_move
from scheduling.services.run_end import run_finish
from scheduling.transitions import BatchAction, RunAction
from sessions import services as session_services
from sessions.models import AgentSession, SessionStatus
from sessions.transitions import SessionAction

logger = logging.getLogger(__name__)

_ENDS = frozenset({SessionAction.COMPLETE, SessionAction.FAIL, SessionAction.CANCEL})


def run_of_session_lock_ahead(session_id: str) -> None:
    """Before a run's session is locked: share-lock the run's review (a session's end may
    end its run, which stamps the review and may queue the next attempt)."""
    review_id = (
        ScheduleExecution.objects.filter(session_id=session_id, status=ExecutionStatus.RUNNING)
        .values_list("review_id", flat=True)
        .first()
    )
    review_lock_shared(review_id)


def runs_of_sessions_lock_ahead(session_ids: list[str]) -> None:
    """``run_of_session_lock_ahead`` for a bulk transition of many sessions: the reviews
    of their runs (running, or queued with a session prepared for them), shared, in id
    order, in one statement."""
    review_ids = sorted(
        set(
            ScheduleExecution.objects.filter(
                session_id__in=session_ids,
                status__in=ACTIVE_EXECUTION_STATUSES,
                review_id__isnull=False,
            ).values_list("review_id", flat=True)
        )
    )
    if not review_ids:
        return
    rows_locked(LockRank.REVIEW, review_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM scheduled_review WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE",
            [review_ids],
        )


def run_follow_session(session: AgentSession, action: SessionAction, *, actor: str) -> None:
    """The session of a running run moved by ``action`` (inside its transaction)."""
    if action not in (SessionAction.RESUME, SessionAction.RECOVER) and action not in _ENDS:
        return  # pause and interrupt: holders learn it from their next heartbeat
    execution_id = (
        ScheduleExecution.objects.filter(
            session_id=session.session_id, status=ExecutionStatus.RUNNING
        )
        .values_list("pk", flat=True)
        .first()
    )
    if execution_id is None:
        return
    execution = run_lock(execution_id)  # review and session: already held
    if execution is None or execution.status != ExecutionStatus.RUNNING:
        return
    if action in _ENDS:
        _end_with_session(execution, session.status, actor=actor)
    else:
        _continue(execution, takeover=action is SessionAction.RECOVER, actor=actor)


def _continue(execution: ScheduleExecution, *, takeover: bool, actor: str) -> None:
    """Resumed: batches in flight carry on and the pending ones go out again. Recovered
    (``takeover``): batches still leased lost their holder, so they become claimable
    again first (their tokens die: a holder that was only slow records nothing)."""
    taken_back: list[int] = []
    if takeover:
        taken_back = run_batches_move(
            execution,
            BatchAction.RELEASE,
            actor=actor,
            fields={
                "token": None,
                "holder": "",
                "lease_expires_at": None,
                "available_at": timezone.now(),
            },
            metadata={"reason": "session recovered"},
        )
    run_move(
        execution,
        RunAction.HAND_OVER if takeover else RunAction.CONTINUE,
        actor=actor,
        metadata={"batches_taken_back": taken_back} if takeover else None,
    )
    if execution.queue:
        pending = list(
            execution.batches.filter(status=BatchStatus.PENDING).values_list("pk", flat=True)
        )
        batches_hand_out(execution, pending)
    # A run_review message hands out the worker's pending batches (or finishes a run whose
    # batches were all done while paused), after this transaction commits.
    message = RunMessage(str(execution.pk), execution.priority)
    transaction.on_commit(lambda: publish_runs([message]), robust=True)


def _end_with_session(execution: ScheduleExecution, status: str, *, actor: str) -> None:
    """The session ended outside the run (staff cancelled it, an agent failed or
    completed it): close the run. Its batches in flight then record nothing."""
    succeeded = status == SessionStatus.COMPLETED
    run_finish(
        execution,
        succeeded=succeeded,
        actor=actor,
        error="" if succeeded else f"session {status} outside the run",
        retryable=status == SessionStatus.FAILED,
    )


def runs_recover_interrupted(*, actor: str = SYSTEM_ACTOR) -> list[str]:
    """Recover the interrupted sessions of running runs (their workers died); each
    recovery hands the run back from the newest checkpoint."""
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


def queue_runs_keep_alive() -> int:
    """Sessions of queue-executed runs whose batches wait in the queue for an agent are
    alive, not stale: the heartbeat says so (liveness only; a dead holder is found by its
    lease). Returns how many sessions were vouched for."""
    session_ids = list(
        ScheduleExecution.objects.filter(
            status=ExecutionStatus.RUNNING,
            session__status=SessionStatus.RUNNING,
            batches__status=BatchStatus.PENDING,
        )
        .exclude(executor="worker")
        .values_list("session_id", flat=True)
        .distinct()
    )
    for session_id in session_ids:
        session_services.session_heartbeat(session_id)
    return len(session_ids)
