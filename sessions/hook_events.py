"""A tool or task event of the orchestrator hooks (``pre_tool``, ``post_tool``,
``pre_task``, ``post_task``), as the audit trail records it: one row per event
(event_type ``tool``/``task``, action the hook name, resource ``tool:<name>``/
``task:<name>``, actor the agent).

Recorded by ``sessions.services.hook_events_record``, whether reported by a remote agent
(``POST /api/v1/events``) or by code inside the project (``sessions.hooks``).
"""

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from audit.models import AuditEventType
from sessions.models import HookName

# The audit event_type of each tool and task hook.
KIND = {
    HookName.PRE_TOOL: AuditEventType.TOOL,
    HookName.POST_TOOL: AuditEventType.TOOL,
    HookName.PRE_TASK: AuditEventType.TASK,
    HookName.POST_TASK: AuditEventType.TASK,
}
# Label values stay short and printable: error types and names come from agents.
_UNSAFE_LABEL = re.compile(r"[^A-Za-z0-9_.:/-]+")
ERROR_MESSAGE_LIMIT = 1000


def error_type_of(error: BaseException | str | None) -> str | None:
    """The ``error_type`` label of an error: its class name, or a reported type name."""
    if error is None:
        return None
    name = type(error).__name__ if isinstance(error, BaseException) else str(error)
    return _UNSAFE_LABEL.sub("_", name)[:64] or "Error"


@dataclass(frozen=True)
class HookEvent:
    """One tool or task event, as recorded in the audit trail."""

    hook: HookName
    name: str  # the tool name or task type
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    timestamp: datetime = field(default_factory=timezone.now)
    session_id: str | None = None
    invocation_id: uuid.UUID | None = None  # pairs a post_* with its pre_*
    duration_seconds: float | None = None  # post_* only
    error_type: str | None = None
    error_message: str | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def audit_row(self, *, agent_name: str, actor: str) -> dict[str, Any]:
        """The ``AuditEvent`` fields of this event (for ``audit_events_record_many``)."""
        details = {
            "agent": agent_name,
            "name": self.name,
            "invocation_id": str(self.invocation_id) if self.invocation_id else None,
            "duration_ms": (
                round(self.duration_seconds * 1000, 3)
                if self.duration_seconds is not None
                else None
            ),
            "error_type": self.error_type,
            "error": self.error_message[:ERROR_MESSAGE_LIMIT] if self.error_message else None,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
        }
        kind = KIND[self.hook]
        return {
            "event_id": self.event_id,
            "timestamp": self.timestamp,
            "session_id": self.session_id,
            "event_type": kind,
            "action": self.hook,
            "actor": actor,
            "resource": f"{kind}:{self.name}",
            # The agent's own keys first: ours win, and containment search finds both.
            "metadata": {**self.metadata, **{k: v for k, v in details.items() if v is not None}},
        }


@dataclass(frozen=True)
class RecordedEvents:
    recorded: list[uuid.UUID]
    duplicates: list[uuid.UUID]
