"""Celery tasks of the scheduling app: each fetches by id and calls a service."""

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="scheduling.tasks.run_review", acks_late=True, reject_on_worker_lost=True)
def run_review(execution_id: str) -> int:
    """Start (or continue) a run: its session, then one ``run_review_batch`` message per
    batch. Idempotent: a duplicate delivery publishes nothing new that matters."""
    from scheduling.services import execution_claim

    return execution_claim(execution_id)


@shared_task(
    name="scheduling.tasks.run_review_batch",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def run_review_batch(self: Any, batch_id: str) -> str:
    """Review one batch of a run. A redelivered message (its worker died) takes the
    batch over; any other duplicate finds it claimed and returns."""
    from scheduling.services import batch_claim, batch_review

    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    claim = batch_claim(int(batch_id), redelivered=redelivered)
    if claim is None:
        return "not claimed"
    try:
        batch_review(claim)
    except Exception:
        logger.exception("Batch %s of run %s failed", batch_id, claim.run.execution_id)
        return "failed"
    return "done"


@shared_task(name="scheduling.tasks.fire_review")
def fire_review(review_id: int) -> int:
    """The task of each review's PeriodicTask: dispatch the review if it is due. Our
    beat scheduler dispatches reviews itself; this makes a stock beat work too."""
    from scheduling.services import reviews_dispatch_due

    return reviews_dispatch_due(review_ids=[review_id], actor="beat:fire_review").queued


@shared_task(name="scheduling.tasks.recover_interrupted_runs")
def recover_interrupted_runs() -> list[str]:
    """Periodic: runs whose workers died. Batches whose lease expired run again; a run
    whose session went silent is recovered from its newest checkpoint."""
    from scheduling.services import batches_reap_expired, runs_recover_interrupted

    batches_reap_expired(actor="task:recover_interrupted_runs")
    return runs_recover_interrupted(actor="task:recover_interrupted_runs")


@shared_task(name="scheduling.tasks.publish_due_runs")
def publish_due_runs() -> int:
    """Periodic safety net for the outbox (retries that came due, lost publishes) when
    the beat scheduler's own outbox pass is not running."""
    from scheduling.services import executions_publish

    return executions_publish()
