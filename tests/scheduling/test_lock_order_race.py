"""Staff controls racing the workers: hundreds of pauses, resumes, recoveries and
cancels of running runs' sessions while real Celery worker processes claim and record
their batches. Every path locks review, session, run, batch in that order
(kernel.locking), so PostgreSQL finds no deadlock; nothing is lost or counted twice,
and the audit trail tells the final state of every session, run and batch."""

import random
import threading
import time
from collections import Counter

import pytest
from django.db import connection

from audit.models import AuditEvent
from kernel.errors import DomainError
from scheduling import services
from scheduling.models import AccountReview, RunBatch, ScheduleExecution
from sessions import services as session_services
from sessions.models import AgentSession
from sessions.state import SessionContext, SessionMetrics
from tests.scheduling.factories import make_review
from tests.scheduling.test_runs import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RUNS = 10
ACCOUNTS = 40
RACERS = 4
OPERATIONS = 400  # in all, across the racers
WORKER_ENV = {"SCHEDULING_RUNNER_BATCH_SIZE": "2", "SCHEDULING_SIMULATED_ACCOUNT_MS": "5"}
RUN_STATUS_OF_EVENT = {
    "run_succeeded": "succeeded",
    "run_failed": "failed",
    "run_retrying": "retrying",
}


def _deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _race(session_ids: list[str], outcomes: Counter, failures: list[BaseException]) -> None:
    """One racer: staff and the recovery task acting on random sessions."""
    budget = OPERATIONS // RACERS
    rng = random.Random()
    try:
        for _ in range(budget):
            session_id = rng.choice(session_ids)
            action = rng.choices(
                ["pause", "resume", "recover", "interrupt", "cancel", "reap"],
                weights=[30, 30, 15, 12, 3, 10],
            )[0]
            try:
                if action == "pause":
                    session_services.session_pause(session_id, actor="staff:racer")
                elif action == "resume":
                    session_services.session_resume(session_id, actor="staff:racer")
                elif action == "recover":
                    session_services.session_recover(session_id, actor="staff:racer")
                elif action == "interrupt":
                    session_services.session_interrupt(session_id, actor="task:racer")
                elif action == "cancel":
                    session_services.session_cancel(session_id, actor="staff:racer")
                else:
                    services.batches_expire(actor="task:racer")
                    services.runs_recover_interrupted(actor="task:racer")
                outcomes[action] += 1
            except DomainError as refused:  # another racer or the run got there first
                outcomes[f"{action} refused ({refused.code})"] += 1
            time.sleep(rng.uniform(0, 0.03))
    except BaseException as exc:  # a deadlock, a lost connection: the test fails
        failures.append(exc)
    finally:
        connection.close()


def _settle(session_ids: list[str]) -> None:
    """After the race: let every run finish."""
    for session_id in session_ids:
        status = AgentSession.objects.get(pk=session_id).status
        if status == "paused":
            session_services.session_resume(session_id, actor="staff:settle")
        elif status == "interrupted":
            session_services.session_recover(session_id, actor="staff:settle")


def test_controls_racing_batch_claims_and_records_deadlock_nothing_and_lose_nothing(
    celery_processes,
):
    workers = [celery_processes.worker(**WORKER_ENV) for _ in range(2)]
    for worker in workers:
        worker.wait_for_log("ready")
    reviews = [
        make_review(name=f"race {n}", account_filter={"count": ACCOUNTS}, max_retries=0)
        for n in range(RUNS)
    ]
    executions = [services.review_trigger_on_demand(review.pk) for review in reviews]
    session_ids = [
        wait_for(lambda e=e: ScheduleExecution.objects.get(pk=e.pk).session_id, what="start")
        for e in executions
    ]
    deadlocks_before = _deadlocks()

    outcomes: Counter = Counter()
    failures: list[BaseException] = []
    racers = [
        threading.Thread(target=_race, args=(session_ids, outcomes, failures))
        for _ in range(RACERS)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=240)
    assert not failures, failures
    applied = sum(n for key, n in outcomes.items() if "refused" not in key)
    assert applied >= 100, outcomes  # the race really raced

    def settled() -> bool:
        _settle(session_ids)
        return not ScheduleExecution.objects.filter(status__in=["queued", "running"]).exists()

    wait_for(settled, timeout=120, what="every run to end")
    time.sleep(2)  # batches in flight at the end are refused; backends flush their stats

    # No deadlock, anywhere: not in the racers, not in the workers, not in PostgreSQL.
    assert _deadlocks() == deadlocks_before
    for worker in workers:
        assert "deadlock detected" not in worker.log()
        assert "LockOrderViolation" not in worker.log()

    for execution in ScheduleExecution.objects.all():
        session = AgentSession.objects.get(pk=execution.session_id)
        batches = list(RunBatch.objects.filter(execution=execution))
        done = [batch for batch in batches if batch.status == "done"]
        results = AccountReview.objects.filter(execution=execution)
        # No lost update and nothing counted twice: each recorded batch once, in full.
        assert results.count() == sum(len(batch.account_ids) for batch in done)
        context = SessionContext.load(session.context)
        metrics = SessionMetrics.load(session.metrics)
        assert context.current_batch == len(done)
        assert len(metrics.account_processing_times_ms) == results.count()
        assert context.processed_accounts | context.failed_accounts == set(
            results.values_list("account_id", flat=True)
        )
        # The run and its session ended together, consistently.
        if execution.status == "succeeded":
            assert session.status == "completed"
            assert len(done) == len(batches)
        else:
            assert (execution.status, session.status) == ("failed", "cancelled")
            assert not [b for b in batches if b.status in ("pending", "running")]
        # The trail tells the final state: the run's last event, each batch recorded once
        # exactly when it is done, the session's versions without a gap.
        last_run_event = (
            AuditEvent.objects.filter(
                metadata__execution_id=str(execution.pk), action__in=list(RUN_STATUS_OF_EVENT)
            )
            .order_by("-timestamp")
            .first()
        )
        assert RUN_STATUS_OF_EVENT[last_run_event.action] == execution.status
        recorded = Counter(
            AuditEvent.objects.filter(
                metadata__execution_id=str(execution.pk), action="batch_recorded"
            ).values_list("metadata__batch_id", flat=True)
        )
        assert recorded == Counter(batch.pk for batch in done)
        versions = sorted(
            AuditEvent.objects.filter(session_id=session.session_id)
            .exclude(metadata__version__isnull=True)
            .values_list("metadata__version", flat=True)
        )
        assert versions == list(range(1, session.version + 1))
        last_lifecycle = (
            AuditEvent.objects.filter(session_id=session.session_id, event_type="session_lifecycle")
            .order_by("-metadata__version")
            .first()
        )
        assert last_lifecycle.metadata["to"] == session.status
    print(f"race outcomes: {dict(outcomes)}")  # noqa: T201
