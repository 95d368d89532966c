"""Errors of the session domain. Messages are constants so tests and clients can match them."""

from collections.abc import Iterable

from kernel.errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed

INVALID_TRANSITION = (
    "Cannot {action} session {session_id}: it is {status}; {action} is allowed only from {allowed}."
)
SESSION_NOT_FOUND = "Session {session_id} does not exist."
SESSION_EXISTS = "Session {session_id} already exists."
VERSION_CONFLICT = (
    "Session {session_id} is at version {current}, not {expected}: reload it and retry."
)
NOT_RUNNING = "Session {session_id} is {status}, not running: {operation} needs a running session."
EVENT_BATCH_TOO_LARGE = "The batch holds {count} events; the limit is {limit} per request."
EVENT_SESSION_UNKNOWN = "Event {index} names session {session_id}, which does not exist."
EVENT_IN_FUTURE = (
    "Event {index} is stamped {timestamp}, more than {seconds} s ahead of the server's clock."
)
EVENT_TOO_OLD = (
    "Event {index} is stamped {timestamp}, more than {days} days ago: older than the audit "
    "trail keeps."
)
APPROVAL_NOT_FOUND = "Approval {approval_id} does not exist."
APPROVAL_NOT_PENDING = (
    "Cannot {action} approval {approval_id}: it is {status} already; only a pending "
    "approval can be decided."
)
APPROVAL_DECISION_NOT_AN_OPTION = "'{decision}' is not one of the options: {options}."
INVALID_SESSION_ID = (
    "'{session_id}' is not a valid session id: use 1-128 letters, digits, '_', '-', '.' or ':'."
)


class SessionNotFound(NotFound):
    code = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(SESSION_NOT_FOUND.format(session_id=session_id), session_id=session_id)


class SessionAlreadyExists(Conflict):
    code = "session_exists"

    def __init__(self, session_id: str) -> None:
        super().__init__(SESSION_EXISTS.format(session_id=session_id), session_id=session_id)


class InvalidTransition(Conflict):
    """The session's current status does not allow the action; names both."""

    code = "invalid_transition"

    def __init__(
        self, session_id: str, *, status: str, action: str, allowed: Iterable[str]
    ) -> None:
        allowed_text = ", ".join(sorted(allowed))
        super().__init__(
            INVALID_TRANSITION.format(
                action=action, session_id=session_id, status=status, allowed=allowed_text
            ),
            session_id=session_id,
            status=status,
            action=action,
        )
        self.status = status
        self.action = action


class SessionNotRunning(Conflict):
    code = "session_not_running"

    def __init__(self, session_id: str, *, status: str, operation: str) -> None:
        super().__init__(
            NOT_RUNNING.format(session_id=session_id, status=status, operation=operation),
            session_id=session_id,
            status=status,
        )
        self.status = status


class VersionConflict(Conflict):
    code = "version_conflict"

    def __init__(self, session_id: str, *, current: int, expected: int) -> None:
        super().__init__(
            VERSION_CONFLICT.format(session_id=session_id, current=current, expected=expected),
            session_id=session_id,
            current=current,
            expected=expected,
        )


class InvalidSessionState(ValidationFailed):
    """A context or metrics update that does not fit SessionContext/SessionMetrics."""

    code = "invalid_session_state"


class InvalidSessionId(ValidationFailed):
    code = "invalid_session_id"

    def __init__(self, session_id: str) -> None:
        super().__init__(INVALID_SESSION_ID.format(session_id=session_id[:200]), field="session_id")


class EventBatchTooLarge(PayloadTooLarge):
    code = "event_batch_too_large"

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            EVENT_BATCH_TOO_LARGE.format(count=count, limit=limit), limit=limit, unit="events"
        )


class EventSessionUnknown(ValidationFailed):
    code = "unknown_session"

    def __init__(self, index: int, session_id: str) -> None:
        super().__init__(
            EVENT_SESSION_UNKNOWN.format(index=index, session_id=session_id),
            field=f"events.{index}.session_id",
        )


class EventInFuture(ValidationFailed):
    code = "event_in_future"

    def __init__(self, index: int, timestamp: str, seconds: int) -> None:
        super().__init__(
            EVENT_IN_FUTURE.format(index=index, timestamp=timestamp, seconds=seconds),
            field=f"events.{index}.timestamp",
        )


class EventTooOld(ValidationFailed):
    code = "event_too_old"

    def __init__(self, index: int, timestamp: str, days: int) -> None:
        super().__init__(
            EVENT_TOO_OLD.format(index=index, timestamp=timestamp, days=days),
            field=f"events.{index}.timestamp",
        )


class ApprovalNotFound(NotFound):
    code = "approval_not_found"

    def __init__(self, approval_id: str) -> None:
        super().__init__(
            APPROVAL_NOT_FOUND.format(approval_id=approval_id), approval_id=approval_id
        )


class ApprovalNotPending(Conflict):
    """The approval was decided, expired or cancelled already; names its status."""

    code = "approval_not_pending"

    def __init__(self, approval_id: str, *, status: str, action: str) -> None:
        super().__init__(
            APPROVAL_NOT_PENDING.format(approval_id=approval_id, status=status, action=action),
            approval_id=approval_id,
            status=status,
            action=action,
        )
        self.status = status


class InvalidApproval(ValidationFailed):
    """A request or decision that does not fit: too few or repeated options, a decision
    or default decision that is not an option, a deadline without a default."""

    code = "invalid_approval"
