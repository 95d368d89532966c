"""Request and response shapes of the sessions API, one per operation."""

import copy
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from kernel.encoding import IsoDateTime
from kernel.schemas import NOT_BLANK, InputSchema, JsonObjectQuery
from sessions.hook_events import HookEvent, error_type_of
from sessions.models import ApprovalStatus, HookName, SessionStatus, SessionType
from sessions.services.approvals import OPTION_MAX_LENGTH, OPTIONS_MAX, QUESTION_MAX_LENGTH
from sessions.services.lifecycle import SESSION_ID_PATTERN
from sessions.transitions import allowed_actions

NAME_PATTERN = r"^[A-Za-z0-9_.:/-]{1,64}$"
# Counters and versions are PostgreSQL bigints.
BIGINT_MAX = 2**63 - 1


# What a client may write into a context, as ``sessions.state.SessionContext`` reads it:
# the known keys typed, any other key kept in ``metadata``.
_ACCOUNTS = {"type": "array", "items": {"type": "string"}}
_COUNT = {"type": "integer", "minimum": 0}
CONTEXT_CHANGES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "account_ids": _ACCOUNTS,
        "owner_id": {"anyOf": [{"type": "string", "maxLength": 128}, {"type": "null"}]},
        "current_batch": _COUNT,
        "total_batches": _COUNT,
        "recommendations_count": _COUNT,
        "processed_accounts": _ACCOUNTS,
        "failed_accounts": _ACCOUNTS,
        "metadata": {"type": "object"},
        "checkpoint_timestamp": {
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]
        },
    },
    "additionalProperties": True,
}
ContextChanges = Annotated[dict[str, Any], WithJsonSchema(CONTEXT_CHANGES_SCHEMA)]

# Checked by the service (422 invalid_session_id); documented here.
SessionIdText = Annotated[str, WithJsonSchema({"type": "string", "pattern": SESSION_ID_PATTERN})]

# Account ids are stored in columns of 128 characters.
AccountId = Annotated[str, Field(min_length=1, max_length=128)]


class SessionCreateIn(InputSchema):
    # Not blank: the service strips it (NOT_BLANK).
    orchestrator_id: str = Field(min_length=1, max_length=128, pattern=NOT_BLANK)
    session_type: SessionType = SessionType.MANUAL
    account_ids: list[AccountId] | None = None
    owner_id: str | None = Field(default=None, max_length=128)
    context: ContextChanges | None = None
    session_id: SessionIdText | None = Field(
        default=None, description="Your own id (UUID or session_<orchestrator>_<hex>)."
    )


class SessionOut(BaseModel):
    """A session without its context and metrics: cheap to list and to return from
    every action, whatever the size of the context.

    A plain pydantic model read from the row's attributes by pydantic-core: a page of 50
    sessions serialises about six times faster than through ninja's ``Schema`` (whose
    per-attribute resolver dominated the session list's profile)."""

    model_config = ConfigDict(from_attributes=True)

    session_id: str
    orchestrator_id: str
    status: SessionStatus
    session_type: SessionType
    owner_id: str
    version: int
    error_message: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    paused_at: datetime | None
    finished_at: datetime | None
    last_heartbeat_at: datetime | None
    last_checkpoint_sequence: int
    recovery_count: int
    recovered_from_sequence: int | None
    archived_at: datetime | None
    summary: dict[str, Any] | None
    allowed_actions: list[str] = Field(
        default_factory=list, description="Actions the current status allows."
    )

    @model_validator(mode="after")
    def _allowed_actions(self) -> "SessionOut":
        self.allowed_actions = [action.value for action in allowed_actions(self.status)]
        return self


class SessionDetailOut(SessionOut):
    account_ids: list[str]
    context: dict[str, Any]
    metrics: dict[str, Any]


class RecoveryOut(SessionOut):
    """The recovered session; context and metrics only when asked (``include_state``)."""

    context: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None


class SessionPageOut(Schema):
    items: list[SessionOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


class SessionFilters(Schema):
    status: list[SessionStatus] = Field(default_factory=list)
    session_type: SessionType | None = None
    owner_id: str | None = None
    orchestrator_id: str | None = None
    account_id: str | None = Field(default=None, description="Sessions whose accounts include it.")
    created_after: IsoDateTime | None = None
    created_before: IsoDateTime | None = None
    context: JsonObjectQuery | None = Field(
        default=None,
        description="Sessions whose context contains this JSON object, e.g. "
        '{"metadata": {"region": "emea"}} (URL-encoded); the account sets are not searched '
        "here (use account_id).",
    )
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


class VersionIn(InputSchema):
    expected_version: int | None = Field(
        default=None,
        ge=1,
        le=BIGINT_MAX,
        description="Refuse with 409 unless the session is at this version.",
    )


class ReasonIn(VersionIn):
    reason: str = Field(default="", max_length=1000)


class FailIn(VersionIn):
    error: str = Field(min_length=1, max_length=10_000)


Increment = Annotated[int, Field(ge=0, le=BIGINT_MAX)]


class CountersIn(InputSchema):
    """Named counters, each optional: only those given change."""

    model_config = ConfigDict(extra="forbid")

    def given(self) -> dict[str, int]:
        return self.model_dump(exclude_none=True)


class ContextIncrementsIn(CountersIn):
    current_batch: Increment | None = None
    total_batches: Increment | None = None
    recommendations_count: Increment | None = None


class ContextIn(VersionIn):
    changes: ContextChanges = Field(
        default_factory=dict,
        description="Merged into the context: account sets grow, metadata merges by key.",
    )
    increments: ContextIncrementsIn | None = Field(
        default=None,
        description="Added to the context's counters: concurrent agents lose nothing (no "
        "If-Match needed). A counter also named in changes takes the value given there.",
    )


class MetricCountersIn(CountersIn):
    total_duration_ms: Increment | None = None
    api_call_count: Increment | None = None
    cache_hits: Increment | None = None
    cache_misses: Increment | None = None
    token_usage: Increment | None = None
    error_count: Increment | None = None
    input_tokens: Increment | None = None
    output_tokens: Increment | None = None


class MetricsIn(InputSchema):
    counters: MetricCountersIn = Field(
        default_factory=MetricCountersIn, description="Added to the session's metric counters."
    )
    processing_times_ms: list[Annotated[int, Field(ge=0, le=BIGINT_MAX)]] = Field(
        default_factory=list
    )


class ApprovalNoticeOut(Schema):
    approval_id: uuid.UUID
    status: ApprovalStatus
    decision: str | None
    comment: str
    decided_at: datetime | None


class HeartbeatOut(Schema):
    status: SessionStatus
    recorded: bool
    at: datetime | None
    approvals: list[ApprovalNoticeOut] = Field(
        default_factory=list,
        description="The session's open approvals and the outcomes the agent has not "
        "read yet (GET /approvals/{id} reads one), oldest first.",
    )


class CheckpointIn(InputSchema):
    context_changes: ContextChanges = Field(default_factory=dict)


class CheckpointOut(Schema):
    sequence: int
    status: SessionStatus
    size_bytes: int
    created_at: datetime


# The event schemas are plain pydantic models: ninja's Schema wraps every nested object for
# ORM attribute access, which costs more than the rest of a 1,000-event batch.
class EventErrorIn(BaseModel):
    type: str = Field(min_length=1, max_length=200, description="e.g. the exception class")
    message: str = Field(default="", max_length=10_000)


def _post_events_carry_their_duration(schema: dict[str, Any], model: type) -> None:
    """The event's schema as two shapes, a pre_* and a post_* event, the second with its
    ``duration_ms`` required (the validator below), so that a schema says it too."""
    shapes = []
    for hooks, duration_required in (
        ([HookName.PRE_TOOL, HookName.PRE_TASK], False),
        ([HookName.POST_TOOL, HookName.POST_TASK], True),
    ):
        shape = copy.deepcopy(schema)
        shape["properties"]["hook"] = {"type": "string", "enum": [str(hook) for hook in hooks]}
        if duration_required:
            shape["properties"]["duration_ms"] = {"type": "number", "minimum": 0}
            shape["required"] = [*shape.get("required", []), "duration_ms"]
        shapes.append(shape)
    title = schema.get("title")
    schema.clear()
    schema.update({"title": title, "anyOf": shapes})


class EventIn(BaseModel):
    model_config = ConfigDict(json_schema_extra=_post_events_carry_their_duration)

    event_id: uuid.UUID = Field(description="Chosen by the agent; a replay is skipped.")
    hook: Literal[HookName.PRE_TOOL, HookName.POST_TOOL, HookName.PRE_TASK, HookName.POST_TASK]
    name: str = Field(pattern=NAME_PATTERN, description="Tool name or task type.")
    timestamp: IsoDateTime = Field(description="When it happened, stamped by the agent.")
    session_id: str | None = None
    invocation_id: uuid.UUID | None = Field(
        default=None, description="On post_*: the event_id of the matching pre_*."
    )
    duration_ms: float | None = Field(
        default=None, ge=0, validate_default=True, description="Required on post_*."
    )
    error: EventErrorIn | None = None
    input_bytes: int | None = Field(default=None, ge=0)
    output_bytes: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a timezone, e.g. 2026-01-31T09:00:00Z")
        return value

    @field_validator("duration_ms")
    @classmethod
    def _required_on_post(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None and info.data.get("hook") in (HookName.POST_TOOL, HookName.POST_TASK):
            raise ValueError("required on post_tool and post_task")
        return value

    def to_hook_event(self) -> HookEvent:
        return HookEvent(
            hook=HookName(self.hook),
            name=self.name,
            event_id=self.event_id,
            timestamp=self.timestamp,
            session_id=self.session_id,
            invocation_id=self.invocation_id,
            duration_seconds=self.duration_ms / 1000 if self.duration_ms is not None else None,
            error_type=error_type_of(self.error.type) if self.error else None,
            error_message=self.error.message if self.error else None,
            input_bytes=self.input_bytes,
            output_bytes=self.output_bytes,
            metadata=self.metadata,
        )


class EventBatchIn(BaseModel):
    events: list[EventIn] = Field(min_length=1)


class EventBatchOut(Schema):
    received: int
    recorded: int
    duplicates: int
    duplicate_event_ids: list[uuid.UUID]


# Approvals (docs/api.md, "Approvals").
OptionText = Annotated[str, Field(min_length=1, max_length=OPTION_MAX_LENGTH, pattern=NOT_BLANK)]


def _deadline_needs_default(schema: dict[str, Any], model: type) -> None:
    """A deadline comes with its default decision; both are left out rather than null."""
    schema["dependentRequired"] = {"deadline": ["default_decision"]}
    for name in ("deadline", "default_decision"):
        field_schema = schema["properties"][name]
        branches = [b for b in field_schema.pop("anyOf", []) if b != {"type": "null"}]
        field_schema.update(branches[0])
        field_schema.pop("default", None)


class ApprovalCreateIn(InputSchema):
    """A question for staff. Rules only the server can decide (``invalid_approval``):
    the default decision is one of the options, the deadline is in the future."""

    model_config = ConfigDict(json_schema_extra=_deadline_needs_default)

    # Not blank: the service strips it (NOT_BLANK).
    question: str = Field(min_length=1, max_length=QUESTION_MAX_LENGTH, pattern=NOT_BLANK)
    options: list[OptionText] = Field(
        min_length=2,
        max_length=OPTIONS_MAX,
        json_schema_extra={"uniqueItems": True},
        description="The possible answers; an operator approves with one of them.",
    )
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="What staff are shown to decide on: a recommendation, an email draft.",
    )
    deadline: IsoDateTime | None = Field(
        default=None,
        description="When the default decision applies if nobody decided (needs one).",
    )
    default_decision: OptionText | None = Field(default=None, description="One of the options.")

    @model_validator(mode="before")
    @classmethod
    def _leave_out_rather_than_null(cls, data: Any) -> Any:
        given = data._obj if hasattr(data, "_obj") else data
        if isinstance(given, dict):
            for name in ("deadline", "default_decision"):
                if name in given and given[name] is None:
                    raise ValueError(f"{name}: leave it out rather than send null")
        return data


class ApprovalOut(Schema):
    approval_id: uuid.UUID
    session_id: str
    question: str
    options: list[str]
    payload: dict[str, Any]
    status: ApprovalStatus
    decision: str | None = Field(
        description="The option that applies: the operator's (approved) or the default "
        "(expired); null while pending, and when rejected or cancelled."
    )
    comment: str
    requested_by: str
    requested_at: datetime
    deadline: datetime | None
    default_decision: str | None
    decided_by: str
    decided_at: datetime | None
