"""The 09:00 herd: runs prepared in bulk ahead of their time, started in bulk when due.

The dispatcher queues a run due within the lead time (``DISPATCH_LEAD_SECONDS``) ahead of
its time and asks the workers to prepare it (task ``prepare_runs``, a chunk of runs per
message). Preparing (``runs_prepare``) resolves the accounts (before any lock: it may
call the CRM), then in one transaction per chunk creates each run's session (pending)
and batches (pending, not yet claimable), and links the session to the run (move
``prepare``, queued -> queued). When the runs come due, the outbox starts the prepared
ones in bulk (``runs_start_prepared``): sessions started, runs started, batches made
claimable and handed out, one transaction per chunk, instead of one ``run_review``
message and one transaction per run on the workers.

Whatever is not prepared in time, or cannot be started in bulk (another run of its
review is running, its session was cancelled meanwhile), is published as before and
started one at a time by ``execution_claim``, which knows prepared runs. A preparation
that dies midway rolls back (its message is redelivered, acks_late); a run whose
preparation never happens simply starts the single way. Either way each run starts once:
every start is conditional on the run being queued, under the run's row lock.

Locks (``kernel.locking``): preparing locks the reviews ``FOR SHARE`` (their filter and
owner must not change under it; the review services wait for it), then the runs, all in
id order; the sessions and batches it makes are new. Starting locks the reviews
``FOR KEY SHARE`` (the sessions' owner's ``lock_ahead_many``), the sessions, the runs and
their batches, each set in id order, so two bulk starters, or a bulk starter and a single
start, never wait on each other in a cycle.
"""

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from kernel.locking import LockRank, rows_locked
from kernel.pgcopy import copy_rows
from scheduling import conf
from scheduling.accounts import account_source
from scheduling.metrics import observe_dispatch_lags, observe_prepared_start
from scheduling.models import (
    PRIORITY_RANK,
    BatchStatus,
    ExecutionStatus,
    ExecutionTrigger,
    OverlapPolicy,
    RunBatch,
    ScheduleExecution,
    SchedulePriority,
    priority_rank,
)
from scheduling.publishing import BATCH_TASK, PREPARE_TASK, RunMessage, publish_runs
from scheduling.services._moves import runs_move_many
from scheduling.transitions import RunAction
from scheduling.wakeups import work_available
from sessions import services as session_services
from sessions.models import SessionType

logger = logging.getLogger(__name__)

PREPARE_ACTOR = "worker:prepare_runs"
START_ACTOR = "beat:outbox"

_BATCH_COLUMNS = [
    "execution_id",
    "index",
    "account_ids",
    "status",
    "queue",
    "rank",
    "nominal_time",
    "attempts",
    "holder",
    "error",
]


def runs_prepare_request(runs: Iterable[tuple[UUID, str]]) -> int:
    """Ask the workers to prepare these runs (queued ahead of their time): one
    ``prepare_runs`` message per ``PREPARE_BATCH_SIZE`` runs, most urgent runs first, on
    Celery's default queue at the top priority (preparing is short and has a deadline).
    Returns how many messages were sent. A broker failure is logged, not raised: unprepared runs
    start the single way when due."""
    from sergas.celery import app

    by_priority: dict[str, list[str]] = defaultdict(list)
    for execution_id, priority in runs:
        by_priority[priority].append(str(execution_id))
    size = conf.prepare_batch_size()
    messages = [
        RunMessage(",".join(ids[start : start + size]), SchedulePriority.CRITICAL, PREPARE_TASK)
        for priority in SchedulePriority.values
        for ids in [by_priority.get(priority, [])]
        for start in range(0, len(ids), size)
    ]
    try:
        # On the default queue, not behind a backlog of review work on the review queue.
        publish_runs(messages, queue=app.conf.task_default_queue)
    except Exception:
        logger.exception("Preparation of %d chunk(s) of runs not requested", len(messages))
        return 0
    return len(messages)


# --- preparing -------------------------------------------------------------------------------


def runs_prepare(execution_ids: Sequence[str], *, actor: str = PREPARE_ACTOR) -> int:
    """Prepare the queued, unpublished, unprepared runs among ``execution_ids``: accounts,
    session, batches, in one transaction. Runs whose accounts cannot be resolved, or
    have none, are left unprepared (they start the single way, which fails or finishes
    them). Idempotent; returns how many were prepared."""
    wanted = _unprepared(execution_ids).values_list(
        "pk", "review__owner_id", "review__account_filter"
    )
    resolved: dict[UUID, tuple[str, Any, list[str]]] = {}
    source = account_source()
    for execution_id, owner_id, account_filter in wanted:
        try:
            accounts = source.resolve(owner_id, account_filter)
        except Exception:
            logger.warning(
                "Accounts of run %s not resolved ahead; it starts the single way",
                execution_id,
                exc_info=True,
            )
            continue
        if accounts:
            resolved[execution_id] = (owner_id, account_filter, accounts)
    if not resolved:
        return 0
    with transaction.atomic():
        executions = _lock_for_preparing(resolved)
        if not executions:
            return 0
        _prepare_locked(executions, resolved, actor=actor)
    return len(executions)


def _unprepared(execution_ids: Sequence[str]) -> Any:
    return ScheduleExecution.objects.filter(
        pk__in=list(execution_ids),
        status=ExecutionStatus.QUEUED,
        trigger=ExecutionTrigger.SCHEDULE,
        session__isnull=True,
        enqueued_at__isnull=True,
        due_at__isnull=False,
        review__isnull=False,
    )


def _lock_for_preparing(
    resolved: dict[UUID, tuple[str, Any, list[str]]],
) -> list[ScheduleExecution]:
    """Share-lock the runs' reviews and keep the runs whose review still has the owner
    and filter the accounts were resolved from; then lock those runs (ids in order)."""
    review_of = dict(
        ScheduleExecution.objects.filter(pk__in=list(resolved)).values_list("pk", "review_id")
    )
    review_ids = sorted({review_id for review_id in review_of.values() if review_id is not None})
    rows_locked(LockRank.REVIEW, review_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, owner_id, account_filter FROM scheduled_review"
            " WHERE id = ANY(%s) ORDER BY id FOR SHARE",
            [review_ids],
        )
        reviews = {row[0]: (row[1], _json(row[2])) for row in cursor.fetchall()}
    keep = sorted(
        execution_id
        for execution_id, (owner_id, account_filter, _accounts) in resolved.items()
        if reviews.get(review_of.get(execution_id)) == (owner_id, account_filter)
    )
    rows_locked(LockRank.RUN, [str(pk) for pk in keep])
    return list(
        _unprepared(keep)
        .select_for_update(of=("self",))
        .only(
            "id",
            "review_id",
            "nominal_time",
            "attempt",
            "trigger",
            "status",
            "priority",
            "executor",
            "session_id",
        )
        .order_by("pk")
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _prepare_locked(
    executions: list[ScheduleExecution],
    resolved: dict[UUID, tuple[str, Any, list[str]]],
    *,
    actor: str,
) -> None:
    size = conf.runner_batch_size()
    specs = []
    for execution in executions:
        owner_id, _filter, accounts = resolved[execution.pk]
        specs.append(
            session_services.NewSession(
                orchestrator_id=f"review-{execution.review_id}",
                session_type=SessionType.SCHEDULED,
                account_ids=accounts,
                owner_id=owner_id,
                context={
                    "metadata": {
                        "review_id": execution.review_id,
                        "execution_id": str(execution.pk),
                        "nominal_time": execution.nominal_time.isoformat(),
                        "attempt": execution.attempt,
                        "executor": execution.executor,
                    },
                    "total_batches": math.ceil(len(accounts) / size),
                },
            )
        )
    sessions = session_services.sessions_create_many(specs, actor=actor)
    batches = copy_rows(
        RunBatch._meta.db_table,
        _BATCH_COLUMNS,
        (
            (
                execution.pk,
                index,
                accounts[start : start + size],
                BatchStatus.PENDING.value,
                execution.queue,
                priority_rank(execution.priority),
                execution.nominal_time,
                0,
                "",
                "",
            )
            for execution in executions
            for accounts in [resolved[execution.pk][2]]
            for index, start in enumerate(range(0, len(accounts), size))
        ),
    )
    rows_locked(LockRank.BATCH, [f"batches of run {e.pk}" for e in executions], created=True)
    runs_move_many(
        executions,
        RunAction.PREPARE,
        actor=actor,
        row_fields={
            "session_id": {
                execution.pk: session.session_id
                for execution, session in zip(executions, sessions, strict=True)
            }
        },
        metadata={
            execution.pk: {
                "batches": math.ceil(len(resolved[execution.pk][2]) / size),
                "accounts": len(resolved[execution.pk][2]),
            }
            for execution in executions
        },
    )
    logger.debug("Prepared %d run(s), %d batch(es)", len(executions), batches)


# --- starting --------------------------------------------------------------------------------


def runs_start_prepared(
    execution_ids: Sequence[UUID | str] | None = None,
    *,
    now: datetime | None = None,
    batch_size: int = 1000,
    actor: str = START_ACTOR,
) -> tuple[int, set[UUID]]:
    """Start the prepared runs that are due (only ``execution_ids`` when given), a chunk
    per transaction. Returns (how many started, the prepared runs left to the single
    way: another run of their review is running, their session is no longer pending, or
    their chunk failed)."""
    started = 0
    refused: set[UUID] = set()
    reasons: dict[str, int] = defaultdict(int)  # why runs were left (metrics)
    while True:
        at = now or timezone.now()
        due = ScheduleExecution.objects.filter(
            status=ExecutionStatus.QUEUED,
            enqueued_at__isnull=True,
            due_at__lte=at,
            session__isnull=False,
        )
        if execution_ids is not None:
            due = due.filter(pk__in=list(execution_ids))
        if refused:
            due = due.exclude(pk__in=list(refused))
        rows = list(
            due.annotate(rank=PRIORITY_RANK)
            .order_by("due_at", "rank", "pk")  # the most urgent first, as dispatched
            .values_list("pk", "session_id", "review_id", "review__overlap_policy")[:batch_size]
        )
        if not rows:
            break
        startable, left = _without_overlaps(rows)
        refused |= left
        reasons["overlap"] += len(left)
        try:
            done = _start_chunk(startable, actor=actor)
        except Exception:
            logger.exception("Bulk start of %d prepared run(s) failed", len(startable))
            done = set()
            reasons["error"] += len(startable)
        else:
            reasons["session"] += len(startable) - len(done)
        started += len(done)
        refused |= {pk for pk, *_ in startable if pk not in done}
        if len(rows) < batch_size:
            break
    if started:
        logger.info("Started %d prepared run(s) in bulk", started)
    observe_prepared_start(started, reasons)
    return started, refused


def _without_overlaps(rows: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], set[UUID]]:
    """Split off the runs the overlap policy must decide one at a time (``_start``):
    another run of the review is running, or comes first in this chunk."""
    review_ids = {review_id for _pk, _sid, review_id, _policy in rows}
    running = set(
        ScheduleExecution.objects.filter(
            review_id__in=review_ids, status=ExecutionStatus.RUNNING
        ).values_list("review_id", flat=True)
    )
    startable, left, seen = [], set(), set()
    for row in rows:
        pk, _sid, review_id, policy = row
        busy = review_id in running or review_id in seen
        if busy and policy != OverlapPolicy.ALLOW:
            left.add(pk)
            continue
        seen.add(review_id)
        startable.append(row)
    return startable, left


def _start_chunk(rows: list[tuple[Any, ...]], *, actor: str) -> set[UUID]:
    """One transaction: sessions, runs, batches, in the lock order."""
    if not rows:
        return set()
    session_of = {pk: session_id for pk, session_id, *_ in rows}
    with transaction.atomic():
        sessions = session_services.sessions_start_many(list(session_of.values()), actor=actor)
        ids = sorted(pk for pk, session_id in session_of.items() if session_id in sessions)
        rows_locked(LockRank.RUN, [str(pk) for pk in ids])
        executions = list(
            ScheduleExecution.objects.select_for_update(of=("self",))
            .filter(pk__in=ids, status=ExecutionStatus.QUEUED, enqueued_at__isnull=True)
            .only(
                "id",
                "review_id",
                "nominal_time",
                "attempt",
                "trigger",
                "status",
                "priority",
                "executor",
                "session_id",
                "due_at",
            )
            .order_by("pk")
        )
        if len(executions) != len(ids) or any(session_of[e.pk] != e.session_id for e in executions):
            # A run moved under a session we started: nothing here may stand.
            raise RuntimeError("prepared runs changed while their sessions were locked")
        at = timezone.now()
        rows_locked(LockRank.BATCH, [f"batches of run {pk}" for pk in ids])
        batches = _batches_made_claimable(ids, at)
        runs_move_many(
            executions,
            RunAction.START,
            actor=actor,
            fields={"started_at": at, "enqueued_at": at},
            row_fields={
                "start_lag_ms": {
                    e.pk: int((at - e.nominal_time).total_seconds() * 1000) for e in executions
                }
            },
            metadata={
                e.pk: {
                    "batches": len(batches.get(e.pk, [])),
                    "accounts": sum(count for _id, count in batches.get(e.pk, [])),
                    "executor": e.executor,
                }
                for e in executions
            },
        )
        _hand_out(executions, batches)
        observe_dispatch_lags(
            (e.trigger, (at - e.due_at).total_seconds()) for e in executions if e.due_at
        )
    return set(ids)


def _batches_made_claimable(ids: list[UUID], at: datetime) -> dict[UUID, list[tuple[int, int]]]:
    """The pending batches of these runs become claimable from ``at``; returns them per
    run as (batch id, accounts), in index order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE schedule_run_batch SET available_at = %s"
            " WHERE execution_id = ANY(%s) AND status = 'pending'"
            " RETURNING execution_id, id, cardinality(account_ids), index",
            [at, ids],
        )
        rows = sorted(cursor.fetchall(), key=lambda row: (row[0], row[3]))
    batches: dict[UUID, list[tuple[int, int]]] = defaultdict(list)
    for execution_id, batch_id, accounts, _index in rows:
        batches[execution_id].append((batch_id, accounts))
    return batches


def _hand_out(
    executions: list[ScheduleExecution], batches: dict[UUID, list[tuple[int, int]]]
) -> None:
    """``batches_hand_out`` for many runs: the workers' messages in one publish after the
    commit, one notification per work queue (delivered on commit)."""
    messages = []
    for queue in sorted({e.queue for e in executions if e.queue}):
        work_available(queue)
    for execution in executions:
        if execution.queue:
            continue
        messages += [
            RunMessage(str(batch_id), execution.priority, task=BATCH_TASK)
            for batch_id, _accounts in batches.get(execution.pk, [])
        ]
    if messages:
        transaction.on_commit(lambda: publish_runs(messages), robust=True)
