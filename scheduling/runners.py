"""Review runners: what a scheduled run does with each batch of its accounts.

A run's accounts are split into batches (``SCHEDULING_RUNNER_BATCH_SIZE``) that any
worker on any host may take (``scheduling.services.runs``). The runner reviews one batch
and returns what happened; the framework records it (metrics, checkpoint, the tool and
task events, the batch's status) in one fenced transaction, decides what runs next and
honours pause and cancel between batches. The runner is pluggable
(``SERGAS_REVIEW_RUNNER``), following Django's backend pattern. Real agents either
replace it or drive sessions through the API; the default ``SimulatedReviewRunner``
reviews accounts deterministically so the whole system runs without a CRM or an LLM.
"""

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.utils import timezone
from django.utils.module_loading import import_string

from scheduling import conf
from sessions.hooks import HookEvent
from sessions.models import HookName


@dataclass(frozen=True)
class ReviewRun:
    """The run a batch belongs to."""

    execution_id: str
    session_id: str
    review_id: int | None
    metadata: dict[str, Any]
    actor: str


@dataclass
class BatchResult:
    """What reviewing one batch produced."""

    processed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    processing_times_ms: list[int] = field(default_factory=list)
    recommendations: int = 0
    counters: dict[str, int] = field(default_factory=dict)  # SessionMetrics counters
    events: list[HookEvent] = field(default_factory=list)  # tool calls, for the hooks


class ReviewRunner:
    """Base class of review runners.

    ``review_batch(run, accounts)`` reviews ``accounts`` (a slice of the run's session)
    and returns a ``BatchResult``: which accounts were processed and which failed, their
    processing times, the recommendations made, metrics counters and the tool-call
    events to record. It must not write the session itself: the caller records the
    result together with the checkpoint, only if this worker still owns the batch, so a
    batch re-run after a crash is never counted twice. It may take long (a CRM call, an
    LLM), but less than ``SCHEDULING_BATCH_LEASE_SECONDS``. Raising fails the run (which
    is then retried as a whole, up to the review's ``max_retries``).
    """

    agent_name = "review-runner"

    def review_batch(self, run: ReviewRun, accounts: list[str]) -> BatchResult:
        raise NotImplementedError


class SimulatedReviewRunner(ReviewRunner):
    """Deterministic reviews: per-account timings, failures and recommendations derived
    from each account id; each account is a ``crm.get_account`` tool call (a failed
    account carries its error type), so the audit trail and the Prometheus metrics see
    simulated runs exactly as they would see real ones."""

    agent_name = "simulated-reviewer"
    TOOL = "crm.get_account"

    def review_batch(self, run: ReviewRun, accounts: list[str]) -> BatchResult:
        result = BatchResult()
        for account in accounts:
            started_at = timezone.now()
            elapsed = self._review_account(account)
            failed = self._fails(account)
            result.processing_times_ms.append(elapsed)
            if failed:
                result.failed.append(account)
            else:
                result.processed.append(account)
                result.recommendations += _digest(account) % 4
            result.events += self._tool_events(run, account, started_at, elapsed, failed)
        result.counters = {
            "api_call_count": 2 * len(accounts),
            "token_usage": sum(350 + _digest(a) % 900 for a in result.processed),
            "cache_hits": sum(1 for a in accounts if _digest(a) % 3 == 0),
            "cache_misses": sum(1 for a in accounts if _digest(a) % 3 != 0),
            "error_count": len(result.failed),
            "total_duration_ms": sum(result.processing_times_ms),
        }
        return result

    def _review_account(self, account: str) -> int:
        mean = conf.simulated_account_ms()
        elapsed = round(mean * (0.5 + (_digest(account) % 1000) / 1000))
        if elapsed:
            time.sleep(elapsed / 1000)
        return elapsed

    def _fails(self, account: str) -> bool:
        return (_digest(account) % 10_000) / 10_000 < conf.simulated_failure_rate()

    def _tool_events(
        self, run: ReviewRun, account: str, started_at: Any, elapsed_ms: int, failed: bool
    ) -> list[HookEvent]:
        invocation = uuid.uuid4()
        common: dict[str, Any] = {
            "name": self.TOOL,
            "session_id": run.session_id,
            "invocation_id": invocation,
            "metadata": {"account_id": account},
        }
        return [
            HookEvent(hook=HookName.PRE_TOOL, event_id=invocation, timestamp=started_at, **common),
            HookEvent(
                hook=HookName.POST_TOOL,
                duration_seconds=elapsed_ms / 1000,
                error_type="CRMTimeout" if failed else None,
                error_message=f"CRM did not answer for {account}" if failed else None,
                **common,
            ),
        ]


def _digest(account: str) -> int:
    return int.from_bytes(hashlib.blake2b(account.encode(), digest_size=8).digest(), "big")


@cache
def review_runner() -> ReviewRunner:
    return import_string(conf.review_runner_path())()
