"""The work queue of agents: a queue-executed run's batches wait in PostgreSQL until an
agent claims one over the API (``/api/v1/work``), the way Procrastinate and Solid Queue
hand out jobs.

- A claim takes the first claimable batch of the queue in priority order (critical
  first, then the run's nominal time, then the batch's place in its run) with
  ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent claims never wait on each other
  nor take the same batch. Batches of a paused, interrupted or ended run are not
  claimable. A lease that ran out is reclaimed by the next claim of its queue.
- An empty queue holds the claim (a long poll of up to ``wait_seconds``) until a
  notification says work arrived (``scheduling.wakeups``), or a lease in the queue runs
  out, then looks again.
- Heartbeats, completes, fails and give-backs are ``scheduling.services.batches``'
  lease-checked functions; this module adds what the API needs around them: which
  queues a token may use, and that a batch of another queue does not exist for it.
"""

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from kernel.locking import LockRank, rows_locked
from scheduling.exceptions import (
    BatchNotFound,
    EventForeignSession,
    QueueNotAllowed,
    QueueNotFound,
)
from scheduling.models import (
    QUEUE_EXECUTOR_PREFIX,
    BatchStatus,
    ExecutionStatus,
    RunBatch,
    ScheduledReview,
)
from scheduling.results import AccountResult
from scheduling.services._moves import batch_move
from scheduling.services.batches import (
    BatchLease,
    batch_fail,
    batch_lease_of,
    batch_lease_renew,
    batch_record,
    batch_release,
    batches_expire,
    heartbeat_session_quietly,
    lease_seconds_for,
    new_lease_fields,
)
from scheduling.transitions import BatchAction
from scheduling.wakeups import wakeups
from sessions.hooks import HookEvent
from sessions.models import SessionStatus

# Look again a little after the earliest lease of the queue runs out.
_EXPIRY_SLACK_SECONDS = 0.05


def work_queue_check(queue: str, *, allowed: Sequence[str]) -> None:
    """``QueueNotAllowed`` if the token is limited to other queues; ``QueueNotFound``
    if no review hands out work on ``queue`` (and no batch of it is left)."""
    if allowed and queue not in allowed:
        raise QueueNotAllowed(queue, list(allowed))
    named = ScheduledReview.objects.filter(executor=QUEUE_EXECUTOR_PREFIX + queue).exists()
    if not named and not RunBatch.objects.filter(queue=queue, status=BatchStatus.PENDING).exists():
        raise QueueNotFound(queue)


def work_claim(queue: str, *, holder: str, actor: str) -> BatchLease | None:
    """Lease the first claimable batch of ``queue`` to ``holder``, or None."""
    batches_expire(queue=queue, actor=actor)
    with transaction.atomic():
        rows_locked(LockRank.BATCH, [f"next of queue {queue}"])
        batch = (
            RunBatch.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("execution__review")
            .filter(
                queue=queue,
                status=BatchStatus.PENDING,
                execution__status=ExecutionStatus.RUNNING,
                execution__session__status=SessionStatus.RUNNING,
            )
            .order_by("rank", "nominal_time", "execution_id", "index")
            .first()
        )
        if batch is None:
            return None
        execution = batch.execution
        batch_move(
            batch,
            BatchAction.CLAIM,
            execution=execution,
            actor=actor,
            fields=new_lease_fields(holder, batch.attempts, lease_seconds=lease_seconds_for(batch)),
            metadata={
                "holder": holder,
                "waited_ms": int((timezone.now() - batch.available_at).total_seconds() * 1000)
                if batch.available_at
                else None,
            },
        )
        lease = batch_lease_of(batch, execution, actor=actor)
    heartbeat_session_quietly(execution.session_id)
    return lease


def work_claim_wait(
    queue: str,
    *,
    wait_seconds: float,
    holder: str,
    actor: str,
    still_wanted: Callable[[], bool] = lambda: True,
) -> BatchLease | None:
    """``work_claim``, waiting up to ``wait_seconds`` for work to arrive. Woken, it looks
    again only while ``still_wanted()`` (the client is still connected): a poll whose
    agent died while it waited must not lease a batch to nobody."""
    if wait_seconds <= 0:
        return work_claim(queue, holder=holder, actor=actor)
    deadline = time.monotonic() + wait_seconds
    signals = wakeups()
    while True:
        seen = signals.generation(queue)
        lease = work_claim(queue, holder=holder, actor=actor)
        if lease is not None:
            return lease
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        signals.wait(queue, seen, min(left, _until_next_expiry(queue)))
        if not still_wanted():
            return None


def _until_next_expiry(queue: str) -> float:
    earliest = RunBatch.objects.filter(queue=queue, status=BatchStatus.RUNNING).aggregate(
        at=Min("lease_expires_at")
    )["at"]
    if earliest is None:
        return float("inf")
    return max(0.0, (earliest - timezone.now()).total_seconds()) + _EXPIRY_SLACK_SECONDS


def _queue_batch(batch_id: int, allowed: Sequence[str]) -> RunBatch:
    """A batch of a work queue the token may use; any other is 404 to it."""
    batch = RunBatch.objects.filter(pk=batch_id).exclude(queue="").only("pk", "queue").first()
    if batch is None or (allowed and batch.queue not in allowed):
        raise BatchNotFound(batch_id)
    return batch


def work_heartbeat(
    batch_id: int, token: uuid.UUID, *, allowed: Sequence[str], actor: str
) -> RunBatch:
    _queue_batch(batch_id, allowed)
    return batch_lease_renew(batch_id, token, actor=actor)


def work_complete(
    batch_id: int,
    token: uuid.UUID,
    *,
    results: Sequence[AccountResult],
    events: Sequence[HookEvent],
    counters: dict[str, int],
    allowed: Sequence[str],
    agent: str,
    actor: str,
) -> tuple[dict[str, Any], bool]:
    """Record the batch (``batch_record``); events without a session are the batch's
    session's, events naming another session are refused."""
    _queue_batch(batch_id, allowed)
    session_id = (
        RunBatch.objects.filter(pk=batch_id).values_list("execution__session_id", flat=True).get()
    )
    own_events = []
    for index, event in enumerate(events):
        if event.session_id is None:
            event = HookEvent(**{**event.__dict__, "session_id": session_id})
        elif event.session_id != session_id:
            raise EventForeignSession(index, event.session_id, session_id or "")
        own_events.append(event)
    return batch_record(
        batch_id,
        token,
        results=results,
        events=own_events,
        counters=counters,
        agent=agent,
        actor=actor,
    )


def work_fail(
    batch_id: int,
    token: uuid.UUID,
    *,
    error: str,
    retryable: bool,
    allowed: Sequence[str],
    actor: str,
) -> RunBatch:
    _queue_batch(batch_id, allowed)
    return batch_fail(batch_id, token, error=error, retryable=retryable, actor=actor)


def work_release(
    batch_id: int, token: uuid.UUID, *, allowed: Sequence[str], actor: str
) -> RunBatch:
    _queue_batch(batch_id, allowed)
    return batch_release(batch_id, token, actor=actor)
