from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from audit.models import AuditEvent
from scheduling import services
from scheduling.exceptions import InvalidSchedule, ReviewNotFound, ReviewStateConflict
from scheduling.models import ExecutionTrigger, ScheduledReview, ScheduleExecution
from scheduling.recurrence import Recurrence
from scheduling.selectors import review_next_runs
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db


class TestCreate:
    def test_a_daily_preset_gets_a_crontab_in_its_timezone_and_a_next_run(self):
        review = make_review(
            time_of_day=time(9, 30), timezone="America/Los_Angeles", actor="staff:ana"
        )
        task = review.periodic_task
        assert task.name == f"review:{review.pk}"
        assert task.task == "scheduling.tasks.fire_review"
        assert task.enabled
        crontab = task.crontab
        assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("30", "9", "*")
        assert str(crontab.timezone) == "America/Los_Angeles"
        assert review.next_run_at == Recurrence.of(review).next_after(review.created_at)
        event = AuditEvent.objects.get(action="review_created")
        assert (event.actor, event.resource) == ("staff:ana", f"review:{review.pk}")

    def test_an_interval_review_gets_an_interval_schedule(self):
        review = make_review(schedule_type="interval", interval_minutes=45)
        interval = review.periodic_task.interval
        assert (interval.every, interval.period) == (45, "minutes")

    def test_a_one_time_review_gets_a_clocked_one_off(self):
        when = timezone.now() + timedelta(days=2)
        review = make_review(schedule_type="one_time", scheduled_time=when)
        assert review.periodic_task.one_off
        assert review.periodic_task.clocked.clocked_time == when
        assert review.next_run_at == when

    def test_a_naive_one_time_is_wall_time_in_the_review_timezone(self):
        review = make_review(
            schedule_type="one_time",
            timezone="Europe/Paris",
            scheduled_time=datetime(2031, 6, 1, 9, 0),
        )
        assert review.next_run_at == datetime(2031, 6, 1, 7, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            (
                {"schedule_type": "cron", "cron_expression": "61 * * * *"},
                "cron_expression",
                "'61 * * * *' is not a valid cron expression: minute 61 is out of range 0-59",
            ),
            ({"timezone": "Not/AZone"}, "timezone", "'Not/AZone' is not an IANA timezone"),
            ({"priority": "urgent"}, "priority", None),
            ({"overlap_policy": "queue"}, "overlap_policy", None),
            ({"max_retries": -1}, "max_retries", None),
            ({"name": "  "}, "name", None),
            ({"account_filter": {"count": "lots"}}, "account_filter", None),
            (
                {"schedule_type": "one_time", "scheduled_time": datetime(2001, 1, 1, tzinfo=UTC)},
                "scheduled_time",
                "scheduled_time is in the past",
            ),
            ({"color": "red"}, "color", None),
        ],
    )
    def test_invalid_reviews_are_refused_with_a_clear_error(self, fields, field, message):
        with pytest.raises(InvalidSchedule) as excinfo:
            make_review(**fields)
        assert excinfo.value.field == field
        if message:
            assert excinfo.value.detail == message
        assert not ScheduledReview.objects.exists()
        assert not PeriodicTask.objects.filter(task="scheduling.tasks.fire_review").exists()


class TestChange:
    def test_changing_the_schedule_updates_the_task_and_the_next_run(self):
        review = make_review()
        updated = services.review_update(
            review.pk,
            changes={
                "schedule_type": "cron",
                "cron_expression": "0 7 * * 1",
                "timezone": "Asia/Tokyo",
            },
            actor="staff:ana",
        )
        crontab = PeriodicTask.objects.get(pk=review.periodic_task_id).crontab
        assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("0", "7", "1")
        assert str(crontab.timezone) == "Asia/Tokyo"
        local = updated.next_run_at.astimezone(ZoneInfo("Asia/Tokyo"))
        assert (local.weekday(), local.hour, local.minute) == (0, 7, 0)
        event = AuditEvent.objects.get(action="review_updated")
        assert event.metadata["changed"] == ["cron_expression", "schedule_type", "timezone"]

    def test_an_invalid_change_leaves_review_and_task_untouched(self):
        review = make_review()
        with pytest.raises(InvalidSchedule):
            services.review_update(review.pk, changes={"timezone": "Mars/Olympus"})
        review.refresh_from_db()
        assert review.timezone == "UTC"
        assert str(review.periodic_task.crontab.timezone) == "UTC"

    def test_read_only_fields_cannot_be_changed(self):
        review = make_review()
        with pytest.raises(InvalidSchedule, match="next_run_at"):
            services.review_update(review.pk, changes={"next_run_at": timezone.now()})

    def test_an_unknown_review_is_not_found(self):
        with pytest.raises(ReviewNotFound):
            services.review_pause(424242)


class TestPauseResume:
    def test_pause_disables_the_task_keeps_the_note_and_resume_restores(self):
        review = make_review()
        paused = services.review_pause(review.pk, note="CRM maintenance", actor="staff:ana")
        assert not paused.enabled
        assert paused.paused_note == "CRM maintenance"
        assert paused.next_run_at is None
        assert not PeriodicTask.objects.get(pk=review.periodic_task_id).enabled
        with pytest.raises(ReviewStateConflict):
            services.review_pause(review.pk)

        resumed = services.review_resume(review.pk, actor="staff:ana")
        assert resumed.enabled
        assert resumed.paused_note == ""
        assert resumed.next_run_at is not None
        assert PeriodicTask.objects.get(pk=review.periodic_task_id).enabled
        with pytest.raises(ReviewStateConflict):
            services.review_resume(review.pk)
        actions = list(
            AuditEvent.objects.filter(resource=f"review:{review.pk}")
            .order_by("timestamp")
            .values_list("action", flat=True)
        )
        assert actions == ["review_created", "review_paused", "review_resumed"]

    def test_resume_fires_a_run_missed_inside_the_catch_up_window_only(self):
        review = make_review(
            schedule_type="interval",
            interval_minutes=60,
            catch_up_window_minutes=30,
            starts_at=timezone.now() - timedelta(hours=5, minutes=10),
        )
        ScheduledReview.objects.filter(pk=review.pk).update(
            enabled=False, paused_at=timezone.now() - timedelta(hours=3), next_run_at=None
        )
        resumed = services.review_resume(review.pk)
        # Runs fell at -4h10, -3h10, -2h10, -1h10 and -0h10: only -0h10 is in the window.
        assert timezone.now() - resumed.next_run_at < timedelta(minutes=11)
        assert resumed.next_run_at < timezone.now()

    def test_resume_after_the_window_waits_for_the_next_run(self):
        review = make_review(
            schedule_type="interval",
            interval_minutes=60,
            catch_up_window_minutes=5,
            starts_at=timezone.now() - timedelta(hours=2, minutes=30),
        )
        ScheduledReview.objects.filter(pk=review.pk).update(
            enabled=False, paused_at=timezone.now() - timedelta(hours=2), next_run_at=None
        )
        resumed = services.review_resume(review.pk)
        assert resumed.next_run_at > timezone.now()


def test_delete_removes_the_task_and_keeps_the_history():
    review = make_review()
    execution = services.review_trigger_on_demand(review.pk)
    task_id = review.periodic_task_id
    services.review_delete(review.pk, actor="staff:ana")
    assert not ScheduledReview.objects.filter(pk=review.pk).exists()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()
    execution.refresh_from_db()
    assert execution.review_id is None
    assert execution.review_name == review.name
    assert AuditEvent.objects.filter(action="review_deleted").exists()


def test_trigger_on_demand_runs_even_a_paused_review():
    review = make_review()
    services.review_pause(review.pk, note="hold")
    execution = services.review_trigger_on_demand(review.pk, actor="staff:ana")
    assert execution.trigger == ExecutionTrigger.ON_DEMAND
    assert execution.status == "queued"
    assert execution.due_at is not None
    event = AuditEvent.objects.get(action="run_queued")
    assert event.actor == "staff:ana"
    assert event.metadata["trigger"] == "on_demand"


def test_next_runs_preview_in_utc_for_a_paused_review_too():
    review = make_review(time_of_day=time(9), timezone="Europe/Paris")
    services.review_pause(review.pk, note="x")
    review.refresh_from_db()
    runs = review_next_runs(review, count=3)
    assert len(runs) == 3
    assert all(run.tzinfo is not None and run.utcoffset() == timedelta(0) for run in runs)
    assert runs[1] - runs[0] == timedelta(days=1) or runs[1] - runs[0] == timedelta(hours=23)


class TestReconcile:
    def test_sync_schedules_repairs_drift_and_reports_it(self, capsys):
        make_review(name="kept")
        edited = make_review(name="edited")
        lost = make_review(name="lost")
        PeriodicTask.objects.filter(pk=edited.periodic_task_id).update(enabled=False, args="[999]")
        PeriodicTask.objects.filter(pk=lost.periodic_task_id).delete()
        PeriodicTask.objects.create(
            name="review:999",
            task="scheduling.tasks.fire_review",
            interval=IntervalSchedule.objects.create(every=5, period="minutes"),
        )

        call_command("sync_schedules", "--dry-run")
        dry = capsys.readouterr().out
        assert "Would create the PeriodicTask of review" in dry
        assert not PeriodicTask.objects.filter(name=f"review:{lost.pk}").exists()

        call_command("sync_schedules")
        out = capsys.readouterr().out
        assert f"Did create the PeriodicTask of review {lost.pk}" in out
        assert f"Did correct the PeriodicTask of review {edited.pk}: args, enabled" in out
        assert "Did delete orphaned PeriodicTask review:999" in out
        assert PeriodicTask.objects.get(name=f"review:{edited.pk}").enabled
        assert not PeriodicTask.objects.filter(name="review:999").exists()

        call_command("sync_schedules")
        assert "in sync" in capsys.readouterr().out
        assert ScheduleExecution.objects.count() == 0
