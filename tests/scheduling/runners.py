"""Review runners used by tests through SERGAS_REVIEW_RUNNER."""

from scheduling.models import ScheduleExecution
from scheduling.runners import BatchResult, ReviewRun, SimulatedReviewRunner


class FailingUntilAttemptRunner(SimulatedReviewRunner):
    """Raises (like a CRM outage) on attempts before ``SUCCEEDS_ON_ATTEMPT``."""

    SUCCEEDS_ON_ATTEMPT = 3

    def review_batch(self, run: ReviewRun, accounts: list[str]) -> BatchResult:
        attempt = ScheduleExecution.objects.get(pk=run.execution_id).attempt
        if attempt < self.SUCCEEDS_ON_ATTEMPT:
            raise ConnectionError(f"CRM unavailable (attempt {attempt})")
        return super().review_batch(run, accounts)
