"""What a review finds for one account: the typed shape both executors return.

The in-process runner returns these in its ``BatchResult``; agents send the same shape
to ``POST /api/v1/work/{batch_id}/complete``. ``batch_record`` keeps them as
``AccountReview`` rows, one per account of the batch.
"""

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from scheduling.models import ResultOutcome, SchedulePriority

KIND_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
RECOMMENDATIONS_MAX = 100


class Recommendation(BaseModel):
    """One recommendation for an account executive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(
        pattern=KIND_PATTERN,
        description="What sort: upsell, renewal_risk, follow_up, data_quality, ...",
    )
    title: str = Field(min_length=1, max_length=200)
    detail: str = Field(default="", max_length=5000)
    priority: SchedulePriority = SchedulePriority.MEDIUM
    confidence: float | None = Field(default=None, ge=0, le=1)


class AccountResult(BaseModel):
    """The result of one account in one run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str = Field(min_length=1, max_length=128)
    outcome: ResultOutcome = Field(
        description="reviewed, failed (see error) or skipped (nothing to review)."
    )
    recommendations: list[Recommendation] = Field(
        default_factory=list, max_length=RECOMMENDATIONS_MAX
    )
    error: str = Field(default="", max_length=5000)
    duration_ms: int | None = Field(default=None, ge=0, le=7 * 24 * 3600 * 1000)
    input_tokens: int | None = Field(default=None, ge=0, le=2**31 - 1)
    output_tokens: int | None = Field(default=None, ge=0, le=2**31 - 1)
    cost_usd: Decimal | None = Field(
        default=None,
        ge=0,
        max_digits=12,
        decimal_places=6,
        description="Dollars, at most 6 decimal places: a string keeps every digit.",
        # What the schema offers: whole dollars, or a decimal string within the bounds.
        json_schema_extra={
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 999_999},
                {"type": "string", "pattern": r"^[0-9]{1,6}(\.[0-9]{1,6})?$"},
                {"type": "null"},
            ]
        },
    )

    @property
    def tokens(self) -> int:
        return (self.input_tokens or 0) + (self.output_tokens or 0)
