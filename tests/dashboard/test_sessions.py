"""The sessions pages: list with filters, detail, controls through the services."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from dashboard.forms import CONTEXT_NOT_AN_OBJECT
from sessions import services
from sessions.exceptions import INVALID_TRANSITION
from sessions.models import AgentSession
from tests.factories import make_session

pytestmark = pytest.mark.django_db

LIST = reverse("dashboard:sessions")


def detail(session_id: str) -> str:
    return reverse("dashboard:session", args=[session_id])


def control(session_id: str, action: str) -> str:
    return reverse("dashboard:session_control", args=[session_id, action])


def listed(response) -> list[str]:
    return [session.session_id for session in response.context["page"].items]


class TestList:
    def test_filters_by_status_type_owner_account_and_id(self, viewer_client):
        running = make_session("running", owner_id="owner_a", account_ids=["acct_9"])
        paused = make_session("paused", owner_id="owner_b", session_type="on_demand")
        failed = make_session("failed", owner_id="owner_a")

        def ids(**query: str | list[str]) -> set[str]:
            return set(listed(viewer_client.get(LIST, query)))

        assert ids() == {running.session_id, paused.session_id, failed.session_id}
        assert ids(status=["running", "failed"]) == {running.session_id, failed.session_id}
        assert ids(owner_id="owner_a") == {running.session_id, failed.session_id}
        assert ids(account_id="acct_9") == {running.session_id}
        assert ids(session_type="on_demand") == {paused.session_id}
        assert ids(session_id=paused.session_id) == {paused.session_id}

    def test_filters_by_what_the_context_contains(self, viewer_client):
        emea = make_session("running", context={"metadata": {"region": "emea"}})
        make_session("running", context={"metadata": {"region": "apac"}})
        response = viewer_client.get(LIST, {"context": '{"metadata": {"region": "emea"}}'})
        assert listed(response) == [emea.session_id]

    @pytest.mark.parametrize("text", ["{oops", "[1]"])
    def test_a_context_filter_that_is_not_a_json_object_is_explained(self, viewer_client, text):
        response = viewer_client.get(LIST, {"context": text})
        assert response.status_code == 200
        assert response.context["page"] is None
        assert CONTEXT_NOT_AN_OBJECT in response.content.decode().replace("&quot;", '"')

    def test_filters_by_creation_dates_inclusive(self, viewer_client):
        old = make_session()
        AgentSession.objects.filter(pk=old.pk).update(
            created_at=timezone.now() - timedelta(days=10)
        )
        new = make_session()
        today = timezone.now().date()
        response = viewer_client.get(LIST, {"created_from": today, "created_to": today})
        assert listed(response) == [new.session_id]
        response = viewer_client.get(LIST, {"created_to": today - timedelta(days=5)})
        assert listed(response) == [old.session_id]

    def test_a_backwards_date_range_is_explained(self, viewer_client):
        response = viewer_client.get(
            LIST, {"created_from": "2026-05-02", "created_to": "2026-05-01"}
        )
        assert response.context["page"] is None
        assert b"The end of the range must be after its start." in response.content

    def test_pages_follow_the_cursor_newest_first(self, viewer_client, settings):
        settings.SERGAS_DASHBOARD = {"PAGE_SIZE": 2}
        made = [make_session().session_id for _ in range(5)]
        first = viewer_client.get(LIST)
        second = viewer_client.get(LIST, {"cursor": first.context["page"].next_cursor})
        third = viewer_client.get(LIST, {"cursor": second.context["page"].next_cursor})
        assert listed(first) + listed(second) + listed(third) == made[::-1]
        assert third.context["page"].next_cursor is None
        assert b'rel="next"' in first.content

    def test_a_foreign_cursor_restarts_at_the_first_page_with_a_warning(self, viewer_client):
        make_session()
        response = viewer_client.get(LIST, {"cursor": "not-a-cursor"})
        assert len(listed(response)) == 1
        assert b"start again without a cursor" in response.content

    def test_empty_states_say_what_to_do(self, viewer_client):
        assert b"No sessions yet." in viewer_client.get(LIST).content
        make_session()
        assert (
            b"No session matches these filters."
            in viewer_client.get(LIST, {"owner_id": "nobody"}).content
        )

    def test_the_list_makes_the_same_queries_for_few_or_many_sessions(
        self, viewer_client, count_queries
    ):
        make_session()
        few = count_queries(viewer_client, LIST)
        for status in ("running", "paused", "failed", "completed", "cancelled"):
            make_session(status)
        assert count_queries(viewer_client, LIST) == few
        assert few <= 6


class TestDetail:
    def test_shows_state_context_metrics_checkpoints_and_timeline(self, viewer_client):
        session = make_session("running", account_ids=["acct_1", "acct_2"])
        services.session_update_metrics(
            session.session_id, counters={"api_call_count": 7}, processing_times_ms=[100, 300]
        )
        services.session_checkpoint(
            session.session_id,
            context_changes={
                "processed_accounts": ["acct_1"],
                "failed_accounts": ["acct_2"],
                "current_batch": 1,
                "total_batches": 2,
            },
        )
        response = viewer_client.get(detail(session.session_id))
        content = response.content.decode()
        assert response.status_code == 200
        assert "1 of 2" in content  # batches
        assert "acct_2" in content  # the failed account
        assert "mean 200 ms" in content
        assert response.context["checkpoints"][0].sequence == 1
        actions = [event.action for event in response.context["timeline"].items]
        assert actions == ["checkpoint", "update_metrics", "start", "create"]
        assert response.context["progress"].processed_count == 1
        assert response.context["progress"].failed_count == 1
        assert 'hx-trigger="every 5s"' in content  # live while running

    def test_the_timeline_filters_by_event_type(self, viewer_client):
        session = make_session("running")
        services.session_update_metrics(session.session_id, counters={"api_call_count": 1})
        response = viewer_client.get(
            detail(session.session_id), {"event_type": "session_lifecycle"}
        )
        assert [e.action for e in response.context["timeline"].items] == ["start", "create"]

    def test_an_unknown_session_is_a_404_that_says_so(self, viewer_client):
        response = viewer_client.get(detail("session_nope"))
        assert response.status_code == 404
        assert b"Session session_nope does not exist." in response.content

    @pytest.mark.parametrize(
        ("status", "controls"),
        [
            ("pending", ["cancel"]),
            ("running", ["pause", "cancel"]),
            ("paused", ["resume", "cancel", "recover"]),
            ("interrupted", ["cancel", "recover"]),
            ("completed", []),
            ("failed", []),
            ("cancelled", []),
        ],
    )
    def test_controls_appear_only_when_the_transition_is_valid(
        self, operator_client, status, controls
    ):
        session = make_session(status)
        response = operator_client.get(detail(session.session_id))
        assert [c.name for c in response.context["controls"]] == controls
        for action in ("pause", "resume", "cancel", "recover"):
            assert (f'data-control="{action}"' in response.content.decode()) == (action in controls)

    def test_the_detail_makes_the_same_queries_however_long_the_trail(
        self, viewer_client, count_queries
    ):
        session = make_session("running")
        short = count_queries(viewer_client, detail(session.session_id))
        for _ in range(10):
            services.session_checkpoint(session.session_id)
            services.session_update_metrics(session.session_id, counters={"api_call_count": 1})
        assert count_queries(viewer_client, detail(session.session_id)) == short
        assert short <= 10


class TestControls:
    def test_confirmation_comes_first_and_asks_for_a_reason(self, operator_client):
        session = make_session("running")
        response = operator_client.get(control(session.session_id, "pause"))
        assert response.status_code == 200
        assert b"Pause session " + session.session_id.encode() in response.content
        assert b'name="reason"' in response.content
        assert b"<html" in response.content
        fragment = operator_client.get(control(session.session_id, "pause"), HTTP_HX_REQUEST="true")
        assert b"<html" not in fragment.content  # shown inside the page's dialog
        session.refresh_from_db()
        assert session.status == "running"

    def test_pausing_and_resuming_go_through_the_services_as_the_staff_user(self, operator_client):
        session = make_session("running")
        response = operator_client.post(
            control(session.session_id, "pause"), {"reason": "CRM maintenance"}, follow=True
        )
        assert response.redirect_chain[-1][0] == detail(session.session_id)
        assert f"Session {session.session_id}: paused." in response.content.decode()
        operator_client.post(control(session.session_id, "resume"))
        events = AuditEvent.objects.filter(
            session_id=session.session_id, action__in=["pause", "resume"]
        ).order_by("timestamp")
        assert [(e.action, e.actor) for e in events] == [
            ("pause", "staff:olivia"),
            ("resume", "staff:olivia"),
        ]
        assert events[0].metadata["reason"] == "CRM maintenance"
        session.refresh_from_db()
        assert session.status == "running"

    def test_cancel_and_recover_work_from_the_statuses_that_allow_them(self, operator_client):
        interrupted = make_session("interrupted")
        paused = make_session("paused")
        operator_client.post(control(interrupted.session_id, "recover"))
        operator_client.post(control(paused.session_id, "cancel"), {"reason": "duplicate"})
        assert AgentSession.objects.get(pk=interrupted.pk).status == "running"
        assert AgentSession.objects.get(pk=paused.pk).status == "cancelled"

    def test_a_control_that_is_no_longer_valid_explains_why_and_changes_nothing(
        self, operator_client
    ):
        session = make_session("completed")
        response = operator_client.post(control(session.session_id, "pause"), follow=True)
        expected = INVALID_TRANSITION.format(
            action="pause", session_id=session.session_id, status="completed", allowed="running"
        )
        assert expected in response.content.decode()
        assert AgentSession.objects.get(pk=session.pk).status == "completed"

    def test_unknown_controls_and_sessions_are_404(self, operator_client):
        session = make_session("running")
        assert operator_client.post(control(session.session_id, "start")).status_code == 404
        assert operator_client.post(control("session_nope", "pause")).status_code == 404


class TestProgressFragment:
    def test_it_shows_progress_and_asks_for_a_reload_once_the_session_is_not_active(
        self, viewer_client
    ):
        session = make_session("running")
        url = reverse("dashboard:session_progress", args=[session.session_id])
        live = viewer_client.get(url)
        assert live.status_code == 200
        assert "HX-Refresh" not in live
        services.session_complete(session.session_id)
        assert viewer_client.get(url)["HX-Refresh"] == "true"
