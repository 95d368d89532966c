"""A broker that loses its messages loses no run.

Redis restarted without persistence (the machine's own Redis keeps nothing on disk)
comes back empty: the message of a run published but not yet started, and the messages
of a running run's pending batches, are gone. Beat notices that the marker key vanished
with them and sends again what the runs were waiting for. Beat, a worker and Redis run
as real processes; Redis is killed and started again, empty.
"""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from scheduling.models import BatchStatus, ExecutionStatus, RunBatch, ScheduleExecution
from tests.scheduling.factories import make_review
from tests.scheduling.test_runs import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SETTINGS = {
    "SCHEDULING_DISPATCH_LEAD_SECONDS": "0",
    "SCHEDULING_RUNNER_BATCH_SIZE": "5",
    "SCHEDULING_SIMULATED_ACCOUNT_MS": "100",
    "SCHEDULING_SIMULATED_FAILURE_RATE": "0",
    # What heals the runs here must be the broker check, not stale-session recovery.
    "SESSION_HEARTBEAT_TIMEOUT_SECONDS": "3600",
}


def _due_in(seconds: float, name: str, accounts: int):
    return make_review(
        name=name,
        schedule_type="interval",
        interval_minutes=60,
        starts_at=timezone.now() + timedelta(seconds=seconds),
        account_filter={"count": accounts},
        max_retries=0,
    )


def _wait_for_resent(what: str, **counts: int) -> None:
    """Until beat has recorded sending again runs in these counts (``queued_runs=1``)."""

    def recorded() -> bool:
        events = AuditEvent.objects.filter(action="broker_messages_resent")
        return any(
            all(metadata[key] == value for key, value in counts.items())
            for metadata in events.values_list("metadata", flat=True)
        )

    wait_for(recorded, timeout=30, what=what)


def _wait_for_one_success(review, what: str) -> None:
    wait_for(
        lambda: [r.status for r in _runs(review)] == [ExecutionStatus.SUCCEEDED],
        timeout=90,
        what=what,
    )


def _runs(review) -> list[ScheduleExecution]:
    return list(ScheduleExecution.objects.filter(review=review))


def _wipe(redis) -> None:
    redis.stop()  # killed: whatever it held is gone
    redis.start()


def test_runs_whose_messages_a_redis_restart_lost_are_sent_again_and_run_once(
    private_redis, celery_processes
):
    prefix = f"broker-loss-{uuid.uuid4().hex[:8]}"
    env = {
        "REDIS_URL": private_redis.url,
        "CACHE_KEY_PREFIX": prefix,
        "SESSION_CACHE_KEY_PREFIX": prefix,
        **SETTINGS,
    }
    beat = celery_processes.beat(**env)
    beat.wait_for_log("Beat leadership acquired")

    # 1. Published while no worker runs, then lost.
    waiting = _due_in(1, "published, then lost", accounts=5)
    wait_for(
        lambda: ScheduleExecution.objects.filter(review=waiting, enqueued_at__isnull=False).first(),
        timeout=30,
        what="the run to be published",
    )
    _wipe(private_redis)
    _wait_for_resent("beat to send the lost run again", queued_runs=1)
    celery_processes.worker("--pool", "solo", **env)
    _wait_for_one_success(waiting, "the lost run to succeed")

    # 2. Lost in the middle of its batches (8 batches of 5 accounts, 0.5 s each).
    busy = _due_in(1, "batches lost mid-run", accounts=40)
    run = wait_for(
        lambda: ScheduleExecution.objects.filter(
            review=busy, status=ExecutionStatus.RUNNING
        ).first(),
        timeout=30,
        what="the second run to start",
    )
    wait_for(
        lambda: RunBatch.objects.filter(execution=run, status=BatchStatus.DONE).count() >= 2,
        timeout=30,
        what="two batches done",
    )
    _wipe(private_redis)
    _wait_for_resent("beat to hand the running run to the workers again", running_runs=1)
    _wait_for_one_success(busy, "the interrupted run to succeed")

    [waiting_run] = _runs(waiting)
    assert waiting_run.attempt == 1
    batches = list(RunBatch.objects.filter(execution=run).order_by("index"))
    assert [batch.status for batch in batches] == [BatchStatus.DONE] * 8
    # Only a batch in flight at the wipe may have run twice.
    assert sum(batch.attempts for batch in batches) <= 9
    run.refresh_from_db()
    assert run.session.status == "completed"
    assert run.accounts_processed == 40
