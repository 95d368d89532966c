"""The one way a session row changes: lock, change, bump version, audit, invalidate."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import audit_event_record
from kernel.locking import LockRank, rows_locked
from sessions.cache import session_cache
from sessions.exceptions import SessionNotFound, VersionConflict
from sessions.models import BULKY_COLUMNS, AgentSession, SessionAccount
from sessions.owners import session_owners


def resource_of(session_id: str) -> str:
    return f"session:{session_id}"


def lock_session(
    session_id: str, *, expected_version: int | None = None, with_state: bool = True
) -> AgentSession:
    """Fetch the row ``FOR UPDATE``; call inside ``transaction.atomic``.

    The row lock serialises every writer of one session, so conflicting transitions
    resolve one at a time and concurrent updates never overwrite each other.
    """
    queryset = AgentSession.objects.select_for_update()
    if not with_state:
        queryset = queryset.defer(*BULKY_COLUMNS)
    rows_locked(LockRank.SESSION, [session_id])
    try:
        session = queryset.get(pk=session_id)
    except AgentSession.DoesNotExist:
        raise SessionNotFound(session_id) from None
    if expected_version is not None and session.version != expected_version:
        raise VersionConflict(session_id, current=session.version, expected=expected_version)
    return session


def lock_session_for_transition(
    session_id: str, *, expected_version: int | None = None
) -> AgentSession:
    """``lock_session`` for a lifecycle transition: the session's owners first lock what
    comes before a session in the lock order (sessions/owners.py)."""
    for owner in session_owners():
        owner.lock_ahead(session_id)
    return lock_session(session_id, expected_version=expected_version, with_state=False)


def save_session(
    session: AgentSession,
    *,
    fields: list[str],
    event_type: AuditEventType,
    action: str,
    actor: str,
    metadata: dict[str, Any] | None = None,
) -> AgentSession:
    """Persist ``fields`` with a new version and its audit event, in the caller's
    transaction, and invalidate the cache once that transaction commits."""
    session.version += 1
    session.updated_at = timezone.now()
    session.save(update_fields=[*fields, "version", "updated_at"])
    audit_event_record(
        event_type=event_type,
        action=action,
        actor=actor,
        resource=resource_of(session.session_id),
        session_id=session.session_id,
        metadata={"version": session.version, **(metadata or {})},
        timestamp=session.updated_at,
    )
    invalidate_on_commit(session.session_id, session.version)
    return session


def invalidate_on_commit(session_id: str, version: int) -> None:
    transaction.on_commit(lambda: session_cache().invalidate(session_id, version))


def accounts_index(session_id: str, account_ids: list[str]) -> None:
    """Make SessionAccount say exactly ``account_ids`` for the session (call inside the
    transaction that changed them)."""
    SessionAccount.objects.filter(session_id=session_id).exclude(
        account_id__in=account_ids
    ).delete()
    SessionAccount.objects.bulk_create(
        [SessionAccount(session_id=session_id, account_id=account) for account in account_ids],
        batch_size=5000,
        ignore_conflicts=True,
    )
