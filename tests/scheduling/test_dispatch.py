"""The dispatcher: due reviews become runs exactly once, with overlap and catch-up rules."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from scheduling import services
from scheduling.models import ExecutionStatus, ScheduledReview, ScheduleExecution
from scheduling.publishing import broker_marker_key, broker_marker_missing, broker_marker_set
from scheduling.tasks import fire_review
from sergas.celery import app
from sessions import services as session_services
from tests.conftest import purge_test_queues
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db


def _due(review: ScheduledReview, ago: timedelta = timedelta(seconds=1)) -> ScheduledReview:
    """Make the (interval) review's next run fall ``ago`` in the past, anchored there."""
    when = timezone.now() - ago
    ScheduledReview.objects.filter(pk=review.pk).update(starts_at=when, next_run_at=when)
    review.refresh_from_db()
    return review


def _interval_review(**fields) -> ScheduledReview:
    fields.setdefault("schedule_type", "interval")
    fields.setdefault("interval_minutes", 60)
    return make_review(**fields)


def test_a_due_review_becomes_one_published_run_and_moves_on(review_queue_length):
    review = _due(_interval_review())
    nominal = review.next_run_at

    result = services.reviews_dispatch_due()

    assert (result.queued, result.published, result.reviews) == (1, 1, 1)
    execution = ScheduleExecution.objects.get(review=review)
    assert execution.status == ExecutionStatus.QUEUED
    assert execution.nominal_time == nominal
    assert execution.enqueued_at is not None
    assert execution.priority == review.priority
    review.refresh_from_db()
    assert review.next_run_at == nominal + timedelta(minutes=60)
    assert review_queue_length() == 1
    event = AuditEvent.objects.get(action="run_queued")
    assert event.metadata["execution_id"] == str(execution.pk)


def test_dispatching_again_makes_no_second_run(review_queue_length):
    _due(_interval_review())
    services.reviews_dispatch_due()
    again = services.reviews_dispatch_due()
    assert again.reviews == 0
    assert ScheduleExecution.objects.count() == 1
    assert review_queue_length() == 1


def test_the_periodic_task_of_a_review_dispatches_it_through_the_same_path():
    review = _due(_interval_review())
    assert fire_review(review.pk) == 1
    assert fire_review(review.pk) == 0
    assert ScheduleExecution.objects.filter(review=review).count() == 1


def test_a_review_not_yet_due_is_left_alone():
    _interval_review()
    assert services.reviews_dispatch_due().reviews == 0


class TestOverlap:
    def _running(self, review: ScheduledReview) -> ScheduleExecution:
        return ScheduleExecution.objects.create(
            review=review,
            review_name=review.name,
            nominal_time=timezone.now(),
            status=ExecutionStatus.RUNNING,
            priority=review.priority,
        )

    def test_skip_records_the_run_as_skipped_not_silently_dropped(self):
        review = _interval_review(overlap_policy="skip")
        self._running(review)
        _due(review)
        result = services.reviews_dispatch_due()
        assert (result.queued, result.skipped) == (0, 1)
        skipped = ScheduleExecution.objects.get(status=ExecutionStatus.SKIPPED_OVERLAP)
        assert skipped.error == "a previous run was still active"
        assert AuditEvent.objects.filter(action="run_skipped_overlap").count() == 1

    def test_buffer_one_holds_one_run_and_skips_the_next(self, review_queue_length):
        review = _interval_review(overlap_policy="buffer_one")
        self._running(review)
        _due(review)
        services.reviews_dispatch_due()
        held = ScheduleExecution.objects.get(status=ExecutionStatus.QUEUED)
        assert held.due_at is None  # waits for the running one
        assert review_queue_length() == 0
        _due(review)
        services.reviews_dispatch_due()
        assert ScheduleExecution.objects.filter(status=ExecutionStatus.SKIPPED_OVERLAP).count() == 1

    def test_allow_runs_concurrently(self):
        review = _interval_review(overlap_policy="allow")
        self._running(review)
        _due(review)
        assert services.reviews_dispatch_due().queued == 1


class TestCatchUp:
    def test_runs_older_than_the_window_are_recorded_missed_and_the_latest_runs(self):
        start = timezone.now() - timedelta(hours=3, minutes=10)
        review = _interval_review(starts_at=start, catch_up_window_minutes=30)
        ScheduledReview.objects.filter(pk=review.pk).update(next_run_at=start)
        result = services.reviews_dispatch_due()
        # Due at -3h10, -2h10, -1h10, -0h10: three missed, the last one runs.
        assert (result.missed, result.queued) == (3, 1)
        queued = ScheduleExecution.objects.get(status=ExecutionStatus.QUEUED)
        assert timezone.now() - queued.nominal_time < timedelta(minutes=11)
        missed = ScheduleExecution.objects.filter(status=ExecutionStatus.MISSED)
        assert all("catch-up window" in m.error for m in missed)
        review.refresh_from_db()
        assert review.next_run_at > timezone.now()

    def test_with_no_window_a_late_run_is_missed(self):
        review = _due(_interval_review(catch_up_window_minutes=0), ago=timedelta(minutes=2))
        result = services.reviews_dispatch_due()
        assert (result.missed, result.queued) == (1, 0)
        assert review.executions.get().status == ExecutionStatus.MISSED

    def test_a_long_outage_records_a_bounded_number_of_missed_runs(self, settings):
        settings.SERGAS_SCHEDULING = {**settings.SERGAS_SCHEDULING, "MISSED_RUNS_RECORDED_MAX": 5}
        start = timezone.now() - timedelta(days=2)
        review = _interval_review(interval_minutes=1, starts_at=start, catch_up_window_minutes=1)
        ScheduledReview.objects.filter(pk=review.pk).update(next_run_at=start)
        result = services.reviews_dispatch_due()
        assert result.missed <= 5 + 1
        assert result.queued == 1


def test_retries_and_held_runs_wait_in_the_outbox_until_due(review_queue_length):
    review = _interval_review()
    later = ScheduleExecution.objects.create(
        review=review,
        review_name=review.name,
        nominal_time=timezone.now(),
        priority=review.priority,
        due_at=timezone.now() + timedelta(minutes=5),
    )
    assert services.executions_publish() == 0
    assert services.executions_publish(now=timezone.now() + timedelta(minutes=6)) == 1
    later.refresh_from_db()
    assert later.enqueued_at is not None
    assert review_queue_length() == 1


@pytest.mark.django_db(transaction=True)
def test_racing_dispatchers_create_each_run_exactly_once(run_concurrently, review_queue_length):
    reviews = [_interval_review(name=f"r{i}") for i in range(120)]
    when = timezone.now() - timedelta(seconds=1)
    ScheduledReview.objects.update(starts_at=when, next_run_at=when)
    results = run_concurrently([services.reviews_dispatch_due] * 4)
    assert all(not isinstance(result, Exception) for result in results), results
    assert sum(result.queued for result in results) == 120
    assert ScheduleExecution.objects.count() == 120
    assert set(ScheduleExecution.objects.values_list("review_id", flat=True)) == {
        r.pk for r in reviews
    }
    assert review_queue_length() == 120


def test_due_reviews_are_taken_most_urgent_first(settings):
    settings.SERGAS_SCHEDULING = {**settings.SERGAS_SCHEDULING, "DISPATCH_BATCH_SIZE": 2}
    low = _interval_review(name="low", priority="low")
    critical = _interval_review(name="critical", priority="critical")
    medium = _interval_review(name="medium", priority="medium")
    when = timezone.now() - timedelta(seconds=1)
    ScheduledReview.objects.update(starts_at=when, next_run_at=when)
    services.reviews_dispatch_due()
    order = list(
        ScheduleExecution.objects.order_by("created_at").values_list("review_id", flat=True)
    )
    assert order == [critical.pk, medium.pk, low.pk]


class TestAheadOfTime:
    def test_a_run_due_within_the_lead_is_queued_ahead_and_published_when_due(
        self, review_queue_length
    ):
        review = _due(_interval_review(), ago=timedelta(seconds=-5))  # due in 5 s
        result = services.reviews_dispatch_due()
        assert (result.queued, result.published) == (1, 0)
        prepared = review.executions.get()
        assert prepared.due_at == prepared.nominal_time == review.next_run_at
        assert prepared.enqueued_at is None
        assert services.executions_publish() == 0
        assert review_queue_length() == 0
        assert services.executions_publish(now=prepared.due_at) == 1
        assert review_queue_length() == 1
        review.refresh_from_db()
        assert review.next_run_at == prepared.nominal_time + timedelta(minutes=60)

    def test_a_review_with_an_active_run_is_not_prepared_ahead(self):
        review = _due(_interval_review(), ago=timedelta(seconds=-5))
        ScheduleExecution.objects.create(
            review=review,
            review_name=review.name,
            nominal_time=timezone.now(),
            status=ExecutionStatus.RUNNING,
            priority=review.priority,
        )
        assert services.reviews_dispatch_due().reviews == 0
        assert review.executions.count() == 1

    def test_pausing_withdraws_a_run_prepared_ahead(self):
        review = _due(_interval_review(), ago=timedelta(seconds=-5))
        services.reviews_dispatch_due()
        services.review_pause(review.pk, note="stop", actor="staff:ana")
        assert not review.executions.exists()
        assert AuditEvent.objects.filter(action="run_unscheduled").count() == 1

    def test_a_prepared_run_that_finds_its_review_running_follows_the_overlap_policy(self):
        review = _due(_interval_review(overlap_policy="skip"), ago=timedelta(seconds=-5))
        services.reviews_dispatch_due()
        prepared = review.executions.get()
        services.review_trigger_on_demand(review.pk)
        ScheduleExecution.objects.filter(trigger="on_demand").update(status="running")
        assert services.execution_claim(str(prepared.pk)) == 0
        prepared.refresh_from_db()
        assert prepared.status == ExecutionStatus.SKIPPED_OVERLAP


def test_after_a_broker_loss_published_runs_return_to_the_outbox_and_running_ones_resume(
    review_queue_length,
):
    published, running, paused = (
        _due(_interval_review(name=name)) for name in ("published", "running", "paused")
    )
    services.reviews_dispatch_due()
    for review in (running, paused):
        services.execution_claim(str(ScheduleExecution.objects.get(review=review).pk))
    paused_run = ScheduleExecution.objects.get(review=paused)
    session_services.session_pause(paused_run.session_id, reason="staff look")
    purge_test_queues()  # the broker restarted empty

    recovery = services.runs_resend_after_broker_loss()

    assert (recovery.queued, recovery.running) == (1, 1)
    lost = ScheduleExecution.objects.get(review=published)
    assert lost.status == ExecutionStatus.QUEUED
    assert lost.enqueued_at is None  # back in the outbox
    assert review_queue_length() == 1  # the running run's message; the paused one waits
    event = AuditEvent.objects.get(action="broker_messages_resent")
    assert event.metadata == {"queued_runs": 1, "running_runs": 1}
    assert services.executions_publish() == 1
    assert review_queue_length() == 2


def test_with_nothing_to_send_again_a_broker_loss_records_nothing():
    recovery = services.runs_resend_after_broker_loss()

    assert (recovery.queued, recovery.running) == (0, 0)
    assert not AuditEvent.objects.filter(action="broker_messages_resent").exists()


def test_the_broker_marker_goes_missing_with_the_queues_and_comes_back_when_set():
    with app.connection_for_write() as connection:
        # What a restart without persistence or a FLUSHDB does to it:
        connection.default_channel.client.delete(broker_marker_key())
    assert broker_marker_missing()
    broker_marker_set()
    assert not broker_marker_missing()
