"""Runners used by the benchmarks through SERGAS_REVIEW_RUNNER."""

import os
import time

from scheduling.models import ResultOutcome
from scheduling.results import AccountResult
from scheduling.runners import BatchResult, ReviewRun, ReviewRunner


def reviewed(accounts: list[str], duration_ms: int) -> list[AccountResult]:
    return [
        AccountResult(account_id=account, outcome=ResultOutcome.REVIEWED, duration_ms=duration_ms)
        for account in accounts
    ]


class InstantRunner(ReviewRunner):
    """Does no review work: isolates the cost of dispatching, claiming and closing runs."""

    agent_name = "bench-instant"

    def review_batch(self, run: ReviewRun, accounts: list[str]) -> BatchResult:
        return BatchResult(results=reviewed(accounts, 0))


class FixedLatencyRunner(ReviewRunner):
    """Every account takes exactly ``BENCH_ACCOUNT_MS`` (default 5) milliseconds, as a
    CRM call of fixed latency would: the fan-out benchmark's unit of work."""

    agent_name = "bench-fixed-latency"

    def review_batch(self, run: ReviewRun, accounts: list[str]) -> BatchResult:
        delay = int(os.environ.get("BENCH_ACCOUNT_MS", "5"))
        for _account in accounts:
            time.sleep(delay / 1000)
        return BatchResult(
            results=reviewed(accounts, delay), counters={"api_call_count": len(accounts)}
        )


class FixedBatchRunner(ReviewRunner):
    """Every batch takes exactly ``BENCH_BATCH_MS`` (default 100) milliseconds: the
    in-process side of bench/agent_work.py, whose agents take the same time."""

    agent_name = "bench-fixed-batch"

    def review_batch(self, run: ReviewRun, accounts: list[str]) -> BatchResult:
        delay = int(os.environ.get("BENCH_BATCH_MS", "100"))
        time.sleep(delay / 1000)
        return BatchResult(results=reviewed(accounts, delay // max(1, len(accounts))))
