from celery import shared_task

# Task names predate the package's rename (agents -> access): queued messages and beat
# entries still carry them.


@shared_task(name="agents.tasks.prune_idempotency_records")
def prune_idempotency_records() -> int:
    """Periodic (beat, hourly): drop stored Idempotency-Key responses past their window."""
    from access.services import idempotency_records_prune

    return idempotency_records_prune()


@shared_task(name="agents.tasks.flush_auth_failure_summaries")
def flush_auth_failure_summaries() -> int:
    """Periodic (beat, ``AUTH_FAILURE_FLUSH_SECONDS``): one audit event per closed window
    of failed authentications from one address (access.failures)."""
    from access.services import auth_failure_summaries_flush

    return auth_failure_summaries_flush()
