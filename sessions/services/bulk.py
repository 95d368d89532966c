"""Sessions by the thousand: created, started or cancelled in one transaction, with the
same lifecycle table and the same audit events as one at a time (``lifecycle``), written
with ``COPY`` and set-based statements. For owners that prepare many sessions ahead of
their start (the 09:00 herd of scheduled runs, ``scheduling.services.prepared``).

Locks follow ``kernel.locking``: the owners' ``lock_ahead_many`` first, then the sessions
in the order of their ids (two bulk callers never wait on each other in a cycle), and
what comes after a session only from the owners' ``follow``.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR, audit_events_record_generated
from kernel.locking import LockRank, rows_locked
from kernel.pgcopy import copy_objects, copy_rows
from sessions.cache import session_cache
from sessions.exceptions import InvalidSessionState, InvalidTransition
from sessions.models import BULKY_COLUMNS, AgentSession, SessionAccount, SessionStatus, SessionType
from sessions.owners import session_owners
from sessions.services._progress import state_create
from sessions.services._write import resource_of
from sessions.services.lifecycle import apply_transition, new_session_id
from sessions.state import SessionContext, SessionMetrics
from sessions.transitions import SessionAction, transition_target


@dataclass(frozen=True)
class NewSession:
    """What ``session_create`` takes, for one session of a bulk creation."""

    orchestrator_id: str
    session_type: str = SessionType.MANUAL
    account_ids: list[str] = field(default_factory=list)
    owner_id: str = ""
    context: dict[str, Any] = field(default_factory=dict)


def sessions_create_many(
    specs: Sequence[NewSession], *, actor: str = SYSTEM_ACTOR
) -> list[AgentSession]:
    """Create pending sessions, one per spec, in the caller's transaction (or one of its
    own): rows, account index and ``create`` audit events exactly as ``session_create``
    writes them, each with a new id. Returns them in the order of ``specs``."""
    now = timezone.now()
    built = [_new_session(spec, actor=actor, now=now) for spec in specs]
    if not built:
        return []
    sessions = [session for session, _context in built]
    with transaction.atomic():
        copy_objects(sessions)
        rows_locked(LockRank.SESSION, [s.session_id for s in sessions], created=True)
        for session, context in built:
            if context.processed_accounts or context.failed_accounts:  # rare: given at creation
                state_create(session, context)
        copy_rows(
            SessionAccount._meta.db_table,
            ["session_id", "account_id"],
            (
                (session.session_id, account)
                for session in sessions
                for account in dict.fromkeys(session.account_ids)
            ),
        )
        audit_events_record_generated(
            {
                "event_type": AuditEventType.SESSION_LIFECYCLE,
                "action": "create",
                "actor": actor,
                "resource": resource_of(session.session_id),
                "session_id": session.session_id,
                "metadata": {
                    "version": session.version,
                    "to": SessionStatus.PENDING,
                    "session_type": str(session.session_type),
                    "orchestrator_id": session.orchestrator_id,
                    "account_count": len(session.account_ids),
                },
                "timestamp": now,
            }
            for session in sessions
        )
    return sessions


def _new_session(spec: NewSession, *, actor: str, now: Any) -> tuple[AgentSession, SessionContext]:
    # The row session_create builds (sessions.services.lifecycle); keep the two in step.
    orchestrator_id = (spec.orchestrator_id or "").strip()
    if not orchestrator_id or len(orchestrator_id) > 128:
        raise InvalidSessionState(
            "orchestrator_id must be 1-128 characters", field="orchestrator_id"
        )
    if spec.session_type not in SessionType.values:
        raise InvalidSessionState(
            f"'{spec.session_type}' is not a session type", field="session_type"
        )
    changes = {**spec.context, "account_ids": list(spec.account_ids), "owner_id": spec.owner_id}
    # What merge makes of a fresh context, without its deep copies (the herd's thousands).
    context = (
        SessionContext.load(changes)
        if changes.keys() <= SessionContext.model_fields.keys()
        else SessionContext().merge(changes)
    )
    session = AgentSession(
        session_id=new_session_id(orchestrator_id),
        orchestrator_id=orchestrator_id,
        session_type=spec.session_type,
        status=SessionStatus.PENDING,
        stored_context=context.dump_row(),
        stored_metrics=SessionMetrics().dump_row(),
        account_ids=context.account_ids,
        owner_id=context.owner_id or "",
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    return session, context


def sessions_start_many(
    session_ids: Sequence[str], *, actor: str = SYSTEM_ACTOR
) -> dict[str, AgentSession]:
    """Start the pending sessions among ``session_ids`` (``SessionAction.START``), in the
    caller's transaction (or one of its own): one UPDATE, one ``start`` audit event each
    (``metadata.version`` the new version), their owners following each as for
    ``session_start``, the cache told on commit. A session the table does not let start
    (it was cancelled meanwhile, or started) is left as it is and not returned."""
    ids = sorted(set(session_ids))
    if not ids:
        return {}
    with transaction.atomic():
        owners = session_owners()
        for owner in owners:
            owner.lock_ahead_many(ids)
        rows_locked(LockRank.SESSION, ids)
        locked = list(
            AgentSession.objects.select_for_update()
            .defer(*BULKY_COLUMNS)
            .filter(pk__in=ids)
            .order_by("pk")
        )
        startable: list[AgentSession] = []
        for session in locked:
            try:
                transition_target(session.session_id, session.status, SessionAction.START)
            except InvalidTransition:
                continue
            startable.append(session)
        if not startable:
            return {}
        now = timezone.now()
        AgentSession.objects.filter(pk__in=[s.session_id for s in startable]).update(
            status=SessionStatus.RUNNING,
            started_at=now,
            last_heartbeat_at=now,
            version=F("version") + 1,
            updated_at=now,
        )
        events = []
        for session in startable:
            previous = session.status
            session.status = SessionStatus.RUNNING
            session.started_at = session.last_heartbeat_at = session.updated_at = now
            session.version += 1
            events.append(
                {
                    "event_type": AuditEventType.SESSION_LIFECYCLE,
                    "action": SessionAction.START.value,
                    "actor": actor,
                    "resource": resource_of(session.session_id),
                    "session_id": session.session_id,
                    "metadata": {
                        "version": session.version,
                        "from": previous,
                        "to": session.status,
                    },
                    "timestamp": now,
                }
            )
            for owner in owners:
                owner.follow(session, SessionAction.START, previous=previous, actor=actor)
        audit_events_record_generated(events)
        versions = {session.session_id: session.version for session in startable}
        transaction.on_commit(lambda: session_cache().invalidate_many(versions))
    return {session.session_id: session for session in startable}


def sessions_cancel_unstarted(
    session_ids: Sequence[str], *, reason: str, actor: str = SYSTEM_ACTOR
) -> list[str]:
    """Cancel those of ``session_ids`` that never started (still pending): sessions
    prepared for work that will not happen. One ``session_cancel`` each, in id order;
    returns the ids cancelled. Others (started, or ended already) are left alone."""
    from sessions.services._write import lock_session_for_transition

    cancelled = []
    with transaction.atomic():
        for session_id in sorted(set(session_ids)):
            session = lock_session_for_transition(session_id)
            if session.status != SessionStatus.PENDING:
                continue
            apply_transition(
                session, SessionAction.CANCEL, actor=actor, metadata={"reason": reason}
            )
            cancelled.append(session_id)
    return cancelled
