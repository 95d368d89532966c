from celery import shared_task


@shared_task(name="housekeeping.tasks.prune")
def prune() -> dict[str, int]:
    """Periodic (beat, daily): remove what the retentions allow (housekeeping.services)."""
    from housekeeping.services import housekeeping_prune

    steps = housekeeping_prune(actor="task:prune")
    return {step.name: step.count for step in steps}
