"""Applying one move of the run and batch tables (``scheduling.transitions``) to a locked
row, with its audit event, in the caller's transaction. Every status change of a run or
a batch goes through ``run_move``, ``runs_move_many`` or ``batch_move``."""

from collections.abc import Sequence
from typing import Any

from django.db import connection

from audit.models import AuditEventType
from audit.services import audit_events_record_generated
from scheduling.metrics import observe_batch_move, observe_runs_finished
from scheduling.models import RunBatch, ScheduleExecution
from scheduling.services._audit import (
    execution_event_metadata,
    record_batch_event,
    record_execution_event,
    review_resource,
)
from scheduling.services._locks import run_batches_locked
from scheduling.transitions import (
    BATCH_TRANSITIONS,
    BatchAction,
    RunAction,
    batch_transition_target,
    run_transition_target,
)

RUN_EVENTS: dict[RunAction, str] = {
    RunAction.PREPARE: "run_prepared",
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
    observe_runs_finished(target, [execution.executor])
    return execution


def runs_move_many(
    executions: Sequence[ScheduleExecution],
    action: RunAction,
    *,
    actor: str,
    fields: dict[str, Any] | None = None,
    row_fields: dict[str, dict[Any, Any]] | None = None,
    metadata: dict[Any, dict[str, Any]] | None = None,
) -> None:
    """``run_move`` for many locked runs in one UPDATE: each is checked against the table
    (``InvalidRunTransition`` aborts them all), set to the target with ``fields`` (the
    same for all) and ``row_fields`` (field -> {run id: value}), and gets the audit
    event ``run_move`` records, with its ``metadata`` (run id -> dict); all by COPY."""
    if not executions:
        return
    row_fields = row_fields or {}
    targets = {
        execution.pk: run_transition_target(execution.pk, execution.status, action)
        for execution in executions
    }
    if len(set(targets.values())) != 1:
        raise ValueError(f"runs_move_many: {action} leads to several statuses")
    target = next(iter(targets.values()))
    _update_many(executions, {"status": target, **(fields or {})}, row_fields)
    events = []
    for execution in executions:
        previous = execution.status
        execution.status = target
        for name, value in (fields or {}).items():
            setattr(execution, name, value)
        for name, values in row_fields.items():
            setattr(execution, name, values[execution.pk])
        events.append(
            {
                "event_type": AuditEventType.SCHEDULE,
                "action": RUN_EVENTS[action],
                "actor": actor,
                "resource": review_resource(execution.review_id),
                "session_id": execution.session_id,
                "metadata": {
                    **execution_event_metadata(execution),
                    "from": previous,
                    **(metadata or {}).get(execution.pk, {}),
                },
            }
        )
    audit_events_record_generated(events)
    observe_runs_finished(target, [execution.executor for execution in executions])


def _update_many(
    executions: Sequence[ScheduleExecution],
    fields: dict[str, Any],
    row_fields: dict[str, dict[Any, Any]],
) -> None:
    """One UPDATE: ``fields`` for every run, ``row_fields`` joined in from arrays."""
    meta = ScheduleExecution._meta
    quote = connection.ops.quote_name
    sets, params = [], []
    for name, value in fields.items():
        model_field = meta.get_field(name)
        sets.append(f"{quote(model_field.column)} = %s")
        params.append(model_field.get_db_prep_save(value, connection))
    ids = [execution.pk for execution in executions]
    columns, arrays, types = ["id"], [ids], ["uuid[]"]
    for name, values in row_fields.items():
        model_field = meta.get_field(name)
        sets.append(f"{quote(model_field.column)} = v.{quote(model_field.column)}")
        columns.append(quote(model_field.column))
        arrays.append([model_field.get_db_prep_save(values[pk], connection) for pk in ids])
        types.append(f"{model_field.db_type(connection)}[]")
    unnest = ", ".join(f"%s::{sql_type}" for sql_type in types)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} AS e SET {', '.join(sets)} "
            f"FROM unnest({unnest}) AS v({', '.join(columns)}) WHERE e.id = v.id",
            [*params, *arrays],
        )


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
    observe_batch_move(action, batch.queue)
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
