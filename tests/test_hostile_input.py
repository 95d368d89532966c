"""Hostile input gets a clear 4xx in the error form, never a 500 (access.inputs and the
schemas). Schemathesis explores the rest (tests/test_api_fuzz.py)."""

import json

import pytest
from django.test import Client

from access.inputs import INVALID_TEXT, JSON_TOO_DEEP
from audit.models import AuditEvent
from sessions.models import AgentSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(agent_api):
    api = agent_api("admin")
    api.client = Client(raise_request_exception=False)
    return api


def _raw(api, path: str, body: bytes | str, method: str = "post"):
    return getattr(api.client, method)(
        f"/api/v1{path}", body, content_type="application/json", **api.headers()
    )


def test_an_oversized_body_is_413_before_it_is_read(api, settings):
    settings.SERGAS_AGENTS = {**settings.SERGAS_AGENTS, "MAX_BODY_BYTES": 2048}
    response = api.post("/sessions", {"orchestrator_id": "o", "context": {"x": "y" * 5000}})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert AgentSession.objects.count() == 0


@pytest.mark.parametrize("depth", [33, 5000, 200_000])
def test_deeply_nested_json_is_422_json_too_deep(api, depth):
    nested = "[" * depth + "]" * depth
    response = _raw(api, "/sessions", f'{{"orchestrator_id": "o", "context": {{"x": {nested}}}}}')
    assert response.status_code == 422
    assert response.json()["code"] == "json_too_deep"
    assert response.json()["detail"].startswith(JSON_TOO_DEEP.split("{")[0])


def test_nesting_within_the_limit_is_accepted(api):
    nested = {"a": {"b": {"c": {"d": [1, [2, [3]]]}}}}
    response = api.post("/sessions", {"orchestrator_id": "o", "context": {"metadata": nested}})
    assert response.status_code == 201
    assert response.json()["context"]["metadata"] == nested


def test_invalid_utf8_is_400_bad_request(api):
    response = _raw(api, "/sessions", b'{"orchestrator_id": "\xff\xfe"}')
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert "UTF-8" in response.json()["detail"]


def test_malformed_json_says_what_is_wrong(api):
    response = _raw(api, "/sessions", '{"orchestrator_id": ')
    assert response.status_code == 400
    assert response.json()["detail"].startswith("The request body is not valid JSON")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"orchestrator_id": "o\u0000x"}, "orchestrator_id"),
        (
            {"orchestrator_id": "o", "context": {"metadata": {"k": ["a", "b\u0000"]}}},
            "context.metadata.k.1",
        ),
        ({"orchestrator_id": "o", "context": {"metadata": {"k\u0000": 1}}}, "context.metadata.k?"),
        ({"orchestrator_id": "o\ud800"}, "orchestrator_id"),
    ],
)
def test_text_postgresql_cannot_store_is_422_naming_the_field(api, body, field):
    response = _raw(api, "/sessions", json.dumps(body))
    assert response.status_code == 422
    assert response.json() == {
        "code": "invalid_text",
        "detail": INVALID_TEXT.format(field=field),
        "field": field,
    }


def test_nul_in_a_query_filter_is_422_and_in_a_path_404(api):
    assert api.get("/sessions", {"owner_id": "a\x00b"}).json()["field"] == "owner_id"
    assert api.get("/sessions", {"owner_id": "a\x00b"}).status_code == 422
    assert api.get("/sessions/a%00b").status_code == 404
    assert api.get("/audit/events", {"metadata": '{"a": "\\u0000"}'}).json()["code"] == (
        "invalid_text"
    )


@pytest.mark.parametrize("limit", ["501", "0", "-1", "99999999999999999999999", "ten"])
def test_pagination_limits_out_of_range_are_422(api, limit):
    for path in ("/sessions", "/schedules", "/audit/events"):
        response = api.get(path, {"limit": limit})
        assert response.status_code == 422, path
        assert response.json()["field"] == "limit"


@pytest.mark.parametrize(
    "value",
    ["' OR 1=1 --", "'; DROP TABLE audit_event; --", "%", "_", "\\", '") OR ("1"="1'],
)
def test_sql_like_filter_values_match_literally_and_harm_nothing(api, value):
    api.post("/sessions", {"orchestrator_id": "o", "owner_id": "real-owner"})
    events = AuditEvent.objects.count()
    for path, name in [
        ("/sessions", "owner_id"),
        ("/audit/events", "actor"),
        ("/schedules", "owner_id"),
    ]:
        response = api.get(path, {name: value})
        assert response.status_code == 200
        assert response.json()["items"] == []
    assert AuditEvent.objects.count() == events
    assert AgentSession.objects.filter(owner_id="real-owner").count() == 1


def test_a_datetime_filter_must_be_iso_8601(api):
    assert api.get("/sessions", {"created_after": "4611"}).status_code == 422
    assert api.get("/sessions", {"created_after": "2026-02-30T00:00:00Z"}).status_code == 422
    assert api.get("/sessions", {"created_after": "0826-11-23T04:25:20-17:05"}).status_code == 200


@pytest.mark.parametrize(
    "changes",
    [
        {"interval_minutes": 10**30},
        {"weekday": 7},
        {"max_retries": 10**9},
        {"time_of_day": "09:00:00Z"},
    ],
)
def test_out_of_range_schedule_fields_are_422(api, changes):
    body = {"name": "n", "owner_id": "o", "schedule_type": "interval", "interval_minutes": 5}
    response = api.post("/schedules", {**body, **changes})
    assert response.status_code == 422
    assert response.json()["field"] == next(iter(changes))


@pytest.mark.parametrize("body", ["[null, null]", "42", '"text"', "null"])
def test_a_body_that_is_not_an_object_is_refused(api, body):
    response = _raw(api, "/sessions", body)
    assert response.status_code == 422


def test_a_version_beyond_bigint_is_422(api):
    session_id = api.post("/sessions", {"orchestrator_id": "o"}).json()["session_id"]
    response = api.post(f"/sessions/{session_id}/start", {"expected_version": 2**63})
    assert response.status_code == 422
    assert response.json()["field"] == "expected_version"


def test_an_event_older_than_the_trail_keeps_is_422(api):
    event = {
        "event_id": "0b1e0000-0000-4000-8000-000000000001",
        "hook": "pre_tool",
        "name": "crm.get_account",
        "timestamp": "0001-01-01T00:00:00Z",
    }
    response = api.post("/events", {"events": [event]})
    assert response.status_code == 422
    assert response.json()["code"] == "event_too_old"


@pytest.mark.parametrize("name", ["starts_at", "timezone", "priority", "account_filter", "name"])
def test_null_for_a_required_schedule_field_is_422_naming_it(api, name):
    body = {"name": "n", "owner_id": "o", "schedule_type": "interval", "interval_minutes": 5}
    review_id = api.post("/schedules", body).json()["id"]
    response = api.patch(f"/schedules/{review_id}", {name: None})
    assert response.status_code == 422
    assert response.json()["field"] == name
