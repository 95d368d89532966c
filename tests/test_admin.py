"""The admin: every model registered, read-only where it must be, actions through the
services with the staff user as actor, and the groups' rights."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from access.models import IdempotencyRecord
from audit.models import AuditEvent, AuditEventRecord
from scheduling.models import ScheduledReview, ScheduleExecution
from sessions.models import AgentSession, SessionCheckpoint
from tests.dashboard.conftest import make_staff
from tests.factories import make_session
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db

OUR_APPS = ("agent_sessions", "scheduling", "audit", "agents")


def test_every_model_of_our_apps_is_registered_with_filters_and_search():
    for app_label in OUR_APPS:
        for model in apps.get_app_config(app_label).get_models():
            if model is AuditEvent:
                continue  # composite key: browsed through AuditEventRecord
            model_admin = admin.site._registry.get(model)
            assert model_admin is not None, f"{model.__name__} is not in the admin"
            assert model_admin.list_filter, f"{model.__name__} has no list filters"
            assert model_admin.search_fields, f"{model.__name__} has no search"


@pytest.mark.parametrize(
    "model", [AuditEventRecord, SessionCheckpoint, ScheduleExecution, IdempotencyRecord]
)
def test_records_and_history_are_read_only_even_for_superusers(model, rf, admin_user):
    request = rf.get("/")
    request.user = admin_user
    model_admin = admin.site._registry[model]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, None)
    assert not model_admin.has_delete_permission(request, None)


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_session_actions_call_the_services_as_the_staff_user():
    client = Client()
    client.force_login(make_staff("olivia", "Operators"))
    running, completed = make_session("running"), make_session("completed")
    response = client.post(
        _changelist(AgentSession),
        {"action": "pause_sessions", "_selected_action": [running.pk, completed.pk]},
        follow=True,
    )
    assert "Paused 1 session(s)." in response.content.decode()
    assert "Cannot pause session" in response.content.decode()  # the completed one
    pause = AuditEvent.objects.get(session_id=running.pk, action="pause")
    assert pause.actor == "staff:olivia"


def test_review_actions_trigger_and_pause_through_the_services():
    client = Client()
    client.force_login(make_staff("olivia", "Operators"))
    review = make_review()
    changelist = _changelist(ScheduledReview)
    client.post(changelist, {"action": "trigger_reviews", "_selected_action": [review.pk]})
    client.post(changelist, {"action": "pause_reviews", "_selected_action": [review.pk]})
    review.refresh_from_db()
    assert not review.enabled
    assert ScheduleExecution.objects.filter(review=review, trigger="on_demand").count() == 1
    actors = set(
        AuditEvent.objects.filter(resource=f"review:{review.pk}")
        .exclude(action="review_created")
        .values_list("actor", flat=True)
    )
    assert actors == {"staff:olivia"}


def test_viewers_browse_the_admin_without_actions():
    client = Client()
    client.force_login(make_staff("victor", "Viewers"))
    make_session("running")
    response = client.get(_changelist(AgentSession))
    assert response.status_code == 200
    assert b"pause_sessions" not in response.content
    assert client.get(_changelist(SessionCheckpoint)).status_code == 200
    assert client.get(_changelist(AuditEventRecord)).status_code == 200
