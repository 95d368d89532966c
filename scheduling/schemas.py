"""Request and response shapes of the schedules API, one per operation."""

from datetime import datetime
from typing import Any
from uuid import UUID

from ninja import Field, Schema

from scheduling.models import (
    ExecutionStatus,
    ExecutionTrigger,
    OverlapPolicy,
    ScheduledReview,
    SchedulePriority,
    ScheduleType,
)
from scheduling.recurrence import MAX_INTERVAL_MINUTES, Recurrence, describe
from sergas.encoding import IsoDateTime, LocalTime
from sergas.inputs import InputSchema


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
