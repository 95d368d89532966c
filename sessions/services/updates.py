"""Updates of a session's context and metrics, and heartbeats."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR
from sessions.exceptions import SessionNotFound, SessionNotRunning
from sessions.models import TERMINAL_STATUSES, AgentSession, SessionStatus
from sessions.services._progress import context_apply, metrics_apply
from sessions.services._write import lock_session, save_session


def _refuse_if_finished(session: AgentSession, operation: str) -> None:
    if session.status in TERMINAL_STATUSES:
        raise SessionNotRunning(session.session_id, status=session.status, operation=operation)


def session_update_context(
    session_id: str,
    *,
    changes: dict[str, Any],
    increments: dict[str, int] | None = None,
    actor: str = SYSTEM_ACTOR,
    expected_version: int | None = None,
) -> AgentSession:
    """Merge ``changes`` and ``increments`` into the context (``SessionContext.merge``)."""
    with transaction.atomic():
        session = lock_session(session_id, expected_version=expected_version)
        _refuse_if_finished(session, "update_context")
        fields = context_apply(session, changes, increments)
        return save_session(
            session,
            fields=fields,
            event_type=AuditEventType.SESSION_CONTEXT,
            action="update_context",
            actor=actor,
            metadata={
                "keys": sorted({*changes, *(increments or {})}),
                "processed": session.processed_count,
                "failed": session.failed_count,
            },
        )


def session_update_metrics(
    session_id: str,
    *,
    counters: dict[str, int] | None = None,
    processing_times_ms: list[int] | None = None,
    actor: str = SYSTEM_ACTOR,
) -> AgentSession:
    """Add to the metric counters and append account processing times."""
    counters = counters or {}
    with transaction.atomic():
        session = lock_session(session_id)
        _refuse_if_finished(session, "update_metrics")
        fields = metrics_apply(session, counters, processing_times_ms)
        return save_session(
            session,
            fields=fields,
            event_type=AuditEventType.SESSION_METRICS,
            action="update_metrics",
            actor=actor,
            metadata={
                "counters": counters,
                "processing_times": len(processing_times_ms or []),
            },
        )


@dataclass(frozen=True)
class Heartbeat:
    status: str
    recorded: bool
    at: datetime | None


def session_heartbeat(session_id: str) -> Heartbeat:
    """Record that a running session's agent is alive, and tell it the current status.

    Only a running session takes a heartbeat; any other status is returned so the agent
    learns that staff paused or cancelled it. Heartbeats are liveness, not state: they
    bump no version, write no audit event and do not invalidate the cache.
    """
    now = timezone.now()
    updated = AgentSession.objects.filter(pk=session_id, status=SessionStatus.RUNNING).update(
        last_heartbeat_at=now
    )
    if updated:
        return Heartbeat(status=SessionStatus.RUNNING, recorded=True, at=now)
    status = AgentSession.objects.filter(pk=session_id).values_list("status", flat=True).first()
    if status is None:
        raise SessionNotFound(session_id)
    return Heartbeat(status=status, recorded=False, at=None)
