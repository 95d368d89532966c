"""Request and response shapes of the schedules API, one per operation."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ninja import Field, Schema

from scheduling.models import (
    QUEUE_NAME_PATTERN,
    BatchStatus,
    ExecutionStatus,
    ExecutionTrigger,
    OverlapPolicy,
    ResultOutcome,
    ScheduledReview,
    SchedulePriority,
    ScheduleType,
)
from scheduling.recurrence import MAX_INTERVAL_MINUTES, Recurrence, describe
from scheduling.results import AccountResult
from sergas.encoding import IsoDateTime, LocalTime
from sergas.inputs import InputSchema
from sessions.schemas import EventIn


class _ScheduleFields(InputSchema):
    """Every editable field; validation beyond types is the services' (422 with the field)."""

    time_of_day: LocalTime | None = Field(default=None, description="Presets: local time, HH:MM.")
    weekday: int | None = Field(
        default=None, ge=0, le=6, description="Weekly/biweekly: 0 = Monday."
    )
    day_of_month: int | None = Field(
        default=None, ge=1, le=31, description="Monthly: 1-31 (clamped)."
    )
    cron_expression: str | None = Field(default=None, max_length=200)
    interval_minutes: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_MINUTES)
    scheduled_time: IsoDateTime | None = Field(default=None, description="One-time.")
    starts_at: IsoDateTime | None = Field(default=None, description="Interval/biweekly anchor.")
    timezone: str | None = Field(default=None, max_length=64, description="IANA name; default UTC.")
    priority: SchedulePriority | None = None
    max_retries: int | None = Field(default=None, ge=0, le=20)
    retry_delay_minutes: int | None = Field(default=None, ge=0, le=7 * 24 * 60)
    overlap_policy: OverlapPolicy | None = None
    catch_up_window_minutes: int | None = Field(default=None, ge=0, le=7 * 24 * 60)
    account_filter: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    executor: str | None = Field(
        default=None,
        max_length=70,
        description='"worker" (the in-process runner, the default) or "queue:<name>": '
        "agents take the batches from that work queue (/api/v1/work).",
    )


class ScheduleCreateIn(_ScheduleFields):
    name: str = Field(min_length=1, max_length=200)
    owner_id: str = Field(min_length=1, max_length=128)
    schedule_type: ScheduleType


class ScheduleUpdateIn(_ScheduleFields):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    owner_id: str | None = Field(default=None, min_length=1, max_length=128)
    schedule_type: ScheduleType | None = None


class PauseIn(InputSchema):
    note: str = Field(default="", max_length=2000, description="Why; shown to staff.")


class ScheduleOut(Schema):
    id: int
    name: str
    owner_id: str
    schedule_type: ScheduleType
    description: str = Field(description="The schedule in words.")
    time_of_day: LocalTime | None
    weekday: int | None
    day_of_month: int | None
    cron_expression: str
    interval_minutes: int | None
    scheduled_time: datetime | None
    starts_at: datetime | None
    timezone: str
    priority: SchedulePriority
    enabled: bool
    max_retries: int
    retry_delay_minutes: int
    overlap_policy: OverlapPolicy
    catch_up_window_minutes: int
    account_filter: dict[str, Any]
    metadata: dict[str, Any]
    executor: str
    paused_note: str
    paused_at: datetime | None
    last_run_at: datetime | None
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_description(obj: ScheduledReview) -> str:
        return describe(Recurrence.of(obj))


class SchedulePageOut(Schema):
    items: list[ScheduleOut]
    next_cursor: str | None


class NextRunsOut(Schema):
    timezone: str
    runs: list[datetime] = Field(description="UTC.")
    local: list[str] = Field(description="The same times in the review's timezone.")


class ExecutionOut(Schema):
    id: UUID
    review_id: int | None
    review_name: str
    nominal_time: datetime
    attempt: int
    trigger: ExecutionTrigger
    status: ExecutionStatus
    priority: SchedulePriority
    executor: str
    due_at: datetime | None
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    start_lag_ms: int | None
    duration_ms: int | None
    session_id: str | None
    accounts_processed: int
    accounts_failed: int
    error: str


class ExecutionPageOut(Schema):
    items: list[ExecutionOut]
    next_cursor: str | None


class ScheduleFilters(Schema):
    owner_id: str | None = None
    enabled: bool | None = None
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


class ExecutionFilters(Schema):
    status: list[ExecutionStatus] = Field(default_factory=list)
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


# --- runs' results -------------------------------------------------------------------------


class RecommendationOut(Schema):
    kind: str
    title: str
    detail: str
    priority: SchedulePriority
    confidence: float | None


class AccountReviewOut(Schema):
    execution_id: UUID
    review_id: int | None
    session_id: str
    batch_id: int | None
    account_id: str
    outcome: ResultOutcome
    recommendations: list[RecommendationOut]
    error: str
    duration_ms: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None
    agent: str
    recorded_at: datetime


class AccountReviewPageOut(Schema):
    items: list[AccountReviewOut]
    next_cursor: str | None


class AccountHistoryItemOut(AccountReviewOut):
    review_name: str = Field(description="The review's name when the run was made.")
    nominal_time: datetime
    attempt: int

    @staticmethod
    def resolve_review_name(obj: Any) -> str:
        return obj.execution.review_name

    @staticmethod
    def resolve_nominal_time(obj: Any) -> datetime:
        return obj.execution.nominal_time

    @staticmethod
    def resolve_attempt(obj: Any) -> int:
        return obj.execution.attempt


class AccountHistoryPageOut(Schema):
    items: list[AccountHistoryItemOut]
    next_cursor: str | None


class ResultFilters(Schema):
    outcome: ResultOutcome | None = None
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


# --- the work queue ------------------------------------------------------------------------


class ClaimIn(InputSchema):
    queue: str = Field(pattern=f"^{QUEUE_NAME_PATTERN}$", description="The work queue's name.")
    wait_seconds: int = Field(
        default=0,
        ge=0,
        le=30,
        description="Long poll: how long to wait for work when the queue is empty (204 after).",
    )
    holder: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Who holds the lease, shown to staff (e.g. host:pid); default the agent.",
    )


class LeasedRunOut(Schema):
    execution_id: UUID
    review_id: int | None
    review_name: str
    nominal_time: datetime
    attempt: int
    trigger: ExecutionTrigger
    priority: SchedulePriority
    metadata: dict[str, Any] = Field(description="The review's metadata.")


class LeaseOut(Schema):
    batch_id: int
    lease_token: UUID = Field(description="Send it with every heartbeat, complete and fail.")
    lease_expires_at: datetime
    lease_seconds: int
    heartbeat_seconds: int = Field(description="Heartbeat at least this often.")
    queue: str
    batch_index: int
    batch_count: int
    attempt: int = Field(description="1 the first time the batch is leased.")
    session_id: str
    account_ids: list[str]
    run: LeasedRunOut


class LeaseTokenIn(InputSchema):
    token: UUID = Field(description="The lease_token of the claim.")


class HeartbeatLeaseOut(Schema):
    batch_id: int
    lease_expires_at: datetime
    lease_seconds: int


class CompleteIn(InputSchema):
    token: UUID = Field(description="The lease_token of the claim.")
    results: list[AccountResult] = Field(
        min_length=1, max_length=10_000, description="Exactly one per account of the batch."
    )
    events: list[EventIn] = Field(
        default_factory=list,
        description="Tool and task events, as for POST /events; session_id may be left out.",
    )
    metrics: dict[str, int] = Field(
        default_factory=dict,
        description="Other session metric counters: api_call_count, cache_hits, cache_misses.",
    )


class CompleteOut(Schema):
    batch_id: int
    status: str
    results: int
    outcomes: dict[str, int]
    recommendations: int
    events_recorded: int
    events_duplicates: int


class FailIn(InputSchema):
    token: UUID = Field(description="The lease_token of the claim.")
    error: str = Field(min_length=1, max_length=5000)
    retryable: bool = Field(
        default=True,
        description="True: the batch may be tried again (up to the attempts limit). False: "
        "the run fails (retried as a whole if its review allows).",
    )


class BatchStateOut(Schema):
    batch_id: int
    status: BatchStatus
    attempt: int = Field(description="Attempts made so far.")
    attempts_left: int
