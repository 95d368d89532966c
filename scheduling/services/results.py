"""Keeping what a batch found: one ``AccountReview`` per account, written inside the
batch's recording transaction (``batch_record``), and what they add to the session."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone

from audit.models import AuditEventType
from audit.services import audit_event_record
from scheduling.exceptions import InvalidResults
from scheduling.models import AccountReview, ResultOutcome, RunBatch, ScheduleExecution
from scheduling.results import AccountResult

# Counters summed from the results; a runner or an agent may add only the others.
DERIVED_COUNTERS = frozenset({"token_usage", "error_count", "total_duration_ms"})


def results_check(batch: RunBatch, results: Sequence[AccountResult]) -> None:
    """Exactly one result per account of the batch; ``InvalidResults`` names the first
    account that is missing, repeated or not in the batch."""
    expected = set(batch.account_ids)
    seen: set[str] = set()
    for index, result in enumerate(results):
        if result.account_id not in expected:
            raise InvalidResults(
                f"account '{result.account_id}' is not in batch {batch.pk}",
                field=f"results.{index}.account_id",
            )
        if result.account_id in seen:
            raise InvalidResults(
                f"account '{result.account_id}' has more than one result",
                field=f"results.{index}.account_id",
            )
        seen.add(result.account_id)
    missing = [account for account in batch.account_ids if account not in seen]
    if missing:
        raise InvalidResults(
            f"{len(missing)} account(s) of batch {batch.pk} have no result, "
            f"first '{missing[0]}'; send one result per account (outcome skipped "
            "for an account left alone)"
        )


def counters_check(counters: dict[str, int]) -> None:
    derived = sorted(DERIVED_COUNTERS & set(counters))
    if derived:
        raise InvalidResults(
            f"'{derived[0]}' is summed from the results; send only the other counters",
            field=f"metrics.{derived[0]}",
        )


@dataclass(frozen=True)
class ResultsSummary:
    """What the results add to the session's context and metrics."""

    processed: list[str]  # reviewed or skipped
    failed: list[str]
    recommendations: int
    counters: dict[str, int]
    processing_times_ms: list[int]
    outcomes: dict[str, int]


def results_summarize(results: Sequence[AccountResult]) -> ResultsSummary:
    durations = [result.duration_ms or 0 for result in results]
    failed = [r.account_id for r in results if r.outcome == ResultOutcome.FAILED]
    return ResultsSummary(
        processed=[r.account_id for r in results if r.outcome != ResultOutcome.FAILED],
        failed=failed,
        recommendations=sum(len(r.recommendations) for r in results),
        counters={
            "token_usage": sum(result.tokens for result in results),
            "error_count": len(failed),
            "total_duration_ms": sum(durations),
        },
        processing_times_ms=durations,
        outcomes=dict(Counter(str(result.outcome) for result in results)),
    )


def results_write(
    execution: ScheduleExecution,
    batch: RunBatch,
    results: Sequence[AccountResult],
    *,
    agent: str,
) -> None:
    """Insert the batch's results (call inside its recording transaction)."""
    now = timezone.now()
    AccountReview.objects.bulk_create(
        [
            AccountReview(
                execution=execution,
                batch=batch,
                review_id=execution.review_id,
                session_id=execution.session_id or "",
                account_id=result.account_id,
                outcome=result.outcome,
                recommendations=[r.model_dump(mode="json") for r in result.recommendations],
                recommendations_count=len(result.recommendations),
                error=result.error,
                duration_ms=result.duration_ms,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                cost_usd=result.cost_usd,
                agent=agent,
                recorded_at=now,
            )
            for result in results
        ]
    )


def run_results_export_record(
    execution: ScheduleExecution, *, outcome: str | None, actor: str
) -> None:
    """Who exported which run's results (the dashboard's CSV), recorded as the audit
    trail's exports are: once per download, before the first line is streamed."""
    audit_event_record(
        event_type=AuditEventType.SYSTEM,
        action="run_results_export",
        actor=actor,
        resource=f"table:{AccountReview._meta.db_table}",
        metadata={
            "format": "csv",
            "execution_id": str(execution.pk),
            "review_id": execution.review_id,
            "filters": {"outcome": outcome},
        },
    )
