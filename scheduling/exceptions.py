"""Errors of the scheduling domain; messages are constants tests and clients can match."""

from sergas.errors import Conflict, NotFound, ValidationFailed

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
