"""Creating sessions and moving them through the lifecycle table."""

import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR, audit_event_record
from kernel.locking import LockRank, rows_locked
from kernel.logs import context as log_context
from sessions.exceptions import InvalidSessionId, InvalidSessionState, SessionAlreadyExists
from sessions.metrics import observe_session_end
from sessions.models import TERMINAL_STATUSES, AgentSession, SessionStatus, SessionType
from sessions.owners import session_owners
from sessions.services._progress import state_create
from sessions.services._write import (
    accounts_index,
    lock_session_for_transition,
    resource_of,
    save_session,
)
from sessions.services.approvals import approvals_cancel_for_session
from sessions.state import SessionContext, SessionMetrics
from sessions.summary import session_summary_compute
from sessions.transitions import SessionAction, transition_target

SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def new_session_id(orchestrator_id: str) -> str:
    """``session_<orchestrator>_<hex>``, the form agents already speak."""
    orchestrator = _UNSAFE.sub("-", orchestrator_id)[:64].strip("-") or "orchestrator"
    return f"session_{orchestrator}_{secrets.token_hex(8)}"


def session_create(
    *,
    orchestrator_id: str,
    session_type: SessionType | str = SessionType.MANUAL,
    account_ids: list[str] | None = None,
    owner_id: str | None = None,
    context: dict[str, Any] | None = None,
    session_id: str | None = None,
    actor: str = SYSTEM_ACTOR,
) -> AgentSession:
    """Create a pending session. ``account_ids``/``owner_id`` go into the context too."""
    orchestrator_id = (orchestrator_id or "").strip()
    if not orchestrator_id or len(orchestrator_id) > 128:
        raise InvalidSessionState(
            "orchestrator_id must be 1-128 characters", field="orchestrator_id"
        )
    if session_type not in SessionType.values:
        raise InvalidSessionState(
            f"'{session_type}' is not a session type; use one of {', '.join(SessionType.values)}",
            field="session_type",
        )
    if session_id is None:
        session_id = new_session_id(orchestrator_id)
    elif not _SESSION_ID.match(session_id):
        raise InvalidSessionId(session_id)
    log_context.bind(session_id=session_id)

    # The context as sent must be valid on its own, even where the top-level fields
    # then replace it (an object as its owner_id is refused, not silently dropped).
    typed_context = SessionContext().merge(dict(context or {}))
    top: dict[str, Any] = {}
    if account_ids is not None:
        top["account_ids"] = list(account_ids)
    if owner_id is not None:
        top["owner_id"] = owner_id
    if top:
        typed_context = typed_context.merge(top)

    now = timezone.now()
    session = AgentSession(
        session_id=session_id,
        orchestrator_id=orchestrator_id,
        session_type=session_type,
        status=SessionStatus.PENDING,
        stored_context=typed_context.dump_row(),
        stored_metrics=SessionMetrics().dump_row(),
        account_ids=typed_context.account_ids,
        owner_id=typed_context.owner_id or "",
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                session.save(force_insert=True)
        except IntegrityError:
            raise SessionAlreadyExists(session_id) from None
        rows_locked(LockRank.SESSION, [session_id], created=True)
        accounts_index(session_id, session.account_ids)
        state_create(session, typed_context)
        audit_event_record(
            event_type=AuditEventType.SESSION_LIFECYCLE,
            action="create",
            actor=actor,
            resource=resource_of(session_id),
            session_id=session_id,
            metadata={
                "version": session.version,
                "to": SessionStatus.PENDING,
                "session_type": str(session_type),
                "orchestrator_id": orchestrator_id,
                "account_count": len(typed_context.account_ids),
            },
            timestamp=now,
        )
    return session


def apply_transition(
    session: AgentSession,
    action: SessionAction,
    *,
    actor: str,
    fields: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> AgentSession:
    """Move a locked ``session`` by ``action``, setting the timestamps the action implies.

    Raises ``InvalidTransition`` (naming the current status) if the table forbids it.
    Whatever ends a session (an agent, staff, a task) stores its ``summary``, cancels its
    pending approvals and, once committed, observes
    ``orchestrator_session_duration_seconds``. The session's owners
    follow in the same transaction (sessions/owners.py): lock the session with
    ``lock_session_for_transition`` so that they could lock what comes before it.
    """
    previous = session.status
    target = transition_target(session.session_id, previous, action)
    now = timezone.now()
    changes: dict[str, Any] = {"status": target}
    if action is SessionAction.START:
        changes |= {"started_at": now, "last_heartbeat_at": now}
    elif action is SessionAction.PAUSE:
        changes |= {"paused_at": now}
    elif action in (SessionAction.RESUME, SessionAction.RECOVER):
        changes |= {"paused_at": None, "last_heartbeat_at": now}
    elif action in (SessionAction.COMPLETE, SessionAction.FAIL, SessionAction.CANCEL):
        changes |= {"finished_at": now}
    changes |= fields or {}
    for name, value in changes.items():
        setattr(session, name, value)
    if target in TERMINAL_STATUSES:
        summary = session_summary_compute(session, status=target, finished_at=now)
        session.summary = changes["summary"] = summary.dump()
        if summary.duration_seconds is not None:
            transaction.on_commit(
                partial(
                    observe_session_end,
                    session_type=session.session_type,
                    status=target,
                    duration_seconds=summary.duration_seconds,
                )
            )
    save_session(
        session,
        fields=list(changes),
        event_type=AuditEventType.SESSION_LIFECYCLE,
        action=action.value,
        actor=actor,
        metadata={"from": previous, "to": target, **(metadata or {})},
    )
    for owner in session_owners():
        owner.follow(session, action, previous=previous, actor=actor)
    if target in TERMINAL_STATUSES:
        # Nobody is left to act on an answer; approvals come after runs and batches in
        # the lock order, hence after the owners.
        approvals_cancel_for_session(session.session_id, actor=actor, reason=f"session {target}")
    return session


def _transition(
    session_id: str,
    action: SessionAction,
    *,
    actor: str,
    expected_version: int | None,
    reason: str = "",
    fields: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> AgentSession:
    metadata = {**(metadata or {}), **({"reason": reason} if reason else {})}
    with transaction.atomic():
        session = lock_session_for_transition(session_id, expected_version=expected_version)
        return apply_transition(session, action, actor=actor, fields=fields, metadata=metadata)


def session_start(
    session_id: str, *, actor: str = SYSTEM_ACTOR, expected_version: int | None = None
) -> AgentSession:
    return _transition(
        session_id, SessionAction.START, actor=actor, expected_version=expected_version
    )


def _reasoned(action: SessionAction, doc: str) -> Callable[..., AgentSession]:
    """The public service of a transition that takes only a ``reason`` (kept in its
    audit event): pause, cancel and interrupt share this one body."""

    def service(
        session_id: str,
        *,
        actor: str = SYSTEM_ACTOR,
        reason: str = "",
        expected_version: int | None = None,
    ) -> AgentSession:
        return _transition(
            session_id, action, actor=actor, reason=reason, expected_version=expected_version
        )

    service.__name__ = service.__qualname__ = f"session_{action.value}"
    service.__doc__ = doc
    return service


session_pause = _reasoned(
    SessionAction.PAUSE, "Pause a running session; the agent stops after its batch in flight."
)


def session_resume(
    session_id: str, *, actor: str = SYSTEM_ACTOR, expected_version: int | None = None
) -> AgentSession:
    return _transition(
        session_id, SessionAction.RESUME, actor=actor, expected_version=expected_version
    )


def session_complete(
    session_id: str, *, actor: str = SYSTEM_ACTOR, expected_version: int | None = None
) -> AgentSession:
    return _transition(
        session_id, SessionAction.COMPLETE, actor=actor, expected_version=expected_version
    )


def session_fail(
    session_id: str,
    *,
    error: str,
    actor: str = SYSTEM_ACTOR,
    expected_version: int | None = None,
) -> AgentSession:
    error = error or "unspecified error"
    return _transition(
        session_id,
        SessionAction.FAIL,
        actor=actor,
        expected_version=expected_version,
        fields={"error_message": error},
        metadata={"error": error[:1000]},
    )


session_cancel = _reasoned(
    SessionAction.CANCEL, "End the session for good; it cannot be resumed or recovered."
)


session_interrupt = _reasoned(
    SessionAction.INTERRUPT,
    "Mark a running session interrupted (recoverable from its newest checkpoint).",
)


@contextmanager
def session_scope(session_id: str, *, actor: str = SYSTEM_ACTOR) -> Iterator[AgentSession]:
    """Run a block as the session's lifetime.

    Starts the session on entry. On a normal exit it completes it, unless staff paused or
    cancelled it meanwhile (the block is expected to stop when that happens). On any
    exception, cancellation and KeyboardInterrupt included, it fails the session with the
    error, unless it already ended, and re-raises.
    """
    session = session_start(session_id, actor=actor)
    try:
        yield session
    except BaseException as exc:
        _fail_unless_finished(session_id, error=f"{type(exc).__name__}: {exc}", actor=actor)
        raise
    else:
        with transaction.atomic():
            current = lock_session_for_transition(session_id)
            if current.status == SessionStatus.RUNNING:
                apply_transition(current, SessionAction.COMPLETE, actor=actor)


def _fail_unless_finished(session_id: str, *, error: str, actor: str) -> None:
    with transaction.atomic():
        current = lock_session_for_transition(session_id)
        if not current.is_terminal:
            apply_transition(
                current,
                SessionAction.FAIL,
                actor=actor,
                fields={"error_message": error},
                metadata={"error": error[:1000]},
            )
