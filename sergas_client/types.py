"""What the API answers, as typed values."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Session:
    session_id: str
    status: str
    version: int
    session_type: str
    orchestrator_id: str
    owner_id: str
    error_message: str
    allowed_actions: list[str]
    recovery_count: int
    recovered_from_sequence: int | None
    last_checkpoint_sequence: int
    summary: dict[str, Any] | None
    # Present on create and detail (and recover with include_state); None elsewhere.
    context: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    account_ids: list[str] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Session":
        return cls(
            session_id=data["session_id"],
            status=data["status"],
            version=data["version"],
            session_type=data["session_type"],
            orchestrator_id=data["orchestrator_id"],
            owner_id=data["owner_id"],
            error_message=data["error_message"],
            allowed_actions=data["allowed_actions"],
            recovery_count=data["recovery_count"],
            recovered_from_sequence=data["recovered_from_sequence"],
            last_checkpoint_sequence=data["last_checkpoint_sequence"],
            summary=data.get("summary"),
            context=data.get("context"),
            metrics=data.get("metrics"),
            account_ids=data.get("account_ids"),
            raw=data,
        )


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    status: str
    size_bytes: int
    created_at: str


@dataclass(frozen=True)
class Heartbeat:
    status: str
    recorded: bool

    @property
    def should_stop(self) -> bool:
        """Staff paused or cancelled the session (or it ended): stop working on it."""
        return self.status != "running"


@dataclass(frozen=True)
class EventsResult:
    received: int
    recorded: int
    duplicates: int
    duplicate_event_ids: list[str]
