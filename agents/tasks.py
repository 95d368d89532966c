from celery import shared_task


@shared_task(name="agents.tasks.prune_idempotency_records")
def prune_idempotency_records() -> int:
    """Periodic (beat, hourly): drop stored Idempotency-Key responses past their window."""
    from agents.services import idempotency_records_prune

    return idempotency_records_prune()
