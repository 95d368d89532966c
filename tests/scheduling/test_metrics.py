"""Scheduling's metrics, read through /metrics: dispatch lag, runs finished, batch
leases, prepared runs left to the single start, the work backlog and the beat's
leadership (the last two read from PostgreSQL at each scrape)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduling import conf, services
from scheduling.beat import BeatLeadership
from scheduling.models import ExecutionStatus, RunBatch, ScheduledReview, ScheduleExecution
from sessions import services as session_services
from tests.scheduling.factories import make_review
from tests.scheduling.test_prepared import _herd, _prepare
from tests.scheduling.test_runs import runner, wait_for  # noqa: F401 (fixture)
from tests.scheduling.test_work_api import QUEUE, start_queue_run
from tests.scrape import scrape, value

pytestmark = pytest.mark.django_db

QUEUE_EXECUTOR = f"queue:{QUEUE}"


def _delta(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.mark.django_db(transaction=True)
def test_a_run_on_a_real_worker_is_counted_from_its_hand_out_to_its_end(
    celery_worker_thread,
    runner,  # noqa: F811
):
    runner(RUNNER_BATCH_SIZE=4, SIMULATED_FAILURE_RATE=0.0)
    before = scrape()
    review = make_review(account_filter={"count": 10})
    execution = services.review_trigger_on_demand(review.pk)

    wait_for(
        lambda: ScheduleExecution.objects.get(pk=execution.pk).status == ExecutionStatus.SUCCEEDED,
        what="the run's success",
    )

    after = scrape()
    assert _delta(before, after, "sergas_dispatch_lag_seconds_count", trigger="on_demand") == 1
    assert (
        _delta(before, after, "sergas_runs_finished_total", outcome="succeeded", executor="worker")
        == 1
    )
    assert _delta(before, after, "sergas_batches_leased_total", executor="worker") == 3
    # The SPEC's metrics of the same run: a task per batch, a tool call per account.
    tool = {"tool_name": "crm.get_account", "agent_name": "simulated-reviewer"}
    assert _delta(before, after, "orchestrator_tool_invocations_total", **tool) == 10


def test_a_scheduled_run_published_late_shows_its_lateness(django_capture_on_commit_callbacks):
    review = make_review(schedule_type="interval", interval_minutes=60)
    late = timezone.now() - timedelta(seconds=30)
    ScheduledReview.objects.filter(pk=review.pk).update(starts_at=late, next_run_at=late)
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        result = services.reviews_dispatch_due()

    assert result.published == 1
    after = scrape()
    assert _delta(before, after, "sergas_dispatch_lag_seconds_count", trigger="schedule") == 1
    assert _delta(before, after, "sergas_dispatch_lag_seconds_sum", trigger="schedule") >= 30
    # 30 s late: in no bucket up to 10 s.
    ten_seconds = {"trigger": "schedule", "le": "10.0"}
    assert _delta(before, after, "sergas_dispatch_lag_seconds_bucket", **ten_seconds) == 0


def test_runs_missed_during_an_outage_are_counted(django_capture_on_commit_callbacks):
    review = make_review(schedule_type="interval", interval_minutes=60)
    long_ago = timezone.now() - timedelta(hours=5, minutes=1)
    ScheduledReview.objects.filter(pk=review.pk).update(
        starts_at=long_ago, next_run_at=long_ago, catch_up_window_minutes=30
    )
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        services.reviews_dispatch_due()

    missed = ScheduleExecution.objects.filter(review=review, status=ExecutionStatus.MISSED)
    assert missed.count() >= 4
    after = scrape()
    finished = {"outcome": "missed", "executor": "worker"}
    assert _delta(before, after, "sergas_runs_finished_total", **finished) == missed.count()


def test_worker_leases_taken_over_after_a_redelivery_are_counted(
    django_capture_on_commit_callbacks,
):
    review = make_review(account_filter={"count": 3})
    with django_capture_on_commit_callbacks(execute=True):
        execution = services.review_trigger_on_demand(review.pk)
        services.execution_claim(str(execution.pk))
    [batch] = RunBatch.objects.filter(execution=execution)
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.batch_claim(batch.pk) is not None
        # Its worker died: Celery redelivers the message to another.
        assert services.batch_claim(batch.pk, redelivered=True) is not None

    after = scrape()
    assert _delta(before, after, "sergas_batches_leased_total", executor="worker") == 1
    assert _delta(before, after, "sergas_batches_taken_over_total", executor="worker") == 1


def test_an_agents_lease_that_runs_out_is_counted_and_its_batch_is_backlog_again(
    settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        start_queue_run(accounts=6, batch_size=2, settings=settings)
    samples = scrape()
    assert value(samples, "sergas_work_pending_batches", executor=QUEUE_EXECUTOR) == 3
    assert value(samples, "sergas_work_oldest_pending_seconds", executor=QUEUE_EXECUTOR) >= 0

    with django_capture_on_commit_callbacks(execute=True):
        lease = services.work_claim(QUEUE, holder="agent-1", actor="agent:a")
    after_claim = scrape()
    assert _delta(samples, after_claim, "sergas_batches_leased_total", executor=QUEUE_EXECUTOR) == 1
    assert value(after_claim, "sergas_work_pending_batches", executor=QUEUE_EXECUTOR) == 2

    # agent-1 is cut off: its lease runs out.
    RunBatch.objects.filter(pk=lease.batch_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.batches_expire(queue=QUEUE) == 1

    after_expiry = scrape()
    expired = "sergas_batch_leases_expired_total"
    assert _delta(after_claim, after_expiry, expired, executor=QUEUE_EXECUTOR) == 1
    assert value(after_expiry, "sergas_work_pending_batches", executor=QUEUE_EXECUTOR) == 3


def test_a_paused_sessions_batches_are_not_backlog(settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _review, execution = start_queue_run(accounts=4, batch_size=2, settings=settings)
    assert value(scrape(), "sergas_work_pending_batches", executor=QUEUE_EXECUTOR) == 2

    session_services.session_pause(execution.session_id)

    samples = scrape()
    assert ("sergas_work_pending_batches", frozenset({("executor", QUEUE_EXECUTOR)})) not in samples


def test_prepared_runs_left_to_the_single_start_are_counted_by_reason(
    django_capture_on_commit_callbacks,
):
    [overlapping] = _prepare(_herd(1, overlap_policy="skip"))
    services.review_trigger_on_demand(overlapping.review_id)
    ScheduleExecution.objects.filter(trigger="on_demand").update(status="running")
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.executions_publish(now=overlapping.due_at) == 1
        services.execution_claim(str(overlapping.pk))

    after = scrape()
    assert _delta(before, after, "sergas_prepared_runs_single_start_total", reason="overlap") == 1
    assert _delta(before, after, "sergas_prepared_runs_bulk_started_total") == 0
    skipped = {"outcome": "skipped_overlap", "executor": "worker"}
    assert _delta(before, after, "sergas_runs_finished_total", **skipped) == 1


def test_prepared_runs_started_in_bulk_are_counted_with_their_dispatch_lag(
    django_capture_on_commit_callbacks,
):
    executions = _prepare(_herd(3))
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.executions_publish(now=max(e.due_at for e in executions)) == 3

    after = scrape()
    assert _delta(before, after, "sergas_prepared_runs_bulk_started_total") == 3
    assert _delta(before, after, "sergas_dispatch_lag_seconds_count", trigger="schedule") == 3


def test_the_beat_holding_the_leadership_lock_is_reported():
    samples = scrape()
    assert value(samples, "sergas_beat_leaders") == 0
    assert not [name for name, _ in samples if name == "sergas_beat_leader_renewed_seconds"]

    leadership = BeatLeadership(conf.beat_lock_key())
    assert leadership.hold()
    try:
        samples = scrape()
        assert value(samples, "sergas_beat_leaders") == 1
        [(labels, held)] = [
            (dict(labels), sample)
            for (name, labels), sample in samples.items()
            if name == "sergas_beat_leader"
        ]
        assert held == 1
        assert labels["address"] == "127.0.0.1" or labels["address"] == "local"
        assert int(labels["backend_pid"]) > 0
        assert value(samples, "sergas_beat_leader_renewed_seconds") >= 0
        # A second beat cannot take it: still one leader.
        standby = BeatLeadership(conf.beat_lock_key())
        assert not standby.hold()
        assert value(scrape(), "sergas_beat_leaders") == 1
    finally:
        leadership.release()
    assert value(scrape(), "sergas_beat_leaders") == 0
