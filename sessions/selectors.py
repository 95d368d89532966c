"""Reads of agent sessions."""

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from sessions.cache import session_cache
from sessions.models import ACTIVE_STATUSES, TERMINAL_STATUSES, AgentSession, SessionCheckpoint


def session_get(session_id: str) -> AgentSession | None:
    """The session through the cache tiers (process, Redis, PostgreSQL), or None.

    See ``sessions.cache`` for how stale a cached read can be.
    """
    cache = session_cache()
    session = cache.get(session_id)
    if session is not None:
        return session
    session = AgentSession.objects.filter(pk=session_id).first()
    if session is not None:
        cache.fill(session)
    return session


def sessions_list_active(*, orchestrator_id: str | None = None) -> QuerySet[AgentSession]:
    """Running and paused sessions, newest first, from PostgreSQL."""
    queryset = AgentSession.objects.filter(status__in=ACTIVE_STATUSES)
    if orchestrator_id:
        queryset = queryset.filter(orchestrator_id=orchestrator_id)
    return queryset.order_by("-created_at")


def session_checkpoints(session_id: str) -> QuerySet[SessionCheckpoint]:
    """The session's retained checkpoints, newest first."""
    return SessionCheckpoint.objects.filter(session_id=session_id).order_by("-sequence")


def sessions_archivable(*, older_than_days: int) -> list[str]:
    """Ids of finished, not yet archived sessions that ended before the cutoff."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    return list(
        AgentSession.objects.filter(
            status__in=TERMINAL_STATUSES,
            archived_at__isnull=True,
            finished_at__lt=cutoff,
        )
        .order_by("finished_at")
        .values_list("session_id", flat=True)
    )
