"""Review runners: what a scheduled run does with its session.

The runner is pluggable (``SERGAS_REVIEW_RUNNER``), following Django's backend pattern.
Real agents either replace it or drive sessions through the API; the default
``SimulatedReviewRunner`` reviews accounts deterministically so the whole system can be
exercised without a CRM or an LLM.
"""

import enum
import hashlib
import math
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from scheduling import conf
from scheduling.models import ScheduleExecution
from sessions import services as session_services
from sessions.exceptions import SessionNotRunning
from sessions.hooks import AgentHooks, HookEvent, hook_events_record
from sessions.models import AgentSession, HookName, SessionStatus
from sessions.state import SessionContext


class RunOutcome(enum.Enum):
    COMPLETED = "completed"  # every account was reviewed
    PAUSED = "paused"  # staff paused the session; a checkpoint was saved
    STOPPED = "stopped"  # the session ended elsewhere (cancelled, failed)
    SUPERSEDED = "superseded"  # another worker took the run over


@dataclass(frozen=True)
class ReviewRun:
    """What a runner is given: the run, its session and its fencing token."""

    execution_id: str
    session_id: str
    runner_token: str
    review_id: int | None
    metadata: dict[str, Any]
    actor: str

    def still_mine(self) -> bool:
        """False once another worker has taken this run over (its token replaced ours)."""
        return ScheduleExecution.objects.filter(
            pk=self.execution_id, runner_token=self.runner_token
        ).exists()


class ReviewRunner:
    """Base class of review runners.

    ``run(run)`` reviews the accounts of ``run.session_id``, which is ``running`` when it
    is called. It must:

    - continue from the session's context (``processed_accounts``/``failed_accounts``),
      because a run is resumed after a pause and recovered after a crash;
    - checkpoint and heartbeat regularly, at least every ``HEARTBEAT_TIMEOUT_SECONDS``;
    - between units of work, stop and return ``PAUSED`` when the session was paused,
      ``STOPPED`` when it ended, ``SUPERSEDED`` when ``run.still_mine()`` is False;
    - return ``COMPLETED`` when every account is done, without completing the session
      (the caller does, together with the execution), and raise on failure (the caller
      fails the session and retries the run).
    """

    def run(self, run: ReviewRun) -> RunOutcome:
        raise NotImplementedError


@dataclass
class _Batch:
    number: int
    accounts: list[str]
    processed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    times_ms: list[int] = field(default_factory=list)


class SimulatedReviewRunner(ReviewRunner):
    """Reviews accounts in batches with deterministic timings, failures and
    recommendations derived from each account id; one checkpoint per batch.

    It reports what it does through the orchestrator hooks like a real agent: each batch
    is a ``review_batch`` task (``pre_task``/``post_task``) and each account a
    ``crm.get_account`` tool call (``pre_tool``/``post_tool``, a failed account carries
    its error type), so the audit trail and the Prometheus metrics see simulated runs
    exactly as they would see real ones.
    """

    AGENT_NAME = "simulated-reviewer"
    TOOL = "crm.get_account"
    TASK = "review_batch"

    def run(self, run: ReviewRun) -> RunOutcome:
        session = AgentSession.objects.get(pk=run.session_id)
        context = SessionContext.load(session.context)
        done = context.processed_accounts | context.failed_accounts
        remaining = [account for account in context.account_ids if account not in done]
        size = conf.runner_batch_size()
        total_batches = math.ceil(len(context.account_ids) / size) if context.account_ids else 0
        number = context.current_batch
        recommendations = context.recommendations_count

        for start in range(0, len(remaining), size):
            stop = self._boundary(run)
            if stop is not None:
                return stop
            number += 1
            batch = _Batch(number=number, accounts=remaining[start : start + size])
            hooks = AgentHooks(self.AGENT_NAME, session_id=run.session_id, actor=run.actor)
            try:
                with hooks.task(self.TASK, metadata={"batch": number}):
                    tool_events = []
                    for account in batch.accounts:
                        tool_events += self._review_account(run, batch, account)
                        if account in batch.processed:
                            recommendations += self._recommendations(account)
                    hook_events_record(tool_events, agent_name=self.AGENT_NAME, actor=run.actor)
                    self._record(run, batch, total_batches, recommendations)
            except SessionNotRunning:
                return RunOutcome.STOPPED  # ended (cancelled, failed) during the batch
        return self._boundary(run) or RunOutcome.COMPLETED

    def _record(
        self, run: ReviewRun, batch: _Batch, total_batches: int, recommendations: int
    ) -> None:
        """Metrics and checkpoint of one batch, in one transaction: a crash never leaves
        a batch counted in the metrics but missing from the checkpoint."""
        with transaction.atomic():
            session_services.session_update_metrics(
                run.session_id,
                counters={
                    "api_call_count": 2 * len(batch.accounts),
                    "token_usage": sum(350 + _digest(a) % 900 for a in batch.processed),
                    "cache_hits": sum(1 for a in batch.accounts if _digest(a) % 3 == 0),
                    "cache_misses": sum(1 for a in batch.accounts if _digest(a) % 3 != 0),
                    "error_count": len(batch.failed),
                    "total_duration_ms": sum(batch.times_ms),
                },
                processing_times_ms=batch.times_ms,
                actor=run.actor,
            )
            session_services.session_checkpoint(
                run.session_id,
                context_changes={
                    "processed_accounts": batch.processed,
                    "failed_accounts": batch.failed,
                    "current_batch": batch.number,
                    "total_batches": total_batches,
                    "recommendations_count": recommendations,
                },
                actor=run.actor,
            )

    def _boundary(self, run: ReviewRun) -> RunOutcome | None:
        if not run.still_mine():
            return RunOutcome.SUPERSEDED
        status = session_services.session_heartbeat(run.session_id).status
        if status == SessionStatus.PAUSED:
            session_services.session_checkpoint(run.session_id, actor=run.actor)
            return RunOutcome.PAUSED
        if status != SessionStatus.RUNNING:
            return RunOutcome.STOPPED
        return None

    def _review_account(self, run: ReviewRun, batch: _Batch, account: str) -> list[HookEvent]:
        """Simulate one account; return its pre_tool/post_tool events."""
        started_at = timezone.now()
        mean = conf.simulated_account_ms()
        elapsed = round(mean * (0.5 + (_digest(account) % 1000) / 1000))
        if elapsed:
            time.sleep(elapsed / 1000)
        batch.times_ms.append(elapsed)
        failed = self._fails(account)
        (batch.failed if failed else batch.processed).append(account)
        invocation = uuid.uuid4()
        common = {"name": self.TOOL, "session_id": run.session_id, "invocation_id": invocation}
        return [
            HookEvent(
                hook=HookName.PRE_TOOL,
                event_id=invocation,
                timestamp=started_at,
                metadata={"account_id": account},
                **common,
            ),
            HookEvent(
                hook=HookName.POST_TOOL,
                duration_seconds=elapsed / 1000,
                error_type="CRMTimeout" if failed else None,
                error_message=f"CRM did not answer for {account}" if failed else None,
                metadata={"account_id": account},
                **common,
            ),
        ]

    def _fails(self, account: str) -> bool:
        return (_digest(account) % 10_000) / 10_000 < conf.simulated_failure_rate()

    def _recommendations(self, account: str) -> int:
        return _digest(account) % 4


def _digest(account: str) -> int:
    return int.from_bytes(hashlib.blake2b(account.encode(), digest_size=8).digest(), "big")


@cache
def review_runner() -> ReviewRunner:
    return import_string(conf.review_runner_path())()
