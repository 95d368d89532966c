"""Tokens confined to their own sessions, and refused requests in the audit trail."""

import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from access.exceptions import ConfinedAdminToken
from access.models import AgentToken
from access.services import agent_token_create, agent_token_revoke
from audit.models import AuditEvent
from tests.factories import make_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def confined(agent_api):
    api = agent_api("write", name="alpha")
    AgentToken.objects.filter(pk=api.token.pk).update(own_sessions_only=True)
    return api


def _create(api) -> str:
    response = api.post("/sessions", {"orchestrator_id": "o", "account_ids": ["a1"]})
    assert response.status_code == 201
    return response.json()["session_id"]


SESSION_PATHS = [
    ("get", ""),
    ("get", "/checkpoints"),
    ("get", "/audit-trail"),
    ("post", "/start"),
    ("post", "/pause"),
    ("post", "/cancel"),
    ("post", "/recover"),
    ("post", "/heartbeat"),
    ("post", "/checkpoints"),
    ("post", "/metrics"),
    ("patch", "/context"),
]


def test_a_confined_token_drives_its_own_sessions(confined):
    session_id = _create(confined)
    assert confined.post(f"/sessions/{session_id}/start").status_code == 200
    assert confined.get(f"/sessions/{session_id}").json()["status"] == "running"
    assert confined.get("/me").json()["own_sessions_only"] is True


@pytest.mark.parametrize(("method", "suffix"), SESSION_PATHS)
def test_another_agents_session_is_404_to_a_confined_token(confined, agent_api, method, suffix):
    other = _create(agent_api("write", name="beta"))
    body = {"changes": {}} if suffix == "/context" else {}
    call = getattr(confined, method)
    response = (
        call(f"/sessions/{other}{suffix}")
        if method == "get"
        else call(f"/sessions/{other}{suffix}", body)
    )
    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"
    refusal = AuditEvent.objects.get(event_type="auth", action="access_denied")
    assert refusal.actor == "agent:alpha"
    assert refusal.resource == f"session:{other}"
    assert refusal.metadata["code"] == "session_not_found"


def test_a_confined_token_lists_only_its_agents_sessions(confined, agent_api):
    mine = _create(confined)
    _create(agent_api("write", name="beta"))
    make_session("running")  # created by the system
    # Another token of the same agent (a rotation) sees the same sessions.
    sibling = agent_api("read", name="alpha")
    AgentToken.objects.filter(pk=sibling.token.pk).update(own_sessions_only=True)
    for api in (confined, sibling):
        assert [s["session_id"] for s in api.get("/sessions").json()["items"]] == [mine]
    assert len(agent_api("read", name="gamma").get("/sessions").json()["items"]) == 3


def test_a_confined_token_cannot_report_events_on_another_agents_session(confined, agent_api):
    other = _create(agent_api("write", name="beta"))
    event = {
        "event_id": str(uuid.uuid4()),
        "hook": "pre_tool",
        "name": "crm.get_account",
        "timestamp": timezone.now().isoformat(),
        "session_id": other,
    }
    response = confined.post("/events", {"events": [event]})
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_session"


def test_schedules_are_refused_to_a_confined_token(confined):
    response = confined.get("/schedules")
    assert response.status_code == 403
    assert response.json()["code"] == "own_sessions_only"


def test_a_confined_token_cannot_have_the_admin_scope():
    with pytest.raises(ConfinedAdminToken):
        agent_token_create(name="a", scopes=["admin"], own_sessions_only=True)
    assert AgentToken.objects.count() == 0


def test_create_agent_token_issues_a_confined_token():
    out, err = StringIO(), StringIO()
    call_command("create_agent_token", "alpha", "--own-sessions", stdout=out, stderr=err)
    assert AgentToken.objects.get(name="alpha").own_sessions_only is True
    assert "own sessions only" in err.getvalue()


class TestRefusalsAreAudited:
    def test_a_wrong_token_is_recorded_with_its_prefix_never_the_secret(self, client):
        secret = "sgs_0123456789ab_" + "x" * 43
        response = client.get("/api/v1/sessions", HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert response.status_code == 401
        event = AuditEvent.objects.get(event_type="auth")
        assert (event.action, event.actor, event.resource) == (
            "authentication_failed",
            "anonymous",
            "agent_token:0123456789ab",
        )
        assert event.metadata["code"] == "invalid_token"
        assert event.metadata["path"] == "/api/v1/sessions"
        assert "x" * 43 not in str(event.metadata)

    def test_a_revoked_token_is_recorded(self, agent_api):
        api = agent_api("read")
        agent_token_revoke(api.token.prefix)
        assert api.get("/me").status_code == 401
        event = AuditEvent.objects.get(action="authentication_failed")
        assert event.metadata["code"] == "token_revoked"
        assert event.resource == f"agent_token:{api.token.prefix}"

    def test_a_missing_scope_is_recorded_as_access_denied(self, agent_api):
        assert agent_api("read", name="reader").post("/sessions", {"orchestrator_id": "o"})
        event = AuditEvent.objects.get(action="access_denied")
        assert event.actor == "agent:reader"
        assert event.metadata["code"] == "insufficient_scope"

    def test_a_request_without_credentials_is_not_an_attempt_and_is_not_recorded(self, client):
        assert client.get("/api/v1/sessions").status_code == 401
        assert not AuditEvent.objects.filter(event_type="auth").exists()
