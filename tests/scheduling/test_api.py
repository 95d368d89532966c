"""/api/v1/schedules: the same services as the admin, through the agents' API."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from audit.models import AuditEvent
from scheduling.models import ScheduledReview, ScheduleExecution
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db

DAILY = {
    "name": "EMEA daily",
    "owner_id": "owner_1",
    "schedule_type": "daily",
    "time_of_day": "09:30",
    "timezone": "Europe/Paris",
    "account_filter": {"count": 5},
}


def test_create_returns_the_review_with_its_next_run_and_description(agent_api):
    api = agent_api("write", name="planner")
    response = api.post("/schedules", DAILY)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["description"] == "At 09:30 AM (Europe/Paris)"
    assert body["next_run_at"] is not None
    review = ScheduledReview.objects.get(pk=body["id"])
    assert review.periodic_task is not None
    assert AuditEvent.objects.get(action="review_created").actor == "agent:planner"


@pytest.mark.parametrize(
    ("changes", "field", "detail"),
    [
        (
            {"schedule_type": "cron", "cron_expression": "61 * * * *"},
            "cron_expression",
            "'61 * * * *' is not a valid cron expression: minute 61 is out of range 0-59",
        ),
        ({"timezone": "Not/AZone"}, "timezone", "'Not/AZone' is not an IANA timezone"),
        ({"time_of_day": None}, "time_of_day", "a daily schedule needs a time_of_day"),
    ],
)
def test_an_invalid_definition_is_a_422_naming_the_field(agent_api, changes, field, detail):
    response = agent_api().post("/schedules", {**DAILY, **changes})
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert response.json()["detail"] == detail
    assert not ScheduledReview.objects.exists()


def test_a_wrongly_typed_field_is_a_422_too(agent_api):
    response = agent_api().post("/schedules", {**DAILY, "max_retries": "three"})
    assert response.status_code == 422
    assert response.json()["field"] == "max_retries"


def test_list_and_detail_need_only_read(agent_api):
    for index in range(3):
        make_review(name=f"r{index}")
    reader = agent_api("read")
    page = reader.get("/schedules", {"limit": 2}).json()
    assert [item["name"] for item in page["items"]] == ["r0", "r1"]
    rest = reader.get("/schedules", {"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [item["name"] for item in rest["items"]] == ["r2"]
    assert rest["next_cursor"] is None
    assert reader.post("/schedules", DAILY).status_code == 403


def test_update_changes_the_schedule_and_the_beat_entry(agent_api):
    review = make_review()
    response = agent_api().patch(f"/schedules/{review.pk}", {"time_of_day": "07:15"})
    assert response.status_code == 200
    assert response.json()["time_of_day"] == "07:15:00"
    crontab = PeriodicTask.objects.get(pk=review.periodic_task_id).crontab
    assert (crontab.hour, crontab.minute) == ("7", "15")


def test_pause_with_a_note_resume_and_the_conflicts(agent_api):
    review = make_review()
    api = agent_api()
    paused = api.post(f"/schedules/{review.pk}/pause", {"note": "CRM migration"}).json()
    assert (paused["enabled"], paused["paused_note"]) == (False, "CRM migration")
    again = api.post(f"/schedules/{review.pk}/pause", {"note": "x"})
    assert again.status_code == 409
    assert again.json()["code"] == "review_state_conflict"
    resumed = api.post(f"/schedules/{review.pk}/resume").json()
    assert resumed["enabled"] is True


def test_trigger_runs_a_paused_review_now(agent_api):
    review = make_review()
    api = agent_api(name="ops-bot")
    api.post(f"/schedules/{review.pk}/pause", {"note": "hold"})
    response = api.post(f"/schedules/{review.pk}/trigger")
    assert response.status_code == 202
    run = response.json()
    assert (run["trigger"], run["status"]) == ("on_demand", "queued")
    assert ScheduleExecution.objects.filter(pk=run["id"]).exists()


def test_next_runs_in_utc_and_in_the_reviews_timezone(agent_api):
    review = make_review(timezone="America/Los_Angeles")
    body = agent_api("read").get(f"/schedules/{review.pk}/next-runs", {"count": 3}).json()
    assert body["timezone"] == "America/Los_Angeles"
    assert len(body["runs"]) == 3
    assert all(local.startswith(local[:4]) and "T09:00:00-0" in local for local in body["local"])
    too_many = agent_api("read").get(f"/schedules/{review.pk}/next-runs", {"count": 1000})
    assert too_many.status_code == 422


def test_executions_page_newest_first_with_a_status_filter(agent_api):
    review = make_review()
    now = timezone.now()
    for minutes, status in ((3, "succeeded"), (2, "failed"), (1, "succeeded")):
        ScheduleExecution.objects.create(
            review=review,
            review_name=review.name,
            nominal_time=now - timedelta(minutes=minutes),
            status=status,
            priority=review.priority,
        )
    api = agent_api("read")
    items = api.get(f"/schedules/{review.pk}/executions").json()["items"]
    assert [item["status"] for item in items] == ["succeeded", "failed", "succeeded"]
    failed = api.get(f"/schedules/{review.pk}/executions", {"status": "failed"}).json()["items"]
    assert len(failed) == 1


def test_delete_is_204_and_then_404(agent_api):
    review = make_review()
    api = agent_api()
    assert api.delete(f"/schedules/{review.pk}").status_code == 204
    missing = api.get(f"/schedules/{review.pk}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "review_not_found"


class TestIdempotencyKeys:
    def test_a_retried_trigger_with_its_key_starts_one_run(self, agent_api):
        api = agent_api()
        review = make_review()
        first = api.post(f"/schedules/{review.pk}/trigger", idempotency_key="run-1")
        again = api.post(f"/schedules/{review.pk}/trigger", idempotency_key="run-1")
        assert (first.status_code, again.status_code) == (202, 202)
        assert first.json() == again.json()
        assert (first["Idempotent-Replayed"], again["Idempotent-Replayed"]) == ("false", "true")
        assert ScheduleExecution.objects.filter(review=review, trigger="on_demand").count() == 1
        assert AuditEvent.objects.filter(action="run_queued").count() == 1

    def test_a_new_key_is_a_new_run(self, agent_api):
        api = agent_api()
        review = make_review()
        for key in ("run-1", "run-2"):
            assert (
                api.post(f"/schedules/{review.pk}/trigger", idempotency_key=key).status_code == 202
            )
        assert ScheduleExecution.objects.filter(review=review).count() == 2

    def test_a_retried_create_with_its_key_creates_one_review(self, agent_api):
        api = agent_api()
        first = api.post("/schedules", DAILY, idempotency_key="create-1")
        again = api.post("/schedules", DAILY, idempotency_key="create-1")
        assert (first.status_code, again.status_code) == (201, 201)
        assert first.json() == again.json()
        assert ScheduledReview.objects.count() == 1

    def test_the_key_of_one_review_cannot_trigger_another(self, agent_api):
        api = agent_api()
        one, other = make_review(name="one"), make_review(name="other")
        api.post(f"/schedules/{one.pk}/trigger", idempotency_key="k")
        refused = api.post(f"/schedules/{other.pk}/trigger", idempotency_key="k")
        assert refused.status_code == 422
        assert refused.json()["code"] == "idempotency_key_reused"
        assert not ScheduleExecution.objects.filter(review=other).exists()

    def test_a_retried_pause_replays_instead_of_a_conflict(self, agent_api):
        api = agent_api()
        review = make_review()
        body = {"note": "maintenance"}
        first = api.post(f"/schedules/{review.pk}/pause", body, idempotency_key="p")
        again = api.post(f"/schedules/{review.pk}/pause", body, idempotency_key="p")
        assert (first.status_code, again.status_code) == (200, 200)
        assert again["Idempotent-Replayed"] == "true"
        assert api.post(f"/schedules/{review.pk}/pause", body).status_code == 409
