"""Runners used by the benchmarks through SERGAS_REVIEW_RUNNER."""

import os
import time

from scheduling.runners import BatchResult, ReviewRun, ReviewRunner


class InstantRunner(ReviewRunner):
    """Does no review work: isolates the cost of dispatching, claiming and closing runs."""

    agent_name = "bench-instant"

    def review_batch(self, run: ReviewRun, accounts: list[str]) -> BatchResult:
        return BatchResult(processed=list(accounts), processing_times_ms=[0] * len(accounts))


class FixedLatencyRunner(ReviewRunner):
    """Every account takes exactly ``BENCH_ACCOUNT_MS`` (default 5) milliseconds, as a
    CRM call of fixed latency would: the fan-out benchmark's unit of work."""

    agent_name = "bench-fixed-latency"

    def review_batch(self, run: ReviewRun, accounts: list[str]) -> BatchResult:
        delay = int(os.environ.get("BENCH_ACCOUNT_MS", "5"))
        for _account in accounts:
            time.sleep(delay / 1000)
        return BatchResult(
            processed=list(accounts),
            processing_times_ms=[delay] * len(accounts),
            counters={"api_call_count": len(accounts)},
        )
