"""Runs on a real Celery worker (in a thread) over the real broker."""

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.models import AuditEvent
from scheduling import services
from scheduling.exceptions import LeaseLost
from scheduling.models import AccountReview, ExecutionStatus, RunBatch, ScheduleExecution
from scheduling.publishing import RunMessage, publish_runs
from scheduling.runners import review_runner, simulated_result
from sessions import services as session_services
from sessions.models import AgentSession, SessionCheckpoint
from sessions.state import SessionContext, SessionMetrics
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition: Callable[[], object], *, timeout: float = 30, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


def _status(execution_id) -> str:
    return ScheduleExecution.objects.get(pk=execution_id).status


@pytest.fixture
def runner(settings):
    """Choose the review runner and its pace for one test."""

    def use(path: str = "scheduling.runners.SimulatedReviewRunner", **scheduling) -> None:
        settings.SERGAS_SCHEDULING = {
            **settings.SERGAS_SCHEDULING,
            "REVIEW_RUNNER": path,
            **scheduling,
        }
        review_runner.cache_clear()

    yield use
    review_runner.cache_clear()


def test_an_on_demand_run_reviews_every_account_and_succeeds(celery_worker_thread, runner):
    runner(RUNNER_BATCH_SIZE=4)
    tool_labels = {"tool_name": "crm.get_account", "agent_name": "simulated-reviewer"}
    calls_before = REGISTRY.get_sample_value("orchestrator_tool_invocations_total", tool_labels)
    review = make_review(account_filter={"count": 10})
    execution = services.review_trigger_on_demand(review.pk, actor="staff:ana")

    wait_for(lambda: _status(execution.pk) == ExecutionStatus.SUCCEEDED, what="success")

    execution.refresh_from_db()
    session = AgentSession.objects.get(pk=execution.session_id)
    context = SessionContext.load(session.context)
    assert session.status == "completed"
    assert session.session_type == "on_demand"
    assert len(context.processed_accounts) + len(context.failed_accounts) == 10
    assert execution.accounts_processed == len(context.processed_accounts)
    assert execution.accounts_failed == len(context.failed_accounts)
    assert context.current_batch == context.total_batches == 3
    assert SessionCheckpoint.objects.filter(session=session).count() == 3
    assert len(SessionMetrics.load(session.metrics).account_processing_times_ms) == 10
    assert execution.start_lag_ms is not None
    assert execution.duration_ms is not None
    review.refresh_from_db()
    assert review.last_run_at == execution.finished_at
    actions = list(
        AuditEvent.objects.filter(resource=f"review:{review.pk}", event_type="schedule")
        .exclude(action__startswith="batch_")
        .order_by("timestamp")
        .values_list("action", flat=True)
    )
    assert actions == ["review_created", "run_queued", "run_started", "run_succeeded"]
    batch_actions = AuditEvent.objects.filter(
        resource=f"review:{review.pk}", action__startswith="batch_"
    ).values_list("action", flat=True)
    assert sorted(batch_actions) == ["batch_claimed"] * 3 + ["batch_recorded"] * 3
    # What the run found is kept, one result per account.
    results = AccountReview.objects.filter(execution=execution)
    assert results.count() == 10
    assert results.filter(outcome="failed").count() == execution.accounts_failed
    # The runner reports through the orchestrator hooks: a task per batch, a tool call
    # per account, in the audit trail and in the metrics.
    trail = AuditEvent.objects.filter(session_id=session.session_id)
    assert trail.filter(event_type="tool", action="post_tool").count() == 10
    assert trail.filter(event_type="task", action="post_task").count() == 3
    calls = REGISTRY.get_sample_value("orchestrator_tool_invocations_total", tool_labels)
    assert calls - (calls_before or 0) == 10


def test_a_duplicated_message_makes_no_second_run(celery_worker_thread, runner):
    runner()
    review = make_review()
    execution = services.review_trigger_on_demand(review.pk)
    publish_runs([RunMessage(str(execution.pk), review.priority)] * 3)
    wait_for(lambda: _status(execution.pk) == ExecutionStatus.SUCCEEDED)
    time.sleep(0.5)  # let the duplicates arrive and be refused
    assert AgentSession.objects.filter(executions=execution).count() == 1
    assert AgentSession.objects.count() == 1
    assert AuditEvent.objects.filter(action="run_started").count() == 1


def test_a_failing_run_is_retried_and_each_attempt_recorded(celery_worker_thread, runner):
    runner("tests.scheduling.runners.FailingUntilAttemptRunner")
    review = make_review(max_retries=3, retry_delay_minutes=0)
    first = services.review_trigger_on_demand(review.pk)

    wait_for(
        lambda: ScheduleExecution.objects.filter(
            review=review, status=ExecutionStatus.SUCCEEDED
        ).exists(),
        what="third attempt",
    )

    attempts = list(
        ScheduleExecution.objects.filter(review=review, nominal_time=first.nominal_time)
        .order_by("attempt")
        .values_list("attempt", "trigger", "status")
    )
    assert attempts == [
        (1, "on_demand", "retrying"),
        (2, "retry", "retrying"),
        (3, "retry", "succeeded"),
    ]
    failed_sessions = AgentSession.objects.filter(status="failed")
    assert failed_sessions.count() == 2
    assert all("CRM unavailable" in s.error_message for s in failed_sessions)


def test_retries_stop_at_max_retries(celery_worker_thread, runner):
    runner("tests.scheduling.runners.FailingUntilAttemptRunner")
    review = make_review(max_retries=1, retry_delay_minutes=0)
    services.review_trigger_on_demand(review.pk)
    wait_for(
        lambda: ScheduleExecution.objects.filter(
            review=review, status=ExecutionStatus.FAILED
        ).exists(),
        what="final failure",
    )
    statuses = list(
        ScheduleExecution.objects.filter(review=review)
        .order_by("attempt")
        .values_list("status", flat=True)
    )
    assert statuses == ["retrying", "failed"]


def test_a_retry_waits_for_its_delay(celery_worker_thread, runner):
    runner("tests.scheduling.runners.FailingUntilAttemptRunner")
    review = make_review(max_retries=3, retry_delay_minutes=5)
    services.review_trigger_on_demand(review.pk)
    retry = wait_for(lambda: ScheduleExecution.objects.filter(review=review, attempt=2).first())
    assert retry.status == ExecutionStatus.QUEUED
    assert retry.enqueued_at is None
    assert timedelta(minutes=4) < retry.due_at - timezone.now() <= timedelta(minutes=5)


def _slow_run(runner, review_kwargs=None):
    runner(RUNNER_BATCH_SIZE=5, SIMULATED_ACCOUNT_MS=40)
    review = make_review(account_filter={"count": 40}, **(review_kwargs or {}))
    execution = services.review_trigger_on_demand(review.pk)
    session_id = wait_for(
        lambda: ScheduleExecution.objects.get(pk=execution.pk).session_id, what="session"
    )
    wait_for(
        lambda: SessionCheckpoint.objects.filter(session_id=session_id).exists(),
        what="first checkpoint",
    )
    return review, execution, session_id


def _no_batch_running(execution_id) -> bool:
    return not RunBatch.objects.filter(execution_id=execution_id, status="running").exists()


def test_pause_stops_the_run_between_batches_and_resume_continues_it(celery_worker_thread, runner):
    review, execution, session_id = _slow_run(runner)
    session_services.session_pause(session_id, actor="staff:ana")
    wait_for(lambda: _no_batch_running(execution.pk), what="the batch in flight to finish")
    time.sleep(0.3)  # pending batches delivered meanwhile find the session paused
    assert _status(execution.pk) == ExecutionStatus.RUNNING  # paused runs still count
    assert RunBatch.objects.filter(execution=execution, status="pending").exists()
    done_at_pause = SessionContext.load(AgentSession.objects.get(pk=session_id).context)
    assert 0 < len(done_at_pause.processed_accounts | done_at_pause.failed_accounts) < 40

    session_services.session_resume(session_id, actor="staff:ana")
    wait_for(lambda: _status(execution.pk) == ExecutionStatus.SUCCEEDED, what="completion")

    session = AgentSession.objects.get(pk=session_id)
    context = SessionContext.load(session.context)
    assert len(context.processed_accounts | context.failed_accounts) == 40
    assert context.current_batch == context.total_batches == 8
    # No account was reviewed twice: one processing time per account.
    assert len(SessionMetrics.load(session.metrics).account_processing_times_ms) == 40
    actions = set(
        AuditEvent.objects.filter(resource=f"review:{review.pk}").values_list("action", flat=True)
    )
    assert {"run_started", "run_continued", "run_succeeded"} <= actions


def test_cancelling_a_paused_run_fails_it_without_retry(celery_worker_thread, runner):
    _review, execution, session_id = _slow_run(runner, {"max_retries": 3})
    session_services.session_pause(session_id)
    wait_for(lambda: _no_batch_running(execution.pk))
    session_services.session_cancel(session_id, actor="staff:ana")
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error == "session cancelled outside the run"
    assert ScheduleExecution.objects.count() == 1
    assert not RunBatch.objects.filter(execution=execution, status__in=["pending", "running"])


def test_cancelling_a_running_run_closes_it_and_the_batch_in_flight_records_nothing(
    celery_worker_thread, runner
):
    _review, execution, session_id = _slow_run(runner, {"max_retries": 3})
    session_services.session_cancel(session_id, actor="staff:ana")
    assert _status(execution.pk) == ExecutionStatus.FAILED
    wait_for(lambda: _no_batch_running(execution.pk), what="the batch in flight")
    versions = AgentSession.objects.get(pk=session_id).version
    time.sleep(0.5)
    assert AgentSession.objects.get(pk=session_id).version == versions
    assert ScheduleExecution.objects.count() == 1


def _run_started_by_hand(review) -> tuple[ScheduleExecution, "services.BatchLease"]:
    """Start a run and claim its first batch as a worker that will die with it; the
    other batches go to the queue when this commits."""
    execution = ScheduleExecution.objects.create(
        review=review,
        review_name=review.name,
        nominal_time=timezone.now(),
        priority=review.priority,
        due_at=timezone.now(),
        enqueued_at=timezone.now(),
    )
    with transaction.atomic():
        services.execution_claim(str(execution.pk))
        first = RunBatch.objects.get(execution=execution, index=0)
        doomed = services.batch_claim(first.pk)
    return execution, doomed


def _record(lease):
    """What a worker that lost its lease would try to record."""
    return services.batch_record(
        lease.batch_id,
        lease.token,
        results=[simulated_result(a, 1, failed=False) for a in lease.accounts],
        agent="zombie",
        actor="worker:zombie",
    )


def test_a_batch_whose_worker_died_is_run_again_after_recovery(celery_worker_thread, runner):
    runner(RUNNER_BATCH_SIZE=5)
    review = make_review(account_filter={"count": 20})
    execution, doomed = _run_started_by_hand(review)
    wait_for(
        lambda: RunBatch.objects.filter(execution=execution, status="done").count() == 3,
        what="the live worker's batches",
    )
    session_id = doomed.run.session_id
    # The dead worker stops heartbeating; stale detection and recovery take over.
    AgentSession.objects.filter(pk=session_id).update(
        last_heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    session_services.sessions_interrupt_stale(timeout_seconds=60)

    assert services.runs_recover_interrupted() == [session_id]
    wait_for(lambda: _status(execution.pk) == ExecutionStatus.SUCCEEDED, what="recovery")

    session = AgentSession.objects.get(pk=session_id)
    assert session.recovery_count == 1
    # Each account counted once: the dead worker's batch never recorded anything.
    assert len(SessionMetrics.load(session.metrics).account_processing_times_ms) == 20
    assert RunBatch.objects.get(execution=execution, index=0).attempts == 2
    assert ScheduleExecution.objects.filter(review=review).count() == 1
    # The dead worker wakes up: its token no longer holds the batch; it records nothing.
    with pytest.raises(LeaseLost) as lost:
        _record(doomed)
    assert lost.value.reason == "taken_over"


def test_a_redelivered_batch_is_taken_over_and_the_old_owner_fenced(runner):
    runner(RUNNER_BATCH_SIZE=5)
    review = make_review(account_filter={"count": 5})
    execution, first_owner = _run_started_by_hand(review)
    batch_id = first_owner.batch_id

    assert services.batch_claim(batch_id) is None  # a plain duplicate is refused
    second_owner = services.batch_claim(batch_id, redelivered=True)  # its worker was lost
    assert second_owner is not None
    assert second_owner.token != first_owner.token

    with pytest.raises(LeaseLost):
        _record(first_owner)
    services.batch_review(second_owner)
    assert _status(execution.pk) == ExecutionStatus.SUCCEEDED
    session = AgentSession.objects.get(executions=execution)
    assert len(SessionMetrics.load(session.metrics).account_processing_times_ms) == 5


def test_a_batch_whose_lease_expired_is_queued_again(runner):
    runner(RUNNER_BATCH_SIZE=5)
    review = make_review(account_filter={"count": 5})
    _execution, owner = _run_started_by_hand(review)
    assert services.batches_expire() == 0
    RunBatch.objects.filter(pk=owner.batch_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.batches_expire() == 1
    batch = RunBatch.objects.get(pk=owner.batch_id)
    assert (batch.status, batch.token) == ("pending", None)
    assert services.batch_claim(batch.pk) is not None


def test_a_buffered_run_starts_when_the_running_one_ends(celery_worker_thread, runner):
    review, execution, _session_id = _slow_run(
        runner,
        {"overlap_policy": "buffer_one", "schedule_type": "interval", "interval_minutes": 60},
    )
    when = timezone.now() - timedelta(seconds=1)
    type(review).objects.filter(pk=review.pk).update(starts_at=when, next_run_at=when)
    services.reviews_dispatch_due()
    held = ScheduleExecution.objects.get(review=review, trigger="schedule")
    assert held.due_at is None
    wait_for(lambda: _status(held.pk) == ExecutionStatus.SUCCEEDED, timeout=60, what="buffered")
    assert _status(execution.pk) == ExecutionStatus.SUCCEEDED
