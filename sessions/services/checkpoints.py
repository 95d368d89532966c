"""Durable checkpoints in PostgreSQL, and recovery from the newest one."""

import json
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR
from sessions import conf
from sessions.exceptions import SessionNotRunning
from sessions.models import AgentSession, SessionCheckpoint, SessionStatus
from sessions.services._progress import context_apply
from sessions.services._restore import state_restore
from sessions.services._write import lock_session, lock_session_for_transition, save_session
from sessions.services.lifecycle import apply_transition
from sessions.transitions import SessionAction

CHECKPOINTABLE = frozenset({SessionStatus.RUNNING, SessionStatus.PAUSED})


def session_checkpoint(
    session_id: str,
    *,
    context_changes: dict[str, Any] | None = None,
    context_increments: dict[str, int] | None = None,
    heartbeat: bool = False,
    actor: str = SYSTEM_ACTOR,
) -> SessionCheckpoint:
    """Checkpoint the context and metrics (after merging ``context_changes`` and
    ``context_increments``, see ``SessionContext.merge``) as the next sequence, in the
    same transaction as the session row, and prune beyond the limit.

    The checkpoint row stores the small fields only; what changed since the previous
    checkpoint (account progress, processing times) is already in its own rows under
    this sequence, so a checkpoint costs what changed, not the size of the context.
    ``heartbeat``: a running session's heartbeat goes into the same row write (an agent
    recording work is alive), sparing the row version a heartbeat of its own would make."""
    with transaction.atomic():
        session = lock_session(session_id)
        if session.status not in CHECKPOINTABLE:
            raise SessionNotRunning(session_id, status=session.status, operation="checkpoint")
        now = timezone.now()
        fields = context_apply(
            session, context_changes or {}, context_increments, checkpoint_timestamp=now
        )
        session.last_checkpoint_sequence += 1
        sequence = session.last_checkpoint_sequence
        size = len(json.dumps(session.stored_context)) + len(json.dumps(session.stored_metrics))
        checkpoint = SessionCheckpoint.objects.create(
            session=session,
            sequence=sequence,
            status=session.status,
            stored_context=session.stored_context,
            stored_metrics=session.stored_metrics,
            size_bytes=size,
            processed_count=session.processed_count,
            failed_count=session.failed_count,
            created_at=now,
        )
        pruned = checkpoints_prune(session_id, below=sequence - conf.checkpoints_kept() + 1)
        if heartbeat and session.status == SessionStatus.RUNNING:
            session.last_heartbeat_at = now
            fields = [*fields, "last_heartbeat_at"]
        save_session(
            session,
            fields=[*dict.fromkeys([*fields, "last_checkpoint_sequence"])],
            event_type=AuditEventType.SESSION_CHECKPOINT,
            action="checkpoint",
            actor=actor,
            metadata={"sequence": sequence, "size_bytes": size, "pruned": pruned},
        )
    return checkpoint


def checkpoints_prune(session_id: str, *, below: int) -> int:
    """Delete the session's checkpoints older than ``below``, and the account lists
    only they needed; returns how many checkpoints went."""
    pruned, _ = SessionCheckpoint.objects.filter(session_id=session_id, sequence__lt=below).delete()
    if pruned:
        with connection.cursor() as cursor:
            cursor.execute(_PRUNE_ACCOUNT_LISTS_SQL, {"session": session_id, "below": below})
    return pruned


# The list in force at the oldest kept checkpoint stays, the ones before it go.
_PRUNE_ACCOUNT_LISTS_SQL = """
DELETE FROM agent_session_account_list
 WHERE session_id = %(session)s
   AND sequence < (SELECT max(sequence) FROM agent_session_account_list
                    WHERE session_id = %(session)s AND sequence <= %(below)s)
"""


def session_recover(
    session_id: str, *, actor: str = SYSTEM_ACTOR, expected_version: int | None = None
) -> AgentSession:
    """Bring an interrupted or paused session back to running from its newest checkpoint.

    Terminal sessions are refused (``InvalidTransition``). The restore happens inside
    PostgreSQL: the row's small fields are copied from the checkpoint row, and the
    account progress, processing times and account lists newer than the checkpoint are
    undone through their sequence index, so it costs what changed since the checkpoint.
    A checkpoint of the previous release (whole state in its row) is restored whole.
    Without any checkpoint the session keeps the state it has, and the audit event says
    so.
    """
    with transaction.atomic():
        session = lock_session_for_transition(session_id, expected_version=expected_version)
        newest = (
            SessionCheckpoint.objects.filter(session_id=session_id)
            .order_by("-sequence")
            .values("sequence", "created_at")
            .first()
        )
        fields: dict[str, Any] = {
            "recovery_count": session.recovery_count + 1,
            "recovered_from_sequence": newest["sequence"] if newest else None,
        }
        previous_status = session.status
        apply_transition(
            session,
            SessionAction.RECOVER,
            actor=actor,
            fields=fields,
            metadata={
                "checkpoint_sequence": newest["sequence"] if newest else None,
                "checkpoint_created_at": newest["created_at"].isoformat() if newest else None,
                "recovery_count": fields["recovery_count"],
                "previous_status": previous_status,
            },
        )
        if newest is not None:
            state_restore(session_id, newest["sequence"])
    # Context and metrics stay deferred on ``session``: they load from the restored row.
    return session
