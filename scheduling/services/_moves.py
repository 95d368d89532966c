"""Applying one move of the run and batch tables (``scheduling.transitions``) to a locked
row, with its audit event, in the caller's transaction. Every status change of a run or
a batch goes through ``run_move`` or ``batch_move``."""

from typing import Any

from scheduling.models import RunBatch, ScheduleExecution
from scheduling.services._audit import record_batch_event, record_execution_event
from scheduling.services._locks import run_batches_locked
from scheduling.transitions import (
    BATCH_TRANSITIONS,
    BatchAction,
    RunAction,
    batch_transition_target,
    run_transition_target,
)

RUN_EVENTS: dict[RunAction, str] = {
    RunAction.START: "run_started",
    RunAction.HOLD: "run_held",
    RunAction.RELEASE: "run_released",
    RunAction.SKIP: "run_skipped_overlap",
    RunAction.CONTINUE: "run_continued",
    RunAction.HAND_OVER: "run_handed_over",
    RunAction.SUCCEED: "run_succeeded",
    RunAction.FAIL: "run_failed",
    RunAction.RETRY: "run_retrying",
}

BATCH_EVENTS: dict[BatchAction, str] = {
    BatchAction.CLAIM: "batch_claimed",
    BatchAction.TAKE_OVER: "batch_taken_over",
    BatchAction.RENEW: "batch_lease_renewed",
    BatchAction.RECORD: "batch_recorded",
    BatchAction.RELEASE: "batch_released",
    BatchAction.EXPIRE: "batch_lease_expired",
    BatchAction.RETRY: "batch_retried",
    BatchAction.FAIL: "batch_failed",
    BatchAction.CANCEL: "batch_cancelled",
}


def _save_move(row: Any, target: str, fields: dict[str, Any] | None) -> str:
    """Set the new status and ``fields`` on a locked row and save them; returns the
    status it had."""
    previous = row.status
    changes = {"status": target, **(fields or {})}
    for name, value in changes.items():
        setattr(row, name, value)
    row.save(update_fields=list(changes))
    return previous


def run_move(
    execution: ScheduleExecution,
    action: RunAction,
    *,
    actor: str,
    fields: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> ScheduleExecution:
    """Move a locked run by ``action`` (``InvalidRunTransition`` if the table forbids
    it), save ``fields`` with it and record its audit event."""
    target = run_transition_target(execution.pk, execution.status, action)
    previous = _save_move(execution, target, fields)
    record_execution_event(
        execution, RUN_EVENTS[action], actor=actor, metadata={"from": previous, **(metadata or {})}
    )
    return execution


def batch_move(
    batch: RunBatch,
    action: BatchAction,
    *,
    execution: ScheduleExecution,
    actor: str,
    fields: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> RunBatch:
    """Move a locked batch by ``action`` (``InvalidBatchTransition`` if the table forbids
    it), save ``fields`` with it and record its audit event."""
    target = batch_transition_target(batch.pk, batch.status, action)
    previous = _save_move(batch, target, fields)
    record_batch_event(
        batch,
        BATCH_EVENTS[action],
        execution=execution,
        actor=actor,
        metadata={"from": previous, **(metadata or {})},
    )
    return batch


def run_batches_move(
    execution: ScheduleExecution,
    action: BatchAction,
    *,
    actor: str,
    fields: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[int]:
    """Move every batch of a locked run that ``action`` may move (one statement, by the
    holder of the run's lock), with one audit event naming them; returns their ids."""
    transition = BATCH_TRANSITIONS[action]
    run_batches_locked(execution)
    movable = execution.batches.filter(status__in=transition.sources)
    moved = list(movable.values_list("pk", flat=True))
    if moved:
        movable.update(status=transition.target, **(fields or {}))
        record_execution_event(
            execution,
            f"batches_{BATCH_EVENTS[action].removeprefix('batch_')}",
            actor=actor,
            metadata={"batch_ids": moved, **(metadata or {})},
        )
    return moved
