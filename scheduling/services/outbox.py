"""The outbox of review runs: queued executions not yet published to the broker.

An execution row is committed first and published after, so a worker never receives a
run it cannot see. Publishing locks the rows (``SKIP LOCKED``: two publishers never
wait on each other), sends, stamps ``enqueued_at`` and commits. If the process dies
between sending and committing, the rows stay unpublished and are sent again; the
duplicate message is harmless because claiming a run is conditional.
"""

import logging
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from scheduling.models import ExecutionStatus, ScheduleExecution
from scheduling.publishing import RunMessage, publish_runs

logger = logging.getLogger(__name__)


def executions_publish(
    execution_ids: Iterable[UUID | str] | None = None,
    *,
    now: datetime | None = None,
    limit: int = 1000,
) -> int:
    """Publish queued executions that are due and unpublished (only ``execution_ids``
    when given); returns how many were sent."""
    now = now or timezone.now()
    with transaction.atomic():
        pending = ScheduleExecution.objects.select_for_update(skip_locked=True).filter(
            status=ExecutionStatus.QUEUED, enqueued_at__isnull=True, due_at__lte=now
        )
        if execution_ids is not None:
            pending = pending.filter(pk__in=list(execution_ids))
        rows = list(pending.order_by("due_at").values_list("pk", "priority")[:limit])
        if not rows:
            return 0
        publish_runs(RunMessage(str(pk), priority) for pk, priority in rows)
        ScheduleExecution.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            enqueued_at=timezone.now()
        )
    return len(rows)


def publish_on_commit(execution_ids: list[UUID]) -> None:
    """Publish these executions once the current transaction commits. A broker failure
    is logged, not raised: the rows stay in the outbox and beat sends them later."""
    ids = list(execution_ids)
    transaction.on_commit(lambda: executions_publish(ids), robust=True)
