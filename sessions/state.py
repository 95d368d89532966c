"""The typed halves of a session's state: ``SessionContext`` and ``SessionMetrics``.

Both are stored as JSONB. These models validate what goes in and give the rest of the code
real types (sets stay sets); ``dump`` gives the canonical JSON form (sets as sorted lists).
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationError,
    field_serializer,
)

from sessions.exceptions import InvalidSessionState

M = TypeVar("M", bound=BaseModel)

# Fields kept out of the rows' JSON: they grow with the accounts (sessions.models).
ROW_EXCLUDED_CONTEXT = ("account_ids", "processed_accounts", "failed_accounts")
ROW_EXCLUDED_METRICS = "account_processing_times_ms"

# Releases before 2026-12 declared the counters' names without ``ClassVar``, so pydantic
# took them for a field: every stored context and metrics carries a "COUNTERS" key, and a
# client could replace it. Reads drop it; nothing writes it any more.
STALE_KEYS = frozenset({"COUNTERS"})


def without_stale_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in STALE_KEYS}


class SessionContext(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Both are kept in columns of 128 characters too (agent_session, its account index).
    account_ids: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list)
    owner_id: str | None = Field(default=None, max_length=128)
    current_batch: NonNegativeInt = 0
    total_batches: NonNegativeInt = 0
    processed_accounts: set[str] = Field(default_factory=set)
    failed_accounts: set[str] = Field(default_factory=set)
    recommendations_count: NonNegativeInt = 0
    metadata: dict[str, Any] = Field(default_factory=dict)
    checkpoint_timestamp: datetime | None = None

    @field_serializer("processed_accounts", "failed_accounts")
    def _sorted(self, value: set[str]) -> list[str]:
        return sorted(value)

    @classmethod
    def load(cls, data: dict[str, Any] | None) -> "SessionContext":
        return _validate(cls, data or {}, "context")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def dump_row(self) -> dict[str, Any]:
        """What the session row and a checkpoint row store: the small fields (the account
        list and sets are kept beside them, see ``sessions.models``)."""
        return self.model_dump(mode="json", exclude=set(ROW_EXCLUDED_CONTEXT))

    COUNTERS: ClassVar[frozenset[str]] = frozenset(
        {"current_batch", "total_batches", "recommendations_count"}
    )

    def merge(
        self, changes: dict[str, Any], increments: dict[str, int] | None = None
    ) -> "SessionContext":
        """Apply a partial update the way concurrent agents need it.

        Account sets only grow (a worker adds what it processed; nobody's additions are
        lost), an account that succeeds leaves ``failed_accounts``, ``metadata`` is merged
        key by key, unknown keys land in ``metadata``, and other fields are replaced.
        ``increments`` add to the counters (``current_batch``, ``total_batches``,
        ``recommendations_count``), so workers sharing a session never overwrite each
        other's counts.
        """
        known = set(type(self).model_fields)
        data = {name: getattr(self.model_copy(deep=True), name) for name in known}
        for name, amount in (increments or {}).items():
            if name not in self.COUNTERS:
                raise InvalidSessionState(
                    f"'{name}' is not a context counter; counters are "
                    f"{', '.join(sorted(self.COUNTERS))}",
                    field=name,
                )
            if not isinstance(amount, int) or isinstance(amount, bool):
                raise InvalidSessionState(f"'{name}' must change by a whole number", field=name)
            data[name] += amount
        extra = {key: value for key, value in changes.items() if key not in known}
        for key, value in changes.items():
            if key not in known:
                continue
            if key in {"processed_accounts", "failed_accounts"}:
                data[key] = data[key] | set(_validate_accounts(key, value))
            elif key == "metadata":
                if not isinstance(value, dict):
                    raise InvalidSessionState("metadata must be an object", field="metadata")
                data["metadata"] = {**data["metadata"], **value}
            else:
                data[key] = value
        data["metadata"] = {**data["metadata"], **extra}
        data["failed_accounts"] = data["failed_accounts"] - data["processed_accounts"]
        return _validate(type(self), data, "context")


class SessionMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    total_duration_ms: NonNegativeInt = 0
    account_processing_times_ms: list[NonNegativeInt] = Field(default_factory=list)
    api_call_count: NonNegativeInt = 0
    cache_hits: NonNegativeInt = 0
    cache_misses: NonNegativeInt = 0
    token_usage: NonNegativeInt = 0
    error_count: NonNegativeInt = 0
    # Model usage from the session's traces (traces app): tokens in and out, and their
    # cost by the price table. Rows stored before they existed read as 0.
    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cost_usd: Annotated[Decimal, Field(ge=0, decimal_places=6)] = Decimal(0)

    COUNTERS: ClassVar[frozenset[str]] = frozenset(
        {
            "total_duration_ms",
            "api_call_count",
            "cache_hits",
            "cache_misses",
            "token_usage",
            "error_count",
            "input_tokens",
            "output_tokens",
        }
    )

    @field_serializer("cost_usd")
    def _cost_text(self, value: Decimal) -> str:
        # A decimal string, exact (as AccountReview.cost_usd answers).
        return f"{value.quantize(Decimal('0.000001'))}"

    @classmethod
    def load(cls, data: dict[str, Any] | None) -> "SessionMetrics":
        return _validate(cls, data or {}, "metrics")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def dump_row(self) -> dict[str, Any]:
        """What the rows store: the counters (processing times are kept beside them)."""
        return self.model_dump(mode="json", exclude={ROW_EXCLUDED_METRICS})

    def increment(
        self,
        counters: dict[str, int],
        processing_times_ms: list[int] | None = None,
        *,
        cost_usd: Decimal | None = None,
    ) -> "SessionMetrics":
        """Add ``counters`` (and ``cost_usd``) and append ``processing_times_ms``."""
        data = self.model_copy(deep=True).__dict__
        if cost_usd is not None:
            if cost_usd < 0:
                raise InvalidSessionState("cost_usd must not be negative", field="cost_usd")
            data["cost_usd"] += cost_usd
        for name, amount in counters.items():
            if name not in self.COUNTERS:
                raise InvalidSessionState(
                    f"'{name}' is not a metrics counter; counters are "
                    f"{', '.join(sorted(self.COUNTERS))}",
                    field=name,
                )
            if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
                raise InvalidSessionState(
                    f"'{name}' must be incremented by a non-negative integer", field=name
                )
            data[name] += amount
        data["account_processing_times_ms"] += list(processing_times_ms or [])
        return _validate(type(self), data, "metrics")


def _validate_accounts(field: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | set | tuple):
        raise InvalidSessionState(f"{field} must be a list of account ids", field=field)
    if not all(isinstance(item, str) for item in value):
        raise InvalidSessionState(f"{field} must contain only strings", field=field)
    return list(value)


def _validate(model: type[M], data: dict[str, Any], where: str) -> M:
    try:
        return model.model_validate(without_stale_keys(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or where
        raise InvalidSessionState(f"{where}.{field}: {error['msg']}", field=field) from exc
