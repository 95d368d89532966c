"""Review runners: what a scheduled run does with each batch of its accounts.

A run's accounts are split into batches (``SCHEDULING_RUNNER_BATCH_SIZE``) that any
worker on any host may take (``scheduling.services.runs``). The runner reviews one batch
and returns what happened; the framework records it (metrics, checkpoint, the tool and
task events, the batch's status) in one fenced transaction, decides what runs next and
honours pause and cancel between batches. The runner is pluggable
(``SERGAS_REVIEW_RUNNER``), following Django's backend pattern; it serves the reviews
whose executor is ``worker``. Reviews whose executor is ``queue:<name>`` are done by
agents over the API instead (``scheduling.services.work_queue``), and both fill the same
tables. The default ``SimulatedReviewRunner`` reviews accounts deterministically so the
whole system runs without a CRM or an LLM; production refuses it unless allowed
(``scheduling.checks``).
"""

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from django.utils import timezone
from django.utils.module_loading import import_string

from scheduling import conf
from scheduling.models import ResultOutcome, SchedulePriority
from scheduling.results import AccountResult, Recommendation
from sessions.hook_events import HookEvent
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
    """What reviewing one batch produced: one ``AccountResult`` per account, the other
    ``SessionMetrics`` counters (``api_call_count``, ``cache_hits``, ``cache_misses``:
    tokens, errors and durations are summed from the results) and the tool-call events
    to record (the orchestrator hooks)."""

    results: list[AccountResult] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    events: list[HookEvent] = field(default_factory=list)


class ReviewRunner:
    """Base class of review runners.

    ``review_batch(run, accounts)`` reviews ``accounts`` (a slice of the run's session)
    and returns a ``BatchResult`` with exactly one result per account. It must not write
    the session itself: the caller records the result together with the checkpoint,
    only if this worker still owns the batch, so a batch re-run after a crash is never
    counted twice. It may take long (a CRM call, an LLM), but less than
    ``SCHEDULING_BATCH_LEASE_SECONDS``. Raising fails the run (which is then retried as
    a whole, up to the review's ``max_retries``).
    """

    agent_name = "review-runner"

    def review_batch(self, run: ReviewRun, accounts: list[str]) -> BatchResult:
        raise NotImplementedError


class SimulatedReviewRunner(ReviewRunner):
    """Deterministic reviews: per-account timings, failures, tokens and recommendations
    derived from each account id; each account is a ``crm.get_account`` tool call (a
    failed account carries its error type), so the audit trail, the results and the
    Prometheus metrics see simulated runs exactly as they would see real ones."""

    agent_name = "simulated-reviewer"
    TOOL = "crm.get_account"

    def review_batch(self, run: ReviewRun, accounts: list[str]) -> BatchResult:
        result = BatchResult()
        for account in accounts:
            started_at = timezone.now()
            elapsed = self._review_account(account)
            failed = self._fails(account)
            result.results.append(simulated_result(account, elapsed, failed=failed))
            result.events += self._tool_events(run, account, started_at, elapsed, failed)
        result.counters = {
            "api_call_count": 2 * len(accounts),
            "cache_hits": sum(1 for a in accounts if _digest(a) % 3 == 0),
            "cache_misses": sum(1 for a in accounts if _digest(a) % 3 != 0),
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


_SIMULATED_KINDS = (
    ("renewal_risk", "Renewal at risk", "Usage fell in the last quarter; call before renewal."),
    ("upsell", "Expansion opportunity", "Seats are at their limit; offer the next tier."),
    ("follow_up", "Follow up on the open case", "A support case has waited over a week."),
    ("data_quality", "Fix the account's contacts", "The primary contact's address bounces."),
)


def simulated_result(account: str, elapsed_ms: int, *, failed: bool) -> AccountResult:
    """The deterministic result of one account (the simulation, and tests)."""
    digest = _digest(account)
    if failed:
        return AccountResult(
            account_id=account,
            outcome=ResultOutcome.FAILED,
            error=f"CRMTimeout: CRM did not answer for {account}",
            duration_ms=elapsed_ms,
        )
    recommendations = []
    for number in range(digest % 4):
        kind, title, detail = _SIMULATED_KINDS[(digest >> (8 * number)) % len(_SIMULATED_KINDS)]
        recommendations.append(
            Recommendation(
                kind=kind,
                title=title,
                detail=detail,
                priority=SchedulePriority.values[(digest >> (4 * number)) % 4],
                confidence=round(0.5 + ((digest >> (6 * number)) % 50) / 100, 2),
            )
        )
    input_tokens = 300 + digest % 700
    output_tokens = 50 + digest % 200
    return AccountResult(
        account_id=account,
        outcome=ResultOutcome.REVIEWED,
        recommendations=recommendations,
        duration_ms=elapsed_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        # An illustrative price: $3 per million input tokens, $15 per million output.
        cost_usd=Decimal(input_tokens * 3 + output_tokens * 15) / Decimal(1_000_000),
    )


def _digest(account: str) -> int:
    return int.from_bytes(hashlib.blake2b(account.encode(), digest_size=8).digest(), "big")


@cache
def review_runner() -> ReviewRunner | None:
    """The configured runner, or None where ``SERGAS_REVIEW_RUNNER`` is empty (agents do
    all the work; reviews must name a queue)."""
    path = conf.review_runner_path()
    return import_string(path)() if path else None
