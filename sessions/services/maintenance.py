"""Housekeeping: marking silent sessions interrupted, archiving old finished ones."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR
from sessions import conf
from sessions.models import (
    TERMINAL_STATUSES,
    AgentSession,
    ApprovalStatus,
    SessionApproval,
    SessionCheckpoint,
    SessionStatus,
)
from sessions.selectors import sessions_archivable
from sessions.services._write import lock_session, lock_session_for_transition, save_session
from sessions.services.lifecycle import apply_transition
from sessions.transitions import SessionAction


def _stale_cutoff(timeout_seconds: int | None) -> datetime:
    seconds = conf.heartbeat_timeout_seconds() if timeout_seconds is None else timeout_seconds
    return timezone.now() - timedelta(seconds=seconds)


def _waiting_on_staff(cutoff: datetime) -> Q:
    """Sessions with an open approval, or one decided since ``cutoff``: an agent waiting
    for staff sends no heartbeats, and gets a whole timeout to resume after the answer."""
    return Q(
        Exists(
            SessionApproval.objects.filter(session_id=OuterRef("pk")).filter(
                Q(status=ApprovalStatus.PENDING) | Q(decided_at__gte=cutoff)
            )
        )
    )


def sessions_interrupt_stale(
    *, timeout_seconds: int | None = None, actor: str = SYSTEM_ACTOR
) -> list[str]:
    """Mark ``interrupted`` every running session silent for longer than the timeout,
    unless it waits on staff (an open approval, or one decided within the timeout).

    Each session is re-checked under its row lock, so a heartbeat or a completion that
    lands between the scan and the lock wins and the session is left alone.
    """
    cutoff = _stale_cutoff(timeout_seconds)
    candidates = list(
        AgentSession.objects.filter(status=SessionStatus.RUNNING)
        .annotate(seen=Coalesce("last_heartbeat_at", "started_at", "updated_at"))
        .filter(seen__lt=cutoff)
        .exclude(_waiting_on_staff(cutoff))
        .values_list("session_id", flat=True)
    )
    interrupted = []
    for session_id in candidates:
        with transaction.atomic():
            session = lock_session_for_transition(session_id)
            seen = session.last_heartbeat_at or session.started_at or session.updated_at
            if session.status != SessionStatus.RUNNING or seen >= cutoff:
                continue
            # An approval is opened under the session's lock, so this sees any opened
            # before we took it.
            if AgentSession.objects.filter(_waiting_on_staff(cutoff), pk=session_id).exists():
                continue
            apply_transition(
                session,
                SessionAction.INTERRUPT,
                actor=actor,
                metadata={
                    "reason": "heartbeat timeout",
                    "last_heartbeat_at": seen.isoformat(),
                    "timeout_seconds": int((timezone.now() - cutoff).total_seconds()),
                },
            )
        interrupted.append(session_id)
    return interrupted


def session_archive(session_id: str, *, actor: str = SYSTEM_ACTOR) -> int:
    """Archive one finished session: keep only its final checkpoint and mark it archived.

    Returns how many checkpoints were pruned. Audit events are never deleted.
    """
    with transaction.atomic():
        session = lock_session(session_id, with_state=False)
        if session.status not in TERMINAL_STATUSES or session.archived_at is not None:
            return 0
        pruned, _ = SessionCheckpoint.objects.filter(
            session_id=session_id, sequence__lt=F("session__last_checkpoint_sequence")
        ).delete()
        session.archived_at = timezone.now()
        save_session(
            session,
            fields=["archived_at"],
            event_type=AuditEventType.SESSION_MAINTENANCE,
            action="archive",
            actor=actor,
            metadata={"checkpoints_pruned": pruned},
        )
    return pruned


@dataclass
class CleanupResult:
    session_ids: list[str] = field(default_factory=list)
    checkpoints_pruned: int = 0
    dry_run: bool = False


def sessions_cleanup_old(
    *,
    older_than_days: int,
    dry_run: bool = False,
    actor: str = SYSTEM_ACTOR,
    on_progress: Callable[[str], None] | None = None,
) -> CleanupResult:
    """Archive every finished session older than ``older_than_days``, one transaction each
    (an interrupted run keeps what it archived and resumes where it stopped)."""
    result = CleanupResult(
        session_ids=sessions_archivable(older_than_days=older_than_days), dry_run=dry_run
    )
    if dry_run:
        return result
    for session_id in result.session_ids:
        result.checkpoints_pruned += session_archive(session_id, actor=actor)
        if on_progress is not None:
            on_progress(session_id)
    return result
