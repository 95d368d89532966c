"""Request and response shapes of the schedules API, one per operation."""

import zoneinfo
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from ninja import Field, Schema
from pydantic import ConfigDict, WithJsonSchema

from access.inputs import NOT_BLANK, InputSchema
from kernel.encoding import IsoDateTime, LocalTime
from scheduling.models import (
    EXECUTOR_PATTERN,
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
from sessions.schemas import CountersIn, EventIn, Increment

# Checked by the service (422 invalid_timezone); documented as the names of the server's
# tz database.
TimezoneName = Annotated[
    str, WithJsonSchema({"type": "string", "enum": sorted(zoneinfo.available_timezones())})
]

# Checked by the service (422 invalid_executor); documented here.
ExecutorText = Annotated[
    str, WithJsonSchema({"type": "string", "maxLength": 70, "pattern": EXECUTOR_PATTERN})
]


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
    timezone: TimezoneName | None = Field(
        default=None, max_length=64, description="IANA name; default UTC."
    )
    priority: SchedulePriority | None = None
    max_retries: int | None = Field(default=None, ge=0, le=20)
    retry_delay_minutes: int | None = Field(default=None, ge=0, le=7 * 24 * 60)
    overlap_policy: OverlapPolicy | None = None
    catch_up_window_minutes: int | None = Field(default=None, ge=0, le=7 * 24 * 60)
    account_filter: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    executor: ExecutorText | None = Field(
        default=None,
        description='"worker" (the in-process runner, the default) or "queue:<name>": '
        "agents take the batches from that work queue (/api/v1/work).",
    )


def _needs(types: list[ScheduleType], field: str, schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema: a schedule of one of ``types`` gives ``field`` (not null)."""
    return {
        "if": {"properties": {"schedule_type": {"enum": types}}, "required": ["schedule_type"]},
        "then": {"properties": {field: schema}, "required": [field]},
    }


# What each type of schedule needs (scheduling.recurrence.Recurrence.validate), stated in
# the schema of a create; an update is checked against the review it changes.
_FIELDS_BY_TYPE = {
    "allOf": [
        _needs(
            [ScheduleType.DAILY, ScheduleType.WEEKLY, ScheduleType.BIWEEKLY, ScheduleType.MONTHLY],
            "time_of_day",
            {"type": "string"},
        ),
        _needs([ScheduleType.WEEKLY, ScheduleType.BIWEEKLY], "weekday", {"type": "integer"}),
        _needs([ScheduleType.MONTHLY], "day_of_month", {"type": "integer"}),
        _needs([ScheduleType.CRON], "cron_expression", {"type": "string"}),
        _needs([ScheduleType.INTERVAL], "interval_minutes", {"type": "integer"}),
        _needs([ScheduleType.ONE_TIME], "scheduled_time", {"type": "string"}),
    ]
}


class ScheduleCreateIn(_ScheduleFields):
    model_config = ConfigDict(json_schema_extra=_FIELDS_BY_TYPE)

    # Not blank: the service strips them (NOT_BLANK).
    name: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK)
    owner_id: str = Field(min_length=1, max_length=128, pattern=NOT_BLANK)
    schedule_type: ScheduleType


def _null_only_where_the_model_allows(schema: dict[str, Any], model: type) -> None:
    """A changed field may be null only where the review's column may: the service refuses
    the others ("leave it out to keep it"), so the schema does not offer null for them."""
    for name, field_schema in schema.get("properties", {}).items():
        if ScheduledReview._meta.get_field(name).null:
            continue
        branches = [b for b in field_schema.pop("anyOf", []) if b != {"type": "null"}]
        if len(branches) == 1:
            field_schema.update(branches[0])
        elif branches:
            field_schema["anyOf"] = branches


class ScheduleUpdateIn(_ScheduleFields):
    model_config = ConfigDict(json_schema_extra=_null_only_where_the_model_allows)

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NOT_BLANK)
    owner_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=NOT_BLANK)
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


class WorkCountersIn(CountersIn):
    api_call_count: Increment | None = None
    cache_hits: Increment | None = None
    cache_misses: Increment | None = None


class CompleteIn(InputSchema):
    token: UUID = Field(description="The lease_token of the claim.")
    results: list[AccountResult] = Field(
        min_length=1, max_length=10_000, description="Exactly one per account of the batch."
    )
    events: list[EventIn] = Field(
        default_factory=list,
        description="Tool and task events, as for POST /events; session_id may be left out.",
    )
    metrics: WorkCountersIn = Field(
        default_factory=WorkCountersIn,
        description="Session metric counters the results do not give (token usage, errors "
        "and durations are summed from them).",
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
