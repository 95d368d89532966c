"""Handing claimable batches to whoever executes the run: one Celery message per batch
for the in-process runner, a wake-up of the queue's waiting agents for a work queue."""

from django.db import transaction

from scheduling.models import ScheduleExecution
from scheduling.publishing import BATCH_TASK, RunMessage, publish_runs
from scheduling.wakeups import work_available


def batches_hand_out(execution: ScheduleExecution, batch_ids: list[int]) -> None:
    """Call inside the transaction that made ``batch_ids`` claimable: messages go on
    commit, and the queue's notification is delivered on commit."""
    if not batch_ids:
        return
    if execution.queue:
        work_available(execution.queue)
        return
    messages = [RunMessage(str(pk), execution.priority, task=BATCH_TASK) for pk in batch_ids]
    transaction.on_commit(lambda: publish_runs(messages), robust=True)
