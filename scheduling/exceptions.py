"""Errors of the scheduling domain; messages are constants tests and clients can match."""

from kernel.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

INVALID_CRON = "'{expression}' is not a valid cron expression: {reason}"
INVALID_TIMEZONE = "'{name}' is not an IANA timezone"
REVIEW_NOT_FOUND = "Scheduled review {review_id} does not exist."
EXECUTION_NOT_FOUND = "Schedule execution {execution_id} does not exist."
ALREADY_PAUSED = "Review {review_id} is already paused."
NOT_PAUSED = "Review {review_id} is not paused."


class ReviewNotFound(NotFound):
    code = "review_not_found"

    def __init__(self, review_id: object) -> None:
        super().__init__(REVIEW_NOT_FOUND.format(review_id=review_id), review_id=review_id)


class ExecutionNotFound(NotFound):
    code = "execution_not_found"

    def __init__(self, execution_id: object) -> None:
        super().__init__(
            EXECUTION_NOT_FOUND.format(execution_id=execution_id), execution_id=str(execution_id)
        )


class InvalidSchedule(ValidationFailed):
    """A review definition that cannot be scheduled; ``field`` names what to fix."""

    code = "invalid_schedule"


class InvalidCronExpression(InvalidSchedule):
    code = "invalid_cron_expression"

    def __init__(self, expression: str, reason: str) -> None:
        super().__init__(
            INVALID_CRON.format(expression=expression, reason=reason), field="cron_expression"
        )


class InvalidTimezone(InvalidSchedule):
    code = "invalid_timezone"

    def __init__(self, name: str) -> None:
        super().__init__(INVALID_TIMEZONE.format(name=name), field="timezone")


class ReviewStateConflict(Conflict):
    code = "review_state_conflict"


INVALID_RUN_TRANSITION = (
    "Cannot {action} run {execution_id}: it is {status}; {action} is allowed only from {allowed}."
)
INVALID_BATCH_TRANSITION = (
    "Cannot {action} batch {batch_id}: it is {status}; {action} is allowed only from {allowed}."
)
INVALID_EXECUTOR = (
    "'{executor}' is not an executor: use 'worker' (the in-process runner) or "
    "'queue:<name>' (agents over the API; a name of 1-64 letters, digits, '_', '.' or '-')."
)
NO_REVIEW_RUNNER = (
    "No in-process review runner is configured (SERGAS_REVIEW_RUNNER is empty): "
    "use executor 'queue:<name>' so that agents do the work."
)
QUEUE_NOT_FOUND = "No review hands out work on queue '{queue}'."
QUEUE_NOT_ALLOWED = "This token may take work from {allowed} only, not from '{queue}'."
BATCH_NOT_FOUND = "Batch {batch_id} does not exist in any queue this token may use."
LEASE_LOST = "The lease on batch {batch_id} is lost ({reason}): stop working on it. {detail}"
LEASE_LOST_DETAILS = {
    "taken_over": "Another holder leased the batch after this lease ran out.",
    "lease_expired": "The lease ran out before it was renewed; the batch waits for a new holder.",
    "run_cancelled": "Its run ended ({run_status}); the batch was cancelled.",
    "session_paused": "Its session was paused; the batch waits for the resume.",
    "session_stopped": "Its session is {session_status}; the batch waits for its recovery.",
    "batch_failed": "The batch was failed by its holder.",
}
RESULTS_INVALID = "results: {problem}"
EVENT_FOREIGN_SESSION = (
    "events.{index}.session_id: '{session_id}' is not this batch's session ({expected})."
)


def _listed(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


class InvalidRunTransition(Conflict):
    code = "invalid_run_transition"

    def __init__(
        self, execution_id: object, *, status: str, action: str, allowed: frozenset[str]
    ) -> None:
        super().__init__(
            INVALID_RUN_TRANSITION.format(
                action=action, execution_id=execution_id, status=status, allowed=_listed(allowed)
            ),
            execution_id=str(execution_id),
            status=status,
            action=action,
        )


class InvalidBatchTransition(Conflict):
    code = "invalid_batch_transition"

    def __init__(self, batch_id: int, *, status: str, action: str, allowed: frozenset[str]) -> None:
        super().__init__(
            INVALID_BATCH_TRANSITION.format(
                action=action, batch_id=batch_id, status=status, allowed=_listed(allowed)
            ),
            batch_id=batch_id,
            status=status,
            action=action,
        )


class InvalidExecutor(InvalidSchedule):
    code = "invalid_executor"

    def __init__(self, executor: object) -> None:
        super().__init__(INVALID_EXECUTOR.format(executor=str(executor)[:100]), field="executor")


class NoReviewRunner(InvalidSchedule):
    code = "no_review_runner"

    def __init__(self) -> None:
        super().__init__(NO_REVIEW_RUNNER, field="executor")


class QueueNotFound(NotFound):
    code = "queue_not_found"

    def __init__(self, queue: str) -> None:
        super().__init__(QUEUE_NOT_FOUND.format(queue=queue[:100]), queue=queue[:100])


class QueueNotAllowed(PermissionDenied):
    code = "queue_not_allowed"

    def __init__(self, queue: str, allowed: list[str]) -> None:
        super().__init__(
            QUEUE_NOT_ALLOWED.format(
                queue=queue[:100], allowed=", ".join(f"'{name}'" for name in allowed)
            ),
            queue=queue[:100],
            allowed_queues=allowed,
        )


class BatchNotFound(NotFound):
    code = "batch_not_found"

    def __init__(self, batch_id: object) -> None:
        super().__init__(BATCH_NOT_FOUND.format(batch_id=batch_id), batch_id=batch_id)


class LeaseLost(Conflict):
    """The caller's lease on a batch no longer holds; ``reason`` says why."""

    code = "lease_lost"

    def __init__(self, batch_id: int, reason: str, **facts: str) -> None:
        detail = LEASE_LOST_DETAILS[reason].format(**facts)
        super().__init__(
            LEASE_LOST.format(batch_id=batch_id, reason=reason, detail=detail),
            batch_id=batch_id,
            reason=reason,
        )
        self.reason = reason


class InvalidResults(ValidationFailed):
    code = "invalid_results"

    def __init__(self, problem: str, *, field: str = "results") -> None:
        super().__init__(RESULTS_INVALID.format(problem=problem), field=field)


class EventForeignSession(ValidationFailed):
    code = "foreign_session"

    def __init__(self, index: int, session_id: str, expected: str) -> None:
        super().__init__(
            EVENT_FOREIGN_SESSION.format(index=index, session_id=session_id, expected=expected),
            field=f"events.{index}.session_id",
        )
