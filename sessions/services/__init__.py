"""Every write to agent sessions. Each function is one transaction that changes the row,
bumps its version and records the audit event together."""

from sessions.services._write import lock_session
from sessions.services.approvals import (
    approval_approve,
    approval_expire,
    approval_mark_delivered,
    approval_reject,
    approval_request,
    approval_wait,
    approvals_cancel_for_session,
    approvals_expire_due,
)
from sessions.services.bulk import (
    NewSession,
    sessions_cancel_unstarted,
    sessions_create_many,
    sessions_start_many,
)
from sessions.services.checkpoints import session_checkpoint, session_recover
from sessions.services.events import hook_events_record
from sessions.services.lifecycle import (
    apply_transition,
    new_session_id,
    session_cancel,
    session_complete,
    session_create,
    session_fail,
    session_interrupt,
    session_pause,
    session_resume,
    session_scope,
    session_start,
)
from sessions.services.maintenance import (
    CleanupResult,
    session_archive,
    sessions_cleanup_old,
    sessions_interrupt_stale,
)
from sessions.services.updates import (
    Heartbeat,
    session_heartbeat,
    session_update_context,
    session_update_metrics,
)
from sessions.services.usage import session_record_usage

__all__ = [
    "CleanupResult",
    "Heartbeat",
    "NewSession",
    "apply_transition",
    "approval_approve",
    "approval_expire",
    "approval_mark_delivered",
    "approval_reject",
    "approval_request",
    "approval_wait",
    "approvals_cancel_for_session",
    "approvals_expire_due",
    "hook_events_record",
    "lock_session",
    "new_session_id",
    "session_archive",
    "session_cancel",
    "session_checkpoint",
    "session_complete",
    "session_create",
    "session_fail",
    "session_heartbeat",
    "session_interrupt",
    "session_pause",
    "session_record_usage",
    "session_recover",
    "session_resume",
    "session_scope",
    "session_start",
    "session_update_context",
    "session_update_metrics",
    "sessions_cancel_unstarted",
    "sessions_cleanup_old",
    "sessions_create_many",
    "sessions_interrupt_stale",
    "sessions_start_many",
]
