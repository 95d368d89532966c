"""The site-wide templates (templates/): one base layout for the dashboard, the login
page and the error pages, and the admin in the site's name with a way to the dashboard."""

import pytest
from django.db import connection
from django.template import loader
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from tests.dashboard.conftest import PASSWORD


def test_the_login_page_is_the_sites_and_logs_a_staff_member_in(operator):
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200
    assert [template.name for template in page.templates][:2] == [
        "registration/login.html",
        "base.html",
    ]
    answer = client.post("/login/", {"username": operator.username, "password": PASSWORD})
    assert answer.status_code == 302
    assert answer["Location"] == "/dashboard/"


def test_a_dashboard_page_extends_the_site_layout(operator_client):
    page = operator_client.get("/dashboard/")
    assert page.status_code == 200
    assert "base.html" in [template.name for template in page.templates]


@override_settings(DEBUG=False)
def test_an_unknown_page_is_the_sites_404_in_the_layout(operator_client):
    page = operator_client.get("/dashboard/no-such-page/")
    assert page.status_code == 404
    text = page.content.decode()
    assert "Not found." in text
    assert 'class="topbar"' in text
    assert "Log out" in text  # the layout knows who is logged in


@pytest.mark.django_db
def test_the_500_page_renders_without_a_request_context_processors_or_the_database():
    with CaptureQueriesContext(connection) as captured:
        text = loader.get_template("500.html").render()
    assert captured.captured_queries == []
    assert "Something went wrong on our side." in text
    assert 'class="topbar"' in text
    assert "Log out" not in text


def test_the_admin_carries_the_site_header_and_a_link_to_the_dashboard(admin_client):
    page = admin_client.get("/admin/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Sergas control plane" in text
    assert 'href="/dashboard/" data-dashboard-link' in text
