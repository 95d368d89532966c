"""What the API answers, as typed values."""

import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal


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
class ApprovalNotice:
    """An approval a heartbeat mentions: open, or decided and not read yet."""

    approval_id: str
    status: str
    decision: str | None
    comment: str
    decided_at: str | None


@dataclass(frozen=True)
class Heartbeat:
    status: str
    recorded: bool
    # The session's open approvals and the outcomes not read yet (``wait_for_approval``
    # or ``get_approval`` reads one).
    approvals: tuple[ApprovalNotice, ...] = ()

    @property
    def should_stop(self) -> bool:
        """Staff paused or cancelled the session (or it ended): stop working on it."""
        return self.status != "running"


ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "cancelled"]


@dataclass(frozen=True)
class Approval:
    """A question to staff (docs/api.md, "Approvals"). ``decision`` is the option that
    applies: the operator's (approved) or the default (expired); None while pending and
    when rejected (do not go ahead) or cancelled (the session ended)."""

    approval_id: str
    session_id: str
    status: ApprovalStatus
    question: str
    options: list[str]
    payload: dict[str, Any]
    decision: str | None
    comment: str
    requested_by: str
    requested_at: str
    deadline: str | None
    default_decision: str | None
    decided_by: str
    decided_at: str | None

    @property
    def pending(self) -> bool:
        return self.status == "pending"

    @property
    def approved(self) -> bool:
        """An option applies (an operator's, or the default at the deadline)."""
        return self.decision is not None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Approval":
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class EventsResult:
    received: int
    recorded: int
    duplicates: int
    duplicate_event_ids: list[str]


# --- results, times ------------------------------------------------------------------------
Outcome = Literal["reviewed", "failed", "skipped"]
Priority = Literal["critical", "high", "medium", "low"]


def _datetime(value: str) -> datetime:
    # fromisoformat reads a trailing "Z" from Python 3.11 on.
    return datetime.fromisoformat(value)


def _maybe_datetime(value: str | None) -> datetime | None:
    return None if value is None else _datetime(value)


# --- schedules ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """A scheduled review (``/schedules``); every field the API sent is in ``raw``."""

    id: int
    name: str
    owner_id: str
    schedule_type: str
    description: str
    timezone: str
    priority: str
    enabled: bool
    executor: str
    paused_note: str
    next_run_at: datetime | None
    last_run_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Schedule":
        return cls(
            id=data["id"],
            name=data["name"],
            owner_id=data["owner_id"],
            schedule_type=data["schedule_type"],
            description=data["description"],
            timezone=data["timezone"],
            priority=data["priority"],
            enabled=data["enabled"],
            executor=data["executor"],
            paused_note=data["paused_note"],
            next_run_at=_maybe_datetime(data.get("next_run_at")),
            last_run_at=_maybe_datetime(data.get("last_run_at")),
            raw=data,
        )


@dataclass(frozen=True)
class Execution:
    """One attempt of a review's run (a trigger's answer, a row of the run history)."""

    id: str
    review_id: int | None
    review_name: str
    nominal_time: datetime
    attempt: int
    trigger: str
    status: str
    priority: str
    executor: str
    session_id: str | None
    accounts_processed: int
    accounts_failed: int
    error: str
    replayed: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool = False) -> "Execution":
        return cls(
            id=str(data["id"]),
            review_id=data["review_id"],
            review_name=data["review_name"],
            nominal_time=_datetime(data["nominal_time"]),
            attempt=data["attempt"],
            trigger=data["trigger"],
            status=data["status"],
            priority=data["priority"],
            executor=data["executor"],
            session_id=data.get("session_id"),
            accounts_processed=data["accounts_processed"],
            accounts_failed=data["accounts_failed"],
            error=data["error"],
            replayed=replayed,
            raw=data,
        )


# --- leases of the work queue -------------------------------------------------------------
@dataclass(frozen=True)
class LeasedRun:
    """The run a leased batch belongs to."""

    execution_id: str
    review_id: int | None
    review_name: str
    nominal_time: datetime
    attempt: int
    trigger: str
    priority: str
    metadata: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LeasedRun":
        return cls(
            execution_id=str(data["execution_id"]),
            review_id=data["review_id"],
            review_name=data["review_name"],
            nominal_time=_datetime(data["nominal_time"]),
            attempt=data["attempt"],
            trigger=data["trigger"],
            priority=data["priority"],
            metadata=data.get("metadata") or {},
        )


class _LeaseSignals:
    """Whether the holder should stop working on a lease, and why; shared by threads."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lost_reason: str | None = None
        self._lock = threading.Lock()

    def mark_lost(self, reason: str) -> None:
        with self._lock:
            if self.lost_reason is None:
                self.lost_reason = reason
        self.stop.set()


@dataclass(frozen=True, eq=False)
class Lease:
    """A batch leased from a work queue (``POST /work/claim``), and the live state of the
    lease: ``should_stop`` turns true when the lease is lost (``lost_reason`` says why,
    as the API's ``409 lease_lost`` did) or when its holder was asked to stop."""

    batch_id: int
    lease_token: str
    lease_expires_at: datetime
    lease_seconds: int
    heartbeat_seconds: int
    queue: str
    batch_index: int
    batch_count: int
    attempt: int
    session_id: str
    account_ids: list[str]
    run: LeasedRun
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    _signals: _LeaseSignals = field(default_factory=_LeaseSignals, init=False, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Lease":
        return cls(
            batch_id=data["batch_id"],
            lease_token=str(data["lease_token"]),
            lease_expires_at=_datetime(data["lease_expires_at"]),
            lease_seconds=data["lease_seconds"],
            heartbeat_seconds=data["heartbeat_seconds"],
            queue=data["queue"],
            batch_index=data["batch_index"],
            batch_count=data["batch_count"],
            attempt=data["attempt"],
            session_id=data["session_id"],
            account_ids=list(data["account_ids"]),
            run=LeasedRun.from_json(data["run"]),
            raw=data,
        )

    @property
    def lost(self) -> bool:
        """The API said the lease no longer holds: its results would be refused."""
        return self._signals.lost_reason is not None

    @property
    def lost_reason(self) -> str | None:
        """taken_over, lease_expired, run_cancelled, session_paused, session_stopped, ..."""
        return self._signals.lost_reason

    @property
    def should_stop(self) -> bool:
        """Lost, or its holder is stopping: finish up or give up now."""
        return self._signals.stop.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early when the work should stop;
        returns ``should_stop``."""
        return self._signals.stop.wait(max(0.0, timeout))

    def mark_lost(self, reason: str) -> None:
        """Record that the lease no longer holds (the first reason is kept)."""
        self._signals.mark_lost(reason)

    def request_stop(self) -> None:
        """Ask whoever works on the lease to stop early (the lease itself still holds)."""
        self._signals.stop.set()


@dataclass(frozen=True)
class LeaseRenewal:
    batch_id: int
    lease_expires_at: datetime
    lease_seconds: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LeaseRenewal":
        return cls(
            batch_id=data["batch_id"],
            lease_expires_at=_datetime(data["lease_expires_at"]),
            lease_seconds=data["lease_seconds"],
        )


@dataclass(frozen=True)
class CompletedBatch:
    """The answer to a complete; ``replayed``: a retry, answered as the first time."""

    batch_id: int
    status: str
    results: int
    outcomes: dict[str, int]
    recommendations: int
    events_recorded: int
    events_duplicates: int
    replayed: bool = False


@dataclass(frozen=True)
class BatchState:
    """A batch after a fail or a release: ``status`` pending (back in the queue) or
    failed; ``attempt`` counts the attempts made so far."""

    batch_id: int
    status: str
    attempt: int
    attempts_left: int


@dataclass(frozen=True)
class Recommendation:
    """One recommendation for an account executive; ``kind`` is lower-case
    (upsell, renewal_risk, follow_up, data_quality, ...)."""

    kind: str
    title: str
    detail: str = ""
    priority: Priority = "medium"
    confidence: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "detail": self.detail,
            "priority": self.priority,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class AccountResult:
    """What a review found for one account of a batch: a complete sends exactly one per
    account. ``AccountResult.reviewed(...)``, ``.failed(...)`` and ``.skipped(...)``
    build the usual ones."""

    account_id: str
    outcome: Outcome
    recommendations: list[Recommendation] = field(default_factory=list)
    error: str = ""
    duration_ms: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: Decimal | str | None = None

    @classmethod
    def reviewed(
        cls, account_id: str, recommendations: list[Recommendation] | None = None, **usage: Any
    ) -> "AccountResult":
        return cls(account_id, "reviewed", list(recommendations or []), **usage)

    @classmethod
    def failed(cls, account_id: str, error: str, **usage: Any) -> "AccountResult":
        return cls(account_id, "failed", error=error, **usage)

    @classmethod
    def skipped(cls, account_id: str, **usage: Any) -> "AccountResult":
        return cls(account_id, "skipped", **usage)

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "outcome": self.outcome,
            "recommendations": [item.to_json() for item in self.recommendations],
            "error": self.error,
            "duration_ms": self.duration_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            # A string keeps every decimal digit; a float would not.
            "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
        }
