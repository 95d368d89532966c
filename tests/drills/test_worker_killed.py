"""Drill: a worker is SIGKILLed in the middle of a scheduled review.

Real beat and worker processes. The drill shortens crash detection from minutes to
seconds through the environment (heartbeat timeout 3 s, stale check and recovery every
second); everything else is production behaviour. It checks outcomes, not internals: the
run succeeds exactly once, no account is reviewed twice beyond the batch in flight, the
session's audit trail has no gap.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from scheduling.models import BatchStatus, ExecutionStatus, RunBatch, ScheduleExecution
from scheduling.publishing import RunMessage, publish_runs
from sessions.models import AgentSession, SessionCheckpoint
from sessions.state import SessionContext, SessionMetrics
from tests.scheduling.factories import make_review
from tests.scheduling.test_runs import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.drill]

ACCOUNTS = 60
BATCH = 5
CRASH_DETECTION = {
    "SESSION_HEARTBEAT_TIMEOUT_SECONDS": "3",
    "SESSION_STALE_CHECK_SECONDS": "1",
    "SCHEDULING_RECOVERY_CHECK_SECONDS": "1",
    "SCHEDULING_SIMULATED_ACCOUNT_MS": "40",
    "SCHEDULING_RUNNER_BATCH_SIZE": str(BATCH),
}


def _first_time(session_id: str, action: str):
    event = (
        AuditEvent.objects.filter(session_id=session_id, action=action)
        .order_by("timestamp")
        .first()
    )
    return event.timestamp if event else None


def test_a_worker_killed_mid_review_loses_nothing_and_repeats_only_the_batch_in_flight(
    celery_processes, drill_report
):
    review = make_review(
        name="drill: worker killed",
        schedule_type="interval",
        interval_minutes=60,
        starts_at=timezone.now() + timedelta(seconds=3),
        account_filter={"count": ACCOUNTS},
        max_retries=0,
    )
    celery_processes.beat(**CRASH_DETECTION).wait_for_log("Beat leadership acquired")
    doomed = celery_processes.worker("--pool", "solo", **CRASH_DETECTION)

    run = wait_for(
        lambda: ScheduleExecution.objects.filter(review=review, session__isnull=False).first(),
        timeout=60,
        what="the scheduled run to start",
    )
    session_id = run.session_id
    wait_for(
        lambda: SessionCheckpoint.objects.filter(session_id=session_id).count() >= 3,
        timeout=60,
        what="three checkpoints",
    )
    # Kill it in the middle of a batch: the batch in flight is what a crash can lose.
    wait_for(
        lambda: RunBatch.objects.filter(execution=run, status=BatchStatus.RUNNING).exists(),
        timeout=30,
        what="a batch in flight",
    )
    doomed.kill()
    killed_at = timezone.now()
    checkpoints_at_kill = SessionCheckpoint.objects.filter(session_id=session_id).count()
    drill_report.count("workers killed (SIGKILL)")
    drill_report.note("checkpoints when killed", checkpoints_at_kill)
    assert AgentSession.objects.get(pk=session_id).status == "running"

    survivor = celery_processes.worker("--pool", "solo", **CRASH_DETECTION)
    drill_report.count("workers started after the kill")
    wait_for(
        lambda: ScheduleExecution.objects.get(pk=run.pk).status == ExecutionStatus.SUCCEEDED,
        timeout=120,
        what="the run to succeed on the second worker",
    )

    # A late redelivery of the original message (what the broker does after the
    # visibility timeout) finds the run finished and changes nothing.
    handled = f"run_review[{run.pk}] succeeded"
    handled_before = survivor.log().count(handled)  # the recovery's own continuation
    version_before = AgentSession.objects.get(pk=session_id).version
    publish_runs([RunMessage(str(run.pk), review.priority)])
    wait_for(
        lambda: survivor.log().count(handled) > handled_before,
        timeout=30,
        what="the redelivered message to be handled",
    )
    # The run is finished: the message published no batch and changed nothing.
    assert AgentSession.objects.get(pk=session_id).version == version_before
    drill_report.count("late redeliveries refused")

    session = AgentSession.objects.get(pk=session_id)
    context = SessionContext.load(session.context)
    metrics = SessionMetrics.load(session.metrics)
    executions = list(ScheduleExecution.objects.filter(review=review))
    trail = AuditEvent.objects.filter(session_id=session_id)
    reviews_per_account = Counter(
        trail.filter(action="post_tool").values_list("metadata__account_id", flat=True)
    )
    repeated = {account for account, times in reviews_per_account.items() if times > 1}
    versions = sorted(
        trail.exclude(metadata__version=None).values_list("metadata__version", flat=True)
    )
    interrupted_at = _first_time(session_id, "interrupt")
    recovered_at = _first_time(session_id, "recover")

    drill_report.note("accounts", ACCOUNTS)
    drill_report.note(
        "accounts reviewed (processed + failed)",
        len(context.processed_accounts | context.failed_accounts),
    )
    drill_report.note("account processing times recorded", len(metrics.account_processing_times_ms))
    drill_report.note("accounts reviewed twice (batch in flight)", len(repeated))
    drill_report.note("session recoveries", session.recovery_count)
    drill_report.note(
        "kill -> interrupted", f"{(interrupted_at - killed_at).total_seconds():.1f} s"
    )
    drill_report.note("kill -> recovered", f"{(recovered_at - killed_at).total_seconds():.1f} s")
    drill_report.note(
        "batch attempts",
        sorted(RunBatch.objects.filter(execution=run).values_list("attempts", flat=True)),
    )
    finished_at = ScheduleExecution.objects.get(pk=run.pk).finished_at
    drill_report.note("kill -> succeeded", f"{(finished_at - killed_at).total_seconds():.1f} s")
    drill_report.note("runs of the review", [(e.attempt, e.status) for e in executions])
    drill_report.note("session audit events", trail.count())
    drill_report.note(
        "session versions in the trail", f"1..{versions[-1]} ({len(versions)} events)"
    )

    assert [(e.attempt, e.status) for e in executions] == [(1, ExecutionStatus.SUCCEEDED)]
    assert (
        AuditEvent.objects.filter(resource=f"review:{review.pk}", action="run_succeeded").count()
        == 1
    )
    assert session.status == "completed"
    assert session.recovery_count == 1
    assert context.processed_accounts | context.failed_accounts == set(context.account_ids)
    assert len(context.account_ids) == ACCOUNTS
    # Metrics come back from the checkpoint with the context: one time per account.
    assert len(metrics.account_processing_times_ms) == ACCOUNTS
    assert set(reviews_per_account) == set(context.account_ids)
    assert len(repeated) <= BATCH
    assert versions == list(range(1, session.version + 1))
    assert AgentSession.objects.filter(executions__review=review).count() == 1
