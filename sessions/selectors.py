"""Reads of agent sessions."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from sergas.pagination import Page, keyset_page
from sessions.cache import session_cache
from sessions.models import (
    ACTIVE_STATUSES,
    STATE_COLUMNS,
    TERMINAL_STATUSES,
    AgentSession,
    SessionCheckpoint,
)

# Newest first; session_id breaks ties between sessions created in the same microsecond.
LIST_ORDERING = ("-created_at", "-session_id")


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


def session_exists(session_id: str) -> bool:
    return AgentSession.objects.filter(pk=session_id).exists()


def session_creator(session_id: str) -> str | None:
    """Who created the session (its ``created_by`` actor), or None if it does not exist."""
    return AgentSession.objects.filter(pk=session_id).values_list("created_by", flat=True).first()


def sessions_list(
    *,
    statuses: Sequence[str] = (),
    session_type: str | None = None,
    owner_id: str | None = None,
    orchestrator_id: str | None = None,
    account_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    created_by: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[AgentSession]:
    """Sessions matching every given filter, newest first, one keyset page at a time.

    Context and metrics stay in PostgreSQL (a list never carries megabytes of context);
    ``account_id`` uses the GIN index on ``account_ids``; ``created_by`` (the sessions of
    one creator, for confined tokens) its index with ``created_at``.
    """
    queryset = AgentSession.objects.defer(*STATE_COLUMNS)
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    if session_type:
        queryset = queryset.filter(session_type=session_type)
    if owner_id:
        queryset = queryset.filter(owner_id=owner_id)
    if orchestrator_id:
        queryset = queryset.filter(orchestrator_id=orchestrator_id)
    if account_id:
        queryset = queryset.filter(account_ids__contains=[account_id])
    if created_after:
        queryset = queryset.filter(created_at__gte=created_after)
    if created_before:
        queryset = queryset.filter(created_at__lt=created_before)
    if created_by is not None:
        queryset = queryset.filter(created_by=created_by)
    return keyset_page(queryset, ordering=LIST_ORDERING, cursor=cursor, limit=limit)


def sessions_count_active() -> int:
    """Running and paused sessions right now (the ``orchestrator_active_sessions`` gauge)."""
    return AgentSession.objects.filter(status__in=ACTIVE_STATUSES).count()


def session_checkpoints(session_id: str, *, with_state: bool = True) -> QuerySet[SessionCheckpoint]:
    """The session's retained checkpoints, newest first (without their state if asked)."""
    queryset = SessionCheckpoint.objects.filter(session_id=session_id).order_by("-sequence")
    return queryset if with_state else queryset.defer(*STATE_COLUMNS)


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
