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
from sessions.services._write import (
    accounts_index,
    lock_session,
    lock_session_for_transition,
    save_session,
)
from sessions.services.lifecycle import apply_transition
from sessions.state import SessionContext
from sessions.transitions import SessionAction

CHECKPOINTABLE = frozenset({SessionStatus.RUNNING, SessionStatus.PAUSED})


def session_checkpoint(
    session_id: str,
    *,
    context_changes: dict[str, Any] | None = None,
    context_increments: dict[str, int] | None = None,
    actor: str = SYSTEM_ACTOR,
) -> SessionCheckpoint:
    """Snapshot the context and metrics (after merging ``context_changes`` and
    ``context_increments``, see ``SessionContext.merge``) as the next checkpoint, in the
    same transaction as the session row, and prune beyond the limit."""
    with transaction.atomic():
        session = lock_session(session_id)
        if session.status not in CHECKPOINTABLE:
            raise SessionNotRunning(session_id, status=session.status, operation="checkpoint")
        now = timezone.now()
        context = SessionContext.load(session.context).merge(
            context_changes or {}, context_increments
        )
        context.checkpoint_timestamp = now
        session.context = context.dump()
        if context.account_ids != session.account_ids:
            accounts_index(session_id, context.account_ids)
        session.account_ids = context.account_ids
        session.owner_id = context.owner_id or ""
        session.last_checkpoint_sequence += 1
        sequence = session.last_checkpoint_sequence
        size = len(json.dumps(session.context)) + len(json.dumps(session.metrics))
        checkpoint = SessionCheckpoint.objects.create(
            session=session,
            sequence=sequence,
            status=session.status,
            context=session.context,
            metrics=session.metrics,
            size_bytes=size,
            created_at=now,
        )
        pruned, _ = SessionCheckpoint.objects.filter(
            session=session, sequence__lte=sequence - conf.checkpoints_kept()
        ).delete()
        save_session(
            session,
            fields=["context", "account_ids", "owner_id", "last_checkpoint_sequence"],
            event_type=AuditEventType.SESSION_CHECKPOINT,
            action="checkpoint",
            actor=actor,
            metadata={"sequence": sequence, "size_bytes": size, "pruned": pruned},
        )
    return checkpoint


def session_recover(
    session_id: str, *, actor: str = SYSTEM_ACTOR, expected_version: int | None = None
) -> AgentSession:
    """Bring an interrupted or paused session back to running from its newest checkpoint.

    Terminal sessions are refused (``InvalidTransition``). The restore is one UPDATE that
    copies context and metrics from the checkpoint row inside PostgreSQL, so a large
    context never travels through Python. Without any checkpoint the session keeps the
    state it has, and the audit event says so.
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
            with connection.cursor() as cursor:
                cursor.execute(_RESTORE_SQL, [newest["sequence"], session_id])
                restored = cursor.fetchone()
            if restored is not None and restored[0]:  # rare: accounts changed since then
                accounts_index(session_id, restored[1])
    # Context and metrics stay deferred on ``session``: they load from the restored row.
    return session


# Copies the checkpoint's state into the session row without a round trip through Python,
# keeping the account_ids/owner_id columns in step with the restored context.
_RESTORE_SQL = """
UPDATE agent_session AS s
   SET context = c.context,
       metrics = c.metrics,
       account_ids = ARRAY(SELECT jsonb_array_elements_text(c.context -> 'account_ids')),
       owner_id = COALESCE(c.context ->> 'owner_id', '')
  FROM agent_session_checkpoint AS c
 WHERE c.session_id = s.session_id AND c.sequence = %s AND s.session_id = %s
   -- Usually nothing changed since the checkpoint (batches checkpoint as they record):
   -- then no new row version is written, and no index entry for a megabyte of context.
   AND (s.context IS DISTINCT FROM c.context OR s.metrics IS DISTINCT FROM c.metrics)
RETURNING s.account_ids IS DISTINCT FROM
          (SELECT old.account_ids FROM agent_session AS old WHERE old.session_id = s.session_id),
          s.account_ids
"""
