from celery import shared_task


@shared_task(name="sessions.tasks.interrupt_stale_sessions")
def interrupt_stale_sessions() -> list[str]:
    """Periodic (beat, every minute): mark silent running sessions interrupted."""
    from sessions.services import sessions_interrupt_stale

    return sessions_interrupt_stale(actor="task:interrupt_stale_sessions")


@shared_task(name="sessions.tasks.expire_approvals")
def expire_approvals() -> list[str]:
    """Periodic (beat, every minute): pending approvals past their deadline take their
    default decision."""
    from sessions.services import approvals_expire_due

    return approvals_expire_due(actor="task:expire_approvals")
