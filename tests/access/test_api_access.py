"""Who may call the API: tokens, scopes, staff sessions, rate and size limits."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from access.exceptions import BODY_TOO_LARGE, CREDENTIALS_MISSING, STAFF_READ_ONLY
from access.services import agent_token_revoke
from tests.factories import make_session

pytestmark = pytest.mark.django_db


def _staff_client(*, is_staff: bool = True) -> Client:
    user = get_user_model().objects.create_user("ana", password="x", is_staff=is_staff)
    client = Client()
    client.force_login(user)
    return client


class TestAuthentication:
    def test_a_request_without_credentials_is_401_and_says_how_to_authenticate(self, client):
        response = client.get("/api/v1/sessions")
        assert response.status_code == 401
        assert response.json() == {"code": "not_authenticated", "detail": CREDENTIALS_MISSING}
        assert response["WWW-Authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        "header", ["Bearer sgs_000000000000_" + "a" * 43, "Bearer ", "Basic dXNlcjpwYXNz"]
    )
    def test_a_wrong_token_or_scheme_is_401_invalid_token(self, client, header):
        response = client.get("/api/v1/sessions", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"

    def test_a_revoked_token_is_401_token_revoked(self, agent_api):
        api = agent_api("read")
        agent_token_revoke(api.token.prefix)
        response = api.get("/sessions")
        assert response.status_code == 401
        assert response.json()["code"] == "token_revoked"

    def test_me_names_the_agent_its_actor_and_scopes(self, agent_api):
        response = agent_api("write", name="reviewer-7").get("/me")
        assert response.status_code == 200
        assert response.json() == {
            "name": "reviewer-7",
            "actor": "agent:reviewer-7",
            "scopes": ["read", "write"],
            "read_only": False,
            "own_sessions_only": False,
            "queues": [],
        }


class TestScopes:
    def test_a_read_token_reads_but_cannot_write(self, agent_api):
        api = agent_api("read")
        assert api.get("/sessions").status_code == 200
        response = api.post("/sessions", {"orchestrator_id": "o"})
        assert response.status_code == 403
        assert response.json()["code"] == "insufficient_scope"
        assert response.json()["required_scope"] == "write"

    def test_searching_the_whole_audit_trail_needs_the_admin_scope(self, agent_api):
        assert agent_api("write").get("/audit/events").status_code == 403
        assert agent_api("admin").get("/audit/events").status_code == 200

    def test_a_staff_browser_session_may_read_everything(self):
        session = make_session("running")
        client = _staff_client()
        assert client.get("/api/v1/sessions").status_code == 200
        assert client.get(f"/api/v1/sessions/{session.session_id}").status_code == 200
        assert client.get("/api/v1/audit/events").status_code == 200
        assert client.get("/api/v1/me").json()["actor"] == "staff:ana"

    def test_a_staff_browser_session_may_not_write(self):
        session = make_session("running")
        response = _staff_client().post(
            f"/api/v1/sessions/{session.session_id}/pause", "{}", content_type="application/json"
        )
        assert response.status_code == 403
        assert response.json() == {"code": "read_only_session", "detail": STAFF_READ_ONLY}

    def test_a_logged_in_user_who_is_not_staff_is_not_authenticated(self):
        assert _staff_client(is_staff=False).get("/api/v1/sessions").status_code == 401


class TestLimits:
    def test_a_body_over_the_limit_is_413_with_the_limit_before_being_read(
        self, agent_api, settings
    ):
        settings.SERGAS_AGENTS = {**settings.SERGAS_AGENTS, "MAX_BODY_BYTES": 1000}
        body = {"orchestrator_id": "o", "context": {"metadata": {"blob": "x" * 2000}}}
        response = agent_api().post("/sessions", body)
        assert response.status_code == 413
        size = len(json.dumps(body))
        assert response.json() == {
            "code": "payload_too_large",
            "detail": BODY_TOO_LARGE.format(size=size, limit=1000),
            "limit": 1000,
            "unit": "bytes",
        }

    def test_each_token_is_throttled_on_its_own_with_retry_after(self, agent_api, settings):
        settings.SERGAS_AGENTS = {**settings.SERGAS_AGENTS, "THROTTLE_RATE": "3/hour"}
        busy, other = agent_api("read", name="busy"), agent_api("read", name="other")
        assert [busy.get("/me").status_code for _ in range(3)] == [200, 200, 200]
        response = busy.get("/me")
        assert response.status_code == 429
        body = response.json()
        assert body["code"] == "throttled"
        assert "3/hour" in body["detail"]
        assert 0 < body["retry_after"] <= 3600
        assert int(response["Retry-After"]) == body["retry_after"]
        assert other.get("/me").status_code == 200

    def test_malformed_json_is_400_not_500(self, agent_api):
        api = agent_api()
        response = api.client.post(
            "/api/v1/sessions", "{not json", content_type="application/json", **api.headers()
        )
        assert response.status_code == 400
        assert response.json()["code"] == "bad_request"
