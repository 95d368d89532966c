"""The outbox of review runs: queued executions not yet published to the broker (or,
prepared ahead of their time, not yet started: ``scheduling.services.prepared``).

An execution row is committed first and published after, so a worker never receives a
run it cannot see. Publishing locks the rows (``SKIP LOCKED``: two publishers never
wait on each other), sends, stamps ``enqueued_at`` and commits. If the process dies
between sending and committing, the rows stay unpublished and are sent again; the
duplicate message is harmless because claiming a run is conditional.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR, audit_event_record
from scheduling import conf
from scheduling.metrics import observe_dispatch_lags
from scheduling.models import ExecutionStatus, ScheduleExecution
from scheduling.publishing import RunMessage, publish_runs
from sessions.models import SessionStatus

logger = logging.getLogger(__name__)


def executions_publish(
    execution_ids: Iterable[UUID | str] | None = None,
    *,
    now: datetime | None = None,
    batch_size: int = 1000,
) -> int:
    """Hand out queued executions that are due and unpublished (only ``execution_ids``
    when given), a batch per transaction: the prepared ones are started in bulk
    (``runs_start_prepared``), the others published for a worker to start. Returns how
    many were started or sent."""
    from scheduling.services.prepared import runs_start_prepared

    ids = list(execution_ids) if execution_ids is not None else None
    sent, single_way = runs_start_prepared(ids, now=now, batch_size=batch_size)
    while True:
        at = now or timezone.now()
        with transaction.atomic():
            pending = ScheduleExecution.objects.select_for_update(skip_locked=True).filter(
                status=ExecutionStatus.QUEUED, enqueued_at__isnull=True, due_at__lte=at
            )
            # Prepared runs are the bulk start's, unless it left them to the single way.
            pending = pending.filter(Q(session__isnull=True) | Q(pk__in=list(single_way)))
            if ids is not None:
                pending = pending.filter(pk__in=ids)
            rows = list(pending.order_by("due_at").values_list("pk", "priority")[:batch_size])
            if rows:
                _publish_and_stamp(rows)
        sent += len(rows)
        if len(rows) < batch_size:
            return sent


def _publish_and_stamp(rows: list[tuple[UUID, str]]) -> None:
    publish_runs(RunMessage(str(pk), priority) for pk, priority in rows)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE schedule_execution SET enqueued_at = %s WHERE id = ANY(%s)"
            " RETURNING trigger, EXTRACT(EPOCH FROM enqueued_at - due_at)::float8",
            [timezone.now(), [pk for pk, _ in rows]],
        )
        lags = cursor.fetchall()
    observe_dispatch_lags((trigger, lag) for trigger, lag in lags if lag is not None)


def executions_publish_new(runs: list[tuple[UUID, str]]) -> int:
    """Publish runs this process has just committed (the dispatcher's batch): nobody
    else can be publishing them yet, so no lock is taken. A crash before the stamp
    leaves them in the outbox, to be sent again (harmlessly)."""
    if runs:
        _publish_and_stamp(runs)
    return len(runs)


def publish_on_commit(execution_ids: list[UUID]) -> None:
    """Publish these executions once the current transaction commits. A broker failure
    is logged, not raised: the rows stay in the outbox and beat sends them later."""
    ids = list(execution_ids)
    transaction.on_commit(lambda: executions_publish(ids), robust=True)


@dataclass(frozen=True)
class BrokerLossRecovery:
    queued: int  # published runs not yet started: back in the outbox
    running: int  # running runs handed to the workers again (they publish pending batches)


def runs_resend_after_broker_loss(*, actor: str = SYSTEM_ACTOR) -> BrokerLossRecovery:
    """The broker lost its messages (Redis restarted without persistence, or flushed):
    send again everything the runs are waiting for.

    Queued runs already published go back to the outbox (``enqueued_at`` cleared), for
    the next ``executions_publish``; each running run whose session runs gets a
    ``run_review`` message, which publishes its pending batches (``execution_claim``).
    A message that was not lost after all arrives twice, and the second claims nothing.
    Batches in flight carry on; if their worker dies as well, the lease reaper takes
    them. Raises if the broker cannot take the messages: call again later (idempotent).
    """
    with transaction.atomic():
        queued = ScheduleExecution.objects.filter(
            status=ExecutionStatus.QUEUED, enqueued_at__isnull=False
        ).update(enqueued_at=None)
        running = list(
            ScheduleExecution.objects.filter(
                status=ExecutionStatus.RUNNING, session__status=SessionStatus.RUNNING
            ).values_list("pk", "priority")
        )
        recovery = BrokerLossRecovery(queued=queued, running=len(running))
        if queued or running:
            audit_event_record(
                event_type=AuditEventType.SYSTEM,
                action="broker_messages_resent",
                actor=actor,
                resource=f"queue:{conf.review_queue()}",
                metadata={"queued_runs": recovery.queued, "running_runs": recovery.running},
            )
    publish_runs(RunMessage(str(pk), priority) for pk, priority in running)
    if queued or running:
        logger.warning(
            "The broker lost its messages: %d queued run(s) back in the outbox, %d running"
            " run(s) handed to the workers again",
            recovery.queued,
            recovery.running,
        )
    return recovery
