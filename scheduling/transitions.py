"""The lifecycles of runs and batches as explicit tables: action -> (sources, target).

Nothing else decides whether a run (``ScheduleExecution``) or a batch (``RunBatch``)
may change status. The services apply a move with ``run_transition_target`` /
``batch_transition_target`` and record its audit event in the same transaction.
"""

from django.db import models

from kernel.transitions import Transition
from scheduling.exceptions import InvalidBatchTransition, InvalidRunTransition
from scheduling.models import BatchStatus, ExecutionStatus

E = ExecutionStatus
B = BatchStatus


class RunAction(models.TextChoices):
    PREPARE = "prepare"  # ahead of its time: accounts resolved, session and batches made
    START = "start"  # a worker claims a queued run: session and batches
    HOLD = "hold"  # overlap policy buffer_one: waits for the active run
    RELEASE = "release"  # the run it waited for ended: it may go
    SKIP = "skip"  # overlap policy skip
    CONTINUE = "continue"  # its session runs again (resumed): pending batches go out
    HAND_OVER = "hand_over"  # its session was recovered: batches in flight run again
    SUCCEED = "succeed"
    FAIL = "fail"  # failed, with no attempt left or not worth retrying
    RETRY = "retry"  # failed; the next attempt is queued


RUN_TRANSITIONS: dict[RunAction, Transition[str]] = {
    RunAction.PREPARE: Transition(frozenset({E.QUEUED}), E.QUEUED),
    RunAction.START: Transition(frozenset({E.QUEUED}), E.RUNNING),
    RunAction.HOLD: Transition(frozenset({E.QUEUED}), E.QUEUED),
    RunAction.RELEASE: Transition(frozenset({E.QUEUED}), E.QUEUED),
    RunAction.SKIP: Transition(frozenset({E.QUEUED}), E.SKIPPED_OVERLAP),
    RunAction.CONTINUE: Transition(frozenset({E.RUNNING}), E.RUNNING),
    RunAction.HAND_OVER: Transition(frozenset({E.RUNNING}), E.RUNNING),
    RunAction.SUCCEED: Transition(frozenset({E.RUNNING}), E.SUCCEEDED),
    # A queued run fails when its accounts cannot be resolved (the CRM is down).
    RunAction.FAIL: Transition(frozenset({E.QUEUED, E.RUNNING}), E.FAILED),
    RunAction.RETRY: Transition(frozenset({E.QUEUED, E.RUNNING}), E.RETRYING),
}


class BatchAction(models.TextChoices):
    CLAIM = "claim"  # leased to a worker or an agent, with a fresh token
    TAKE_OVER = "take_over"  # its holder died (message redelivered): a new lease
    RENEW = "renew"  # the holder's heartbeat extends the lease
    RECORD = "record"  # its results are recorded
    RELEASE = "release"  # given back: the holder stops, or lost its lease to a pause
    EXPIRE = "expire"  # the lease ran out: claimable again
    RETRY = "retry"  # the holder failed it and it may pass: claimable again
    FAIL = "fail"  # the holder failed it for good (or it ran out of attempts)
    CANCEL = "cancel"  # its run ended first


_OPEN = frozenset({B.PENDING, B.RUNNING})

BATCH_TRANSITIONS: dict[BatchAction, Transition[str]] = {
    BatchAction.CLAIM: Transition(frozenset({B.PENDING}), B.RUNNING),
    BatchAction.TAKE_OVER: Transition(frozenset({B.RUNNING}), B.RUNNING),
    BatchAction.RENEW: Transition(frozenset({B.RUNNING}), B.RUNNING),
    BatchAction.RECORD: Transition(frozenset({B.RUNNING}), B.DONE),
    BatchAction.RELEASE: Transition(frozenset({B.RUNNING}), B.PENDING),
    BatchAction.EXPIRE: Transition(frozenset({B.RUNNING}), B.PENDING),
    BatchAction.RETRY: Transition(frozenset({B.RUNNING}), B.PENDING),
    BatchAction.FAIL: Transition(frozenset({B.RUNNING}), B.FAILED),
    BatchAction.CANCEL: Transition(_OPEN, B.CANCELLED),
}


def run_transition_target(execution_id: object, status: str, action: RunAction) -> str:
    """The status ``action`` leads a run to from ``status``, or ``InvalidRunTransition``."""
    transition = RUN_TRANSITIONS[action]
    if status not in transition.sources:
        raise InvalidRunTransition(
            execution_id, status=status, action=action.value, allowed=transition.sources
        )
    return transition.target


def batch_transition_target(batch_id: int, status: str, action: BatchAction) -> str:
    """The status ``action`` leads a batch to from ``status``, or
    ``InvalidBatchTransition``."""
    transition = BATCH_TRANSITIONS[action]
    if status not in transition.sources:
        raise InvalidBatchTransition(
            batch_id, status=status, action=action.value, allowed=transition.sources
        )
    return transition.target
