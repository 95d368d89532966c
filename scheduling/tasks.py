"""Celery tasks of the scheduling app: each fetches by id and calls a service."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="scheduling.tasks.run_review", acks_late=True, reject_on_worker_lost=True)
def run_review(execution_id: str) -> str:
    """Run (or continue) one scheduled run. Idempotent: a duplicate delivery finds the
    run claimed and returns at once."""
    from scheduling.runners import RunOutcome, review_runner
    from scheduling.services import execution_claim, execution_conclude, execution_fail

    claim = execution_claim(execution_id)
    if claim is None:
        return "not claimed"
    try:
        outcome = review_runner().run(claim.run)
    except Exception as exc:
        logger.exception("Review run %s failed", execution_id)
        execution_fail(claim, f"{type(exc).__name__}: {exc}")
        return "failed"
    execution_conclude(claim, outcome)
    return outcome.value if isinstance(outcome, RunOutcome) else str(outcome)


@shared_task(name="scheduling.tasks.fire_review")
def fire_review(review_id: int) -> int:
    """The task of each review's PeriodicTask: dispatch the review if it is due. Our
    beat scheduler dispatches reviews itself; this makes a stock beat work too."""
    from scheduling.services import reviews_dispatch_due

    return reviews_dispatch_due(review_ids=[review_id], actor="beat:fire_review").queued


@shared_task(name="scheduling.tasks.recover_interrupted_runs")
def recover_interrupted_runs() -> list[str]:
    """Periodic: a run whose worker died has an interrupted session; recover it so a
    new worker continues from the newest checkpoint."""
    from scheduling.services import runs_recover_interrupted

    return runs_recover_interrupted(actor="task:recover_interrupted_runs")


@shared_task(name="scheduling.tasks.publish_due_runs")
def publish_due_runs() -> int:
    """Periodic safety net for the outbox (retries that came due, lost publishes) when
    the beat scheduler's own outbox pass is not running."""
    from scheduling.services import executions_publish

    return executions_publish()
