"""The audit of refused access: failed authentications (aggregated per address and
window, ``access.failures``), refused authorisations, staff logins, and the staff
member's actor once they may act."""

from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction

from access import failures
from access.exceptions import (
    StaffPermissionDenied,
)
from access.selectors import auth_failure_summary_exists
from audit.models import AuditEventType
from audit.services import audit_event_record

# The actor of what nobody identified did: failed authentications.
ANONYMOUS_ACTOR = "anonymous"


# Advisory locks (two-key form) serialising the writers of one window's summary.
_SUMMARY_LOCK_CLASS = 0x5E6A


def api_refusal_record(
    *,
    action: str,
    code: str,
    actor: str,
    resource: str,
    method: str,
    path: str,
    remote_addr: str | None,
    window: dict[str, Any] | None = None,
) -> None:
    """Record a refused API request in the audit trail (event type ``auth``): a failed
    authentication (``authentication_failed``) or a refused authorisation
    (``access_denied``). Never the token itself: at most its public prefix. ``window``
    says how later failures from the same address are summarised."""
    audit_event_record(
        event_type=AuditEventType.AUTH,
        action=action,
        actor=actor,
        resource=resource,
        metadata={
            "code": code,
            "method": method,
            "path": path[:500],
            "remote_addr": remote_addr,
            **(window or {}),
        },
    )


def staff_access_record(
    *,
    action: str,
    username: str,
    remote_addr: str | None,
    path: str,
    method: str = "POST",
    window: dict[str, Any] | None = None,
) -> None:
    """Record a staff login (``login``), a failed one (``login_failed``), one refused
    because its username and address are locked out (``login_locked_out``) or a
    refused page (``permission_denied``)."""
    name = username[:150]
    identified = bool(name) and action in ("login", "permission_denied")
    audit_event_record(
        event_type=AuditEventType.AUTH,
        action=action,
        actor=f"staff:{name}" if identified else ANONYMOUS_ACTOR,
        resource=f"user:{name}" if name else "user:",
        metadata={
            "username": name,
            "remote_addr": remote_addr,
            "path": path[:500],
            "method": method,
            **(window or {}),
        },
    )


def api_authentication_failure_record(
    *, code: str, prefix: str | None, method: str, path: str, remote_addr: str | None
) -> None:
    """A wrong or revoked bearer token: counted per address (``access.failures``); the
    first of its window is an ``authentication_failed`` event, the others go into the
    window's summary (``auth_failure_summaries_flush``)."""
    counted = failures.failure_count(
        failures.FailureKind.API_TOKEN, remote_addr, tried=prefix, code=code
    )
    if counted.outcome == failures.Outcome.AGGREGATED:
        return
    api_refusal_record(
        action="authentication_failed",
        code=code,
        actor=ANONYMOUS_ACTOR,
        resource=f"agent_token:{prefix}" if prefix else "api",
        method=method,
        path=path,
        remote_addr=remote_addr,
        window=_window_metadata(counted),
    )


def staff_login_failure_record(
    *, username: str, locked_out: bool, remote_addr: str | None, path: str
) -> None:
    """A failed staff login (``locked_out``: refused by, or causing, an axes lockout of
    the username and address), counted per address like a wrong token: the first of its
    window is a ``login_failed`` (or ``login_locked_out``) event, the others are
    summarised."""
    action = "login_locked_out" if locked_out else "login_failed"
    counted = failures.failure_count(
        failures.FailureKind.STAFF_LOGIN, remote_addr, tried=username[:150], code=action
    )
    if counted.outcome == failures.Outcome.AGGREGATED:
        return
    staff_access_record(
        action=action,
        username=username,
        remote_addr=remote_addr,
        path=path,
        window=_window_metadata(counted),
    )


def _window_metadata(counted: failures.Counted) -> dict[str, Any]:
    if counted.window is None:
        return {"aggregation": "unavailable"}  # Redis is down: each failure is an event
    return {
        "aggregation": "first_in_window",
        "window_start": _iso(counted.window.start),
        "window_end": _iso(counted.window.end),
    }


def auth_failure_summary_record(summary: failures.WindowSummary) -> bool:
    """Write one window's summary (``authentication_failures_summarized``): how many
    refused requests of one kind from one address it covers, and what they tried.
    Idempotent: a summary already written (same ``summary_id``) is not written again,
    so a flush that died after writing is simply run again. Returns whether it wrote."""
    window = summary.window
    resource = f"address:{window.key}"[:255]
    tried_name = "token_prefixes" if window.kind == failures.FailureKind.API_TOKEN else "usernames"
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                [_SUMMARY_LOCK_CLASS, summary.summary_id],
            )
        since = datetime.fromtimestamp(window.start, tz=UTC)
        if auth_failure_summary_exists(
            resource=resource, summary_id=summary.summary_id, since=since
        ):
            return False
        audit_event_record(
            event_type=AuditEventType.AUTH,
            action="authentication_failures_summarized",
            actor=ANONYMOUS_ACTOR,
            resource=resource,
            metadata={
                "kind": str(window.kind),
                "summary_id": summary.summary_id,
                "window_start": _iso(window.start),
                "window_end": _iso(window.end),
                "window_seconds": window.seconds,
                "count": summary.count,
                "failed": summary.aggregated,
                "throttled": summary.throttled,
                "codes": summary.codes,
                tried_name: summary.tried,
                f"{tried_name}_truncated": summary.tried_truncated,
                "addresses": summary.addresses,
                "addresses_truncated": summary.addresses_truncated,
            },
        )
    return True


def auth_failure_summaries_flush(*, now: float | None = None, max_windows: int = 10_000) -> int:
    """Summarise every closed window of failed authentications (beat, every
    ``AUTH_FAILURE_FLUSH_SECONDS``): one event per window and kind with what it counted,
    then forget it in Redis. Returns how many summaries were written. Redis unreachable:
    nothing is flushed now and nothing is lost (the next run finds the windows)."""
    written = 0
    seen: set[str] = set()
    while len(seen) < max_windows:
        windows = failures.closed_windows(now=now)
        fresh = [window for window in windows or [] if window.member not in seen]
        if not fresh:
            break
        for window in fresh:
            seen.add(window.member)
            summary = failures.window_read(window)
            if summary is None:
                continue
            if summary.count > 0 and auth_failure_summary_record(summary):
                written += 1
            failures.window_forget(summary)
    return written


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def staff_actor(
    user: Any, permission: str, *, path: str = "", remote_addr: str | None = None
) -> str:
    """The audit actor (``staff:<username>``) of a staff member about to change
    something, once they may: an active staff user holding ``permission``. Otherwise the
    refusal is recorded (``permission_denied``) and ``StaffPermissionDenied`` raised (403).

    Views and admin actions take their actor from here, so the permission is checked
    where the identity handed to the services is made, whatever the view checked."""
    if user.is_active and user.is_staff and user.has_perm(permission):
        return f"staff:{user.get_username()}"
    staff_access_record(
        action="permission_denied",
        username=user.get_username() if user.is_authenticated else "",
        remote_addr=remote_addr,
        path=path,
    )
    raise StaffPermissionDenied(permission)
