"""Celery tasks of the scheduling app: each fetches by id and calls a service."""

import logging
import uuid
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from kernel.logs import context as log_context

logger = logging.getLogger(__name__)

# PostgreSQL unreachable (restarting, failing over) or a lock timeout: without a retry the
# message would be acknowledged as failed and the run, still queued and already published,
# or the batch, still pending, would wait for a message nobody sends again. Claims are
# conditional, so a retry that finds the work done does nothing.
RETRY_WHILE_DATABASE_UNAVAILABLE: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": None,
}


@shared_task(
    name="scheduling.tasks.run_review",
    acks_late=True,
    reject_on_worker_lost=True,
    **RETRY_WHILE_DATABASE_UNAVAILABLE,
)
def run_review(execution_id: str) -> int:
    """Start (or continue) a run: its session, then one ``run_review_batch`` message per
    batch. Idempotent: a duplicate delivery publishes nothing new that matters."""
    from scheduling.services import execution_claim

    log_context.bind(execution_id=execution_id)
    return execution_claim(execution_id)


@shared_task(
    name="scheduling.tasks.prepare_runs",
    acks_late=True,
    reject_on_worker_lost=True,
    **RETRY_WHILE_DATABASE_UNAVAILABLE,
)
def prepare_runs(execution_ids: str) -> int:
    """Prepare runs queued ahead of their time (comma-separated ids): accounts, sessions,
    batches. Idempotent: a redelivered message prepares what is still unprepared."""
    from scheduling.services import runs_prepare

    return runs_prepare(execution_ids.split(","))


@shared_task(
    name="scheduling.tasks.run_review_batch",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    **RETRY_WHILE_DATABASE_UNAVAILABLE,
)
def run_review_batch(self: Any, batch_id: str, own_token: str | None = None) -> str:
    """Review one batch of a run. A redelivered message (its worker died) takes the
    batch over; any other duplicate finds it claimed and returns. A result that could not
    be recorded because PostgreSQL went away is not lost to the lease: the task retries,
    taking the batch back from itself (``own_token``) and reviewing it again."""
    from scheduling.services import batch_claim, batch_review

    log_context.bind(batch_id=batch_id)  # its run and session once claimed
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    claim = batch_claim(
        int(batch_id),
        redelivered=redelivered,
        own_token=uuid.UUID(own_token) if own_token else None,
    )
    if claim is None:
        return "not claimed"
    try:
        recorded = batch_review(claim)
    except (OperationalError, InterfaceError) as exc:
        logger.warning("Batch %s not recorded (%s); retrying", batch_id, exc)
        raise self.retry(
            exc=exc,
            kwargs={"batch_id": batch_id, "own_token": str(claim.token)},
            countdown=min(30, 2**self.request.retries),
        ) from exc
    except Exception:
        logger.exception("Batch %s of run %s failed", batch_id, claim.run.execution_id)
        return "failed"
    return "done" if recorded else "superseded"


@shared_task(name="scheduling.tasks.fire_review")
def fire_review(review_id: int) -> int:
    """The task of each review's PeriodicTask: dispatch the review if it is due. Our
    beat scheduler dispatches reviews itself; this makes a stock beat work too."""
    from scheduling.services import reviews_dispatch_due

    return reviews_dispatch_due(review_ids=[review_id], actor="beat:fire_review").queued


@shared_task(name="scheduling.tasks.recover_interrupted_runs")
def recover_interrupted_runs() -> list[str]:
    """Periodic: runs whose workers or agents died. Batches whose lease ran out are
    claimable again; a run whose session went silent is recovered from its newest
    checkpoint; the sessions of queue runs waiting for agents are vouched for."""
    from scheduling.services import (
        batches_expire,
        queue_runs_keep_alive,
        runs_recover_interrupted,
    )

    actor = "task:recover_interrupted_runs"
    batches_expire(actor=actor)
    queue_runs_keep_alive()
    return runs_recover_interrupted(actor=actor)


@shared_task(name="scheduling.tasks.publish_due_runs")
def publish_due_runs() -> int:
    """Periodic safety net for the outbox (retries that came due, lost publishes) when
    the beat scheduler's own outbox pass is not running."""
    from scheduling.services import executions_publish

    return executions_publish()
