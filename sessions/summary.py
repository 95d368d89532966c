"""``SessionSummary``: what a finished session did, stored on the row when it ends."""

from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from audit.models import AuditEventType
from audit.selectors import audit_session_event_counts
from sessions.models import AgentSession, HookName


class SessionSummary(BaseModel):
    status: str
    duration_seconds: float | None = None  # started -> finished; None if it never started
    events: dict[str, int] = Field(default_factory=dict)  # audit events by event_type
    tool_calls: int = 0  # finished tool invocations (post_tool)
    tool_errors: int = 0
    tasks: int = 0  # finished tasks (post_task)
    task_errors: int = 0
    errors_by_type: dict[str, int] = Field(default_factory=dict)
    recovery_count: int = 0

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def session_summary_compute(
    session: AgentSession, *, status: str, finished_at: datetime
) -> SessionSummary:
    """Summarise ``session``'s trail so far (one grouped query over its audit events)."""
    events: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    finished: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for row in audit_session_event_counts(session.session_id, since=session.created_at):
        events[row.event_type] += row.count
        if row.error_type:
            errors[row.error_type] += row.count
        if row.action in (HookName.POST_TOOL, HookName.POST_TASK):
            finished[row.event_type] += row.count
            if row.error_type:
                failed[row.event_type] += row.count
    started = session.started_at
    return SessionSummary(
        status=status,
        duration_seconds=(finished_at - started).total_seconds() if started else None,
        events=dict(sorted(events.items())),
        tool_calls=finished[AuditEventType.TOOL],
        tool_errors=failed[AuditEventType.TOOL],
        tasks=finished[AuditEventType.TASK],
        task_errors=failed[AuditEventType.TASK],
        errors_by_type=dict(errors.most_common()),
        recovery_count=session.recovery_count,
    )
