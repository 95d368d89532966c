from celery import shared_task


@shared_task(name="sessions.tasks.interrupt_stale_sessions")
def interrupt_stale_sessions() -> list[str]:
    """Periodic (beat, every minute): mark silent running sessions interrupted."""
    from sessions.services import sessions_interrupt_stale

    return sessions_interrupt_stale(actor="task:interrupt_stale_sessions")
