"""PostgreSQL unreachable: every page answers a fast 503 in the error form, and the next
request after it returns succeeds with no manual step.

The outage is real: the connection settings point at a socket directory where no server
listens, so connecting fails exactly as it does while PostgreSQL restarts.
"""

import contextlib
import copy
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from kernel.availability import DATABASE_UNAVAILABLE

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def database_unreachable() -> Iterator[None]:
    saved = copy.deepcopy(connection.settings_dict)
    connection.close()
    nowhere = "/nonexistent/sergas-outage"
    connection.settings_dict["HOST"] = nowhere
    connection.settings_dict["OPTIONS"] = {**saved.get("OPTIONS", {}), "host": nowhere}
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture
def database_down() -> Iterator[None]:
    with database_unreachable():
        yield


def _assert_outage_answer(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"code": "database_unavailable", "detail": DATABASE_UNAVAILABLE}
    assert response["Retry-After"] == "5"


def test_the_api_answers_503_in_the_error_form_while_the_database_is_down(agent_api):
    api = agent_api("write")
    api.client = Client(raise_request_exception=False)

    def calls():
        return [
            api.get("/sessions"),
            api.get("/me"),
            api.post("/sessions", {"orchestrator_id": "o"}),
        ]

    assert [r.status_code for r in calls()] == [200, 200, 201]
    with database_unreachable():
        list_, me, create = calls()
        _assert_outage_answer(list_)
        _assert_outage_answer(create)
        # What needs no database still answers: the token was verified before the outage
        # (access.token_cache, for up to API_TOKEN_CACHE_SECONDS).
        assert me.status_code == 200
    assert [r.status_code for r in calls()] == [200, 200, 201]  # back by itself


def test_logging_in_answers_503_not_500_while_the_database_is_down(database_down):
    client = Client(raise_request_exception=False)
    _assert_outage_answer(client.post("/admin/login/", {"username": "ana", "password": "x"}))


def test_healthz_reports_the_database_check_failing(database_down):
    response = Client(raise_request_exception=False).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["redis"]["ok"] is True


def test_a_logged_in_staff_page_recovers_once_the_database_returns():
    user = get_user_model().objects.create_user("ana", password="x", is_staff=True)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
    with database_unreachable():
        _assert_outage_answer(client.get("/admin/"))
    assert client.get("/admin/").status_code == 200


def test_a_real_bug_is_still_a_500_page_not_a_503(rf):
    from kernel.availability import server_error

    try:
        raise KeyError("a bug")
    except KeyError:
        response = server_error(rf.get("/admin/"))
    assert response.status_code == 500
