"""Login, the two groups, and controls hidden and refused for viewers."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from dashboard.access import NO_ACCESS
from tests.dashboard.conftest import PASSWORD, make_staff
from tests.factories import make_session
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db

PAGES = [
    reverse("dashboard:overview"),
    reverse("dashboard:active_sessions"),
    reverse("dashboard:sessions"),
    reverse("dashboard:schedules"),
    reverse("dashboard:audit"),
]


def test_the_migration_creates_viewers_and_operators_with_their_permissions():
    viewers = set(Group.objects.get(name="Viewers").permissions.values_list("codename", flat=True))
    operators = set(
        Group.objects.get(name="Operators").permissions.values_list("codename", flat=True)
    )
    assert {"view_agentsession", "view_scheduledreview", "view_auditeventrecord"} <= viewers
    assert not any(name.startswith(("change_", "add_", "delete_")) for name in viewers)
    assert operators - viewers == {
        "change_agentsession",
        "add_scheduledreview",
        "change_scheduledreview",
        "delete_scheduledreview",
    }


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_the_site_root_leads_to_the_dashboard(client):
    assert client.get("/")["Location"] == reverse("dashboard:overview")


def test_an_operator_logs_in_and_lands_on_the_overview(operator):
    client = Client(enforce_csrf_checks=False)
    response = client.post(
        reverse("login"), {"username": "olivia", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard:overview")
    assert b"Overview" in response.content
    assert b"Operator" in response.content


def test_an_account_without_staff_status_cannot_log_in(db):
    get_user_model().objects.create_user("nora", password=PASSWORD)
    client = Client()
    response = client.post(reverse("login"), {"username": "nora", "password": PASSWORD})
    assert response.status_code == 200
    assert b"staff account" in response.content
    assert client.get(reverse("dashboard:overview")).status_code == 302


def test_staff_in_no_group_are_told_how_to_get_access(db):
    client = Client()
    client.force_login(make_staff("gail", None))
    response = client.get(reverse("dashboard:overview"))
    assert response.status_code == 403
    assert NO_ACCESS.encode() in response.content


def test_logging_out_takes_a_post_and_ends_the_session(operator_client):
    response = operator_client.post(reverse("logout"))
    assert response["Location"] == reverse("login")
    assert operator_client.get(reverse("dashboard:overview")).status_code == 302


@pytest.mark.parametrize("url", PAGES)
def test_viewers_see_every_page(viewer_client, url):
    assert viewer_client.get(url).status_code == 200


def test_viewers_find_no_controls_and_are_refused_when_they_try(viewer_client):
    session = make_session("running")
    review = make_review()
    session_page = viewer_client.get(reverse("dashboard:session", args=[session.session_id]))
    review_page = viewer_client.get(reverse("dashboard:schedule", args=[review.pk]))
    schedules = viewer_client.get(reverse("dashboard:schedules"))
    for page in (session_page, review_page, schedules):
        assert b"data-control" not in page.content
        assert b"New schedule" not in page.content
    refused = [
        viewer_client.post(reverse("dashboard:session_control", args=[session.session_id, a]))
        for a in ("pause", "cancel")
    ] + [
        viewer_client.post(reverse("dashboard:schedule_control", args=[review.pk, a]))
        for a in ("trigger", "pause", "delete")
    ]
    refused.append(viewer_client.post(reverse("dashboard:schedule_edit", args=[review.pk])))
    refused.append(viewer_client.get(reverse("dashboard:schedule_new")))
    assert {response.status_code for response in refused} == {403}
    session.refresh_from_db()
    assert session.status == "running"


def test_every_control_form_needs_the_csrf_token(operator):
    session = make_session("running")
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    url = reverse("dashboard:session_control", args=[session.session_id, "pause"])
    assert client.post(url).status_code == 403
    page = client.get(url)
    assert b"csrfmiddlewaretoken" in page.content
    session.refresh_from_db()
    assert session.status == "running"
