"""Audit events of the scheduling domain, recorded inside the caller's transaction."""

from typing import Any

from audit.models import AuditEventType
from audit.services import audit_event_record
from scheduling.models import RunBatch, ScheduledReview, ScheduleExecution


def review_resource(review_id: int | None) -> str:
    return f"review:{review_id}"


def record_review_event(
    review: ScheduledReview, action: str, *, actor: str, metadata: dict[str, Any] | None = None
) -> None:
    audit_event_record(
        event_type=AuditEventType.SCHEDULE,
        action=action,
        actor=actor,
        resource=review_resource(review.pk),
        metadata={"review": review.name, **(metadata or {})},
    )


def execution_event_metadata(execution: ScheduleExecution) -> dict[str, Any]:
    return {
        "execution_id": str(execution.pk),
        "nominal_time": execution.nominal_time.isoformat(),
        "attempt": execution.attempt,
        "trigger": execution.trigger,
        "status": execution.status,
    }


def record_execution_event(
    execution: ScheduleExecution,
    action: str,
    *,
    actor: str,
    metadata: dict[str, Any] | None = None,
) -> None:
    audit_event_record(
        event_type=AuditEventType.SCHEDULE,
        action=action,
        actor=actor,
        resource=review_resource(execution.review_id),
        session_id=execution.session_id,
        metadata={**execution_event_metadata(execution), **(metadata or {})},
    )


def record_batch_event(
    batch: RunBatch,
    action: str,
    *,
    execution: ScheduleExecution,
    actor: str,
    metadata: dict[str, Any] | None = None,
) -> None:
    """A batch's event: its run's event, naming the batch and its lease."""
    record_execution_event(
        execution,
        action,
        actor=actor,
        metadata={
            "batch_id": batch.pk,
            "batch_index": batch.index,
            "batch_status": batch.status,
            "batch_attempt": batch.attempts,
            **({"queue": batch.queue} if batch.queue else {}),
            **(metadata or {}),
        },
    )
