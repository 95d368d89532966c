"""The schedules pages: list, detail with next runs and history, controls, edit."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from scheduling import services
from scheduling.exceptions import INVALID_CRON
from scheduling.models import ExecutionStatus, ScheduledReview, ScheduleExecution
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db

LIST = reverse("dashboard:schedules")


def page(review_id: int) -> str:
    return reverse("dashboard:schedule", args=[review_id])


def control(review_id: int, action: str) -> str:
    return reverse("dashboard:schedule_control", args=[review_id, action])


def review_events(review_id: int) -> list[tuple[str, str]]:
    return list(
        AuditEvent.objects.filter(resource=f"review:{review_id}")
        .order_by("timestamp")
        .values_list("action", "actor")
    )


def run(review: ScheduledReview, status: str, *, minutes_ago: int, lag_ms: int | None = None):
    nominal = timezone.now() - timedelta(minutes=minutes_ago)
    return ScheduleExecution.objects.create(
        review=review,
        review_name=review.name,
        nominal_time=nominal,
        status=status,
        priority=review.priority,
        start_lag_ms=lag_ms,
        started_at=nominal + timedelta(milliseconds=lag_ms) if lag_ms is not None else None,
    )


class TestList:
    def test_shows_each_review_in_words_with_next_run_and_last_outcome(self, viewer_client):
        review = make_review(name="EMEA daily", timezone="Europe/Paris")
        run(review, ExecutionStatus.FAILED, minutes_ago=60)
        run(review, ExecutionStatus.SUCCEEDED, minutes_ago=5)
        make_review(name="Never ran")
        response = viewer_client.get(LIST)
        rows = {r.name: (r, description) for r, description in response.context["rows"]}
        assert rows["EMEA daily"][1] == "At 09:00 AM (Europe/Paris)"
        assert rows["EMEA daily"][0].last_run_status == "succeeded"
        assert rows["Never ran"][0].last_run_status is None
        assert b"never ran" in response.content

    def test_filters_by_name_state_type_and_priority(self, viewer_client):
        make_review(name="Alpha", priority="high")
        beta = make_review(name="Beta", schedule_type="interval", interval_minutes=10)
        services.review_pause(beta.pk, note="hold")

        def names(**query: str) -> list[str]:
            return [r.name for r, _ in viewer_client.get(LIST, query).context["rows"]]

        assert names() == ["Alpha", "Beta"]
        assert names(name="alp") == ["Alpha"]
        assert names(state="paused") == ["Beta"]
        assert names(schedule_type="interval") == ["Beta"]
        assert names(priority="high") == ["Alpha"]

    def test_the_list_makes_the_same_queries_for_few_or_many_reviews(
        self, viewer_client, count_queries
    ):
        first = make_review(name="R0")
        run(first, ExecutionStatus.SUCCEEDED, minutes_ago=1)
        few = count_queries(viewer_client, LIST)
        for i in range(1, 8):
            run(make_review(name=f"R{i}"), ExecutionStatus.FAILED, minutes_ago=i)
        assert count_queries(viewer_client, LIST) == few
        assert few <= 6


class TestDetail:
    def test_shows_the_next_runs_in_the_reviews_timezone(self, viewer_client):
        review = make_review(time_of_day=time(9, 0), timezone="America/New_York")
        response = viewer_client.get(page(review.pk))
        runs = response.context["next_runs"]
        assert len(runs) == 10
        utc, local = runs[0]
        assert "09:00 E" in local  # EST or EDT
        assert utc.astimezone(UTC).hour in (13, 14)
        assert b"At 09:00 AM (America/New_York)" in response.content

    def test_shows_the_run_history_with_lag_and_outcome_filterable_by_status(
        self, viewer_client, settings
    ):
        settings.SERGAS_DASHBOARD = {"LATE_RUN_SECONDS": 60}
        review = make_review()
        run(review, ExecutionStatus.SUCCEEDED, minutes_ago=30, lag_ms=90_000)
        run(review, ExecutionStatus.MISSED, minutes_ago=10)
        response = viewer_client.get(page(review.pk))
        statuses = [r.status for r in response.context["runs"].items]
        assert statuses == ["missed", "succeeded"]
        assert b'class="badge s-late">1.5 min' not in response.content  # formatted as below
        assert b'<span class="badge s-late">1 min 30 s</span>' in response.content
        filtered = viewer_client.get(page(review.pk), {"status": "missed"})
        assert [r.status for r in filtered.context["runs"].items] == ["missed"]

    def test_the_history_fragment_is_live_on_the_first_page_only(self, viewer_client):
        review = make_review()
        fragment = viewer_client.get(reverse("dashboard:schedule_runs", args=[review.pk]))
        assert b"hx-trigger" in fragment.content
        assert b"<html" not in fragment.content
        deeper = viewer_client.get(page(review.pk), {"cursor": "x"})
        assert deeper.context["live"] is False

    def test_the_detail_makes_the_same_queries_however_long_the_history(
        self, viewer_client, count_queries
    ):
        review = make_review()
        short = count_queries(viewer_client, page(review.pk))
        for minutes in range(1, 12):
            run(review, ExecutionStatus.SUCCEEDED, minutes_ago=minutes, lag_ms=10)
        assert count_queries(viewer_client, page(review.pk)) == short
        assert short <= 6

    def test_an_unknown_review_is_a_404(self, viewer_client):
        assert viewer_client.get(page(999_999)).status_code == 404


class TestControls:
    def test_controls_match_the_reviews_state(self, operator_client):
        review = make_review()
        names = [c.name for c in operator_client.get(page(review.pk)).context["controls"]]
        assert names == ["trigger", "pause", "delete"]
        services.review_pause(review.pk, note="x")
        names = [c.name for c in operator_client.get(page(review.pk)).context["controls"]]
        assert names == ["trigger", "resume", "delete"]

    def test_triggering_queues_a_run_that_the_history_shows(self, operator_client):
        review = make_review()
        response = operator_client.post(control(review.pk, "trigger"), follow=True)
        runs = response.context["runs"].items
        assert [(r.trigger, r.status) for r in runs] == [("on_demand", "queued")]
        assert "Run queued for" in response.content.decode()
        assert review_events(review.pk)[-1] == ("run_queued", "staff:olivia")

    def test_pausing_keeps_the_note_and_resuming_clears_it(self, operator_client):
        review = make_review()
        confirm = operator_client.get(control(review.pk, "pause"))
        assert b'name="note"' in confirm.content
        operator_client.post(control(review.pk, "pause"), {"note": "CRM migration"})
        review.refresh_from_db()
        assert (review.enabled, review.paused_note) == (False, "CRM migration")
        response = operator_client.post(control(review.pk, "pause"), follow=True)
        assert f"Review {review.pk} is already paused." in response.content.decode()
        operator_client.post(control(review.pk, "resume"))
        review.refresh_from_db()
        assert (review.enabled, review.paused_note) == (True, "")
        assert review_events(review.pk)[-2:] == [
            ("review_paused", "staff:olivia"),
            ("review_resumed", "staff:olivia"),
        ]

    def test_deleting_asks_first_then_returns_to_the_list(self, operator_client):
        review = make_review(name="Doomed")
        assert b"Delete review" in operator_client.get(control(review.pk, "delete")).content
        response = operator_client.post(control(review.pk, "delete"), follow=True)
        assert response.redirect_chain[-1][0] == LIST
        assert not ScheduledReview.objects.filter(pk=review.pk).exists()
        assert review_events(review.pk)[-1] == ("review_deleted", "staff:olivia")


class TestEdit:
    def test_an_invalid_cron_is_refused_with_the_apis_message_on_its_field(self, operator_client):
        review = make_review()
        url = reverse("dashboard:schedule_edit", args=[review.pk])
        form = operator_client.get(url).context["form"]
        data = {name: form[name].value() or "" for name in form.fields}
        data.update(schedule_type="cron", cron_expression="61 * * * *", account_filter="{}")
        response = operator_client.post(url, data)
        expected = INVALID_CRON.format(
            expression="61 * * * *", reason="minute 61 is out of range 0-59"
        )
        assert response.status_code == 200
        assert response.context["form"].errors["cron_expression"] == [expected]
        review.refresh_from_db()
        assert review.schedule_type == "daily"

    def test_a_valid_edit_goes_through_the_service_and_recomputes_the_next_run(
        self, operator_client
    ):
        review = make_review(time_of_day=time(9, 0))
        url = reverse("dashboard:schedule_edit", args=[review.pk])
        form = operator_client.get(url).context["form"]
        data = {name: form[name].value() for name in form.fields}
        data = {k: ("" if v is None else v) for k, v in data.items()}
        data.update(time_of_day="17:45", account_filter='{"count": 3}', metadata="{}")
        response = operator_client.post(url, data, follow=True)
        assert response.redirect_chain[-1][0] == page(review.pk)
        assert "Saved: time_of_day." in response.content.decode()
        review.refresh_from_db()
        assert review.time_of_day == time(17, 45)
        assert review.next_run_at.astimezone(UTC).time() == time(17, 45)
        assert review_events(review.pk)[-1] == ("review_updated", "staff:olivia")

    def test_a_one_time_review_is_created_in_its_own_timezone(self, operator_client):
        response = operator_client.post(
            reverse("dashboard:schedule_new"),
            {
                "name": "Tokyo one-off",
                "owner_id": "owner_7",
                "schedule_type": "one_time",
                "scheduled_time": "2099-01-02T09:30",
                "starts_at": "2026-01-01T00:00",
                "timezone": "Asia/Tokyo",
                "priority": "high",
                "max_retries": 3,
                "retry_delay_minutes": 5,
                "overlap_policy": "skip",
                "catch_up_window_minutes": 30,
                "account_filter": '{"count": 2}',
                "metadata": "{}",
            },
            follow=True,
        )
        review = ScheduledReview.objects.get(name="Tokyo one-off")
        assert response.redirect_chain[-1][0] == page(review.pk)
        assert review.scheduled_time == datetime(2099, 1, 2, 0, 30, tzinfo=UTC)
        assert review_events(review.pk) == [("review_created", "staff:olivia")]
