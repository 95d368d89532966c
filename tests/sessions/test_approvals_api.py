"""The approvals API: asking, listing, the long poll, heartbeats, confinement."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from access.models import AgentToken
from audit.models import AuditEvent
from sessions import services
from sessions.models import ApprovalStatus, SessionApproval
from tests.agent_api import AgentApi

ASK = {
    "question": "Send this renewal offer to ACME?",
    "options": ["send", "hold"],
    "payload": {"recommendation": "renew at 5% discount", "email": "Dear ACME, ..."},
}


def _running_session(api: AgentApi) -> str:
    created = api.post("/sessions", {"orchestrator_id": "o", "account_ids": ["a1"]})
    session_id = created.json()["session_id"]
    assert api.post(f"/sessions/{session_id}/start").status_code == 200
    return session_id


@pytest.mark.django_db
class TestAsking:
    def test_an_agent_asks_and_reads_the_pending_approval(self, agent_api):
        api = agent_api(name="reviewer-1")
        session_id = _running_session(api)

        response = api.post(f"/sessions/{session_id}/approvals", ASK)

        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "pending"
        assert body["decision"] is None
        assert body["options"] == ["send", "hold"]
        assert body["payload"] == ASK["payload"]
        assert body["requested_by"] == "agent:reviewer-1"
        read = api.get(f"/approvals/{body['approval_id']}")
        assert read.status_code == 200
        assert read.json() == body
        listed = api.get(f"/sessions/{session_id}/approvals").json()
        assert [a["approval_id"] for a in listed] == [body["approval_id"]]

    def test_a_retry_with_the_same_idempotency_key_asks_once(self, agent_api):
        api = agent_api()
        session_id = _running_session(api)
        path = f"/sessions/{session_id}/approvals"
        first = api.post(path, ASK, idempotency_key="ask-1")
        again = api.post(path, ASK, idempotency_key="ask-1")
        assert (first.status_code, again.status_code) == (201, 201)
        assert first.json() == again.json()
        assert again["Idempotent-Replayed"] == "true"
        assert SessionApproval.objects.count() == 1
        assert AuditEvent.objects.filter(action="request_approval").count() == 1
        other = api.post(path, {**ASK, "question": "Another?"}, idempotency_key="ask-1")
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")

    @pytest.mark.parametrize(
        ("change", "code", "field"),
        [
            ({"options": ["only"]}, None, "options"),
            ({"options": ["a", "a"]}, None, "options"),
            ({"question": ""}, None, "question"),
            ({"deadline": "2099-01-01T00:00:00Z"}, None, None),
            ({"deadline": None, "default_decision": "send"}, None, None),
            ({"default_decision": "maybe"}, "invalid_approval", "default_decision"),
            (
                {"deadline": "2001-01-01T00:00:00Z", "default_decision": "hold"},
                "invalid_approval",
                "deadline",
            ),
        ],
    )
    def test_a_request_that_does_not_fit_is_422(self, agent_api, change, code, field):
        api = agent_api()
        session_id = _running_session(api)
        response = api.post(f"/sessions/{session_id}/approvals", {**ASK, **change})
        assert response.status_code == 422, response.content
        if code is not None:
            assert response.json()["code"] == code
            assert response.json()["field"] == field
        assert not SessionApproval.objects.exists()

    def test_a_session_that_is_not_running_cannot_ask(self, agent_api):
        api = agent_api()
        created = api.post("/sessions", {"orchestrator_id": "o"}).json()
        response = api.post(f"/sessions/{created['session_id']}/approvals", ASK)
        assert (response.status_code, response.json()["code"]) == (409, "session_not_running")

    def test_a_read_only_token_may_not_ask(self, agent_api):
        writer = agent_api()
        session_id = _running_session(writer)
        reader = agent_api("read", name="reader")
        assert reader.post(f"/sessions/{session_id}/approvals", ASK).status_code == 403

    def test_an_unknown_approval_is_404(self, agent_api):
        response = agent_api().get(f"/approvals/{uuid.uuid4()}")
        assert (response.status_code, response.json()["code"]) == (404, "approval_not_found")


@pytest.mark.django_db
class TestConfinement:
    def test_a_confined_token_sees_only_its_own_sessions_approvals(self, agent_api):
        owner = agent_api(name="alpha")
        session_id = _running_session(owner)
        approval_id = owner.post(f"/sessions/{session_id}/approvals", ASK).json()["approval_id"]
        intruder = agent_api(name="beta")
        AgentToken.objects.filter(pk=intruder.token.pk).update(own_sessions_only=True)

        for response in (
            intruder.get(f"/approvals/{approval_id}"),
            intruder.get(f"/sessions/{session_id}/approvals"),
            intruder.post(f"/sessions/{session_id}/approvals", ASK),
        ):
            assert response.status_code == 404
        assert AuditEvent.objects.filter(
            resource=f"approval:{approval_id}", actor="agent:beta"
        ).exists()  # the refusal is on record
        AgentToken.objects.filter(pk=owner.token.pk).update(own_sessions_only=True)
        assert owner.get(f"/approvals/{approval_id}").status_code == 200


@pytest.mark.django_db
class TestHeartbeat:
    def test_the_heartbeat_tells_of_open_approvals_and_decisions_until_they_are_read(
        self, agent_api
    ):
        api = agent_api()
        session_id = _running_session(api)
        approval_id = api.post(f"/sessions/{session_id}/approvals", ASK).json()["approval_id"]

        beat = api.post(f"/sessions/{session_id}/heartbeat").json()
        assert [(a["approval_id"], a["status"]) for a in beat["approvals"]] == [
            (approval_id, "pending")
        ]

        services.approval_approve(approval_id, decision="hold", comment="later", actor="staff:o")
        [told] = api.post(f"/sessions/{session_id}/heartbeat").json()["approvals"]
        assert (told["status"], told["decision"], told["comment"]) == ("approved", "hold", "later")

        assert api.get(f"/approvals/{approval_id}").json()["decision"] == "hold"
        assert api.post(f"/sessions/{session_id}/heartbeat").json()["approvals"] == []
        delivered = AuditEvent.objects.get(action="deliver_approval")
        assert delivered.actor == api.token.actor


@pytest.mark.django_db(transaction=True)
class TestLongPoll:
    def _poll_in_thread(self, api: AgentApi, approval_id: str, wait: int) -> dict:
        answer: dict = {}

        def poll() -> None:
            client = AgentApi(Client(), api.secret, api.token)
            try:
                response = client.get(f"/approvals/{approval_id}", {"wait_seconds": wait})
                answer["status_code"] = response.status_code
                answer["body"] = response.json()
            finally:
                connection.close()  # this thread's own

        thread = threading.Thread(target=poll)
        thread.start()
        answer["thread"] = thread
        return answer

    def test_a_long_poll_returns_as_soon_as_an_operator_decides(self, agent_api, settings):
        # Woken through Redis: looking at the database by itself would take minutes.
        settings.SERGAS_SESSIONS = {
            **settings.SERGAS_SESSIONS,
            "APPROVAL_WAIT_FALLBACK_SECONDS": 300,
        }
        api = agent_api()
        session_id = _running_session(api)
        approval_id = api.post(f"/sessions/{session_id}/approvals", ASK).json()["approval_id"]
        answer = self._poll_in_thread(api, approval_id, 60)
        answer["thread"].join(timeout=0.5)
        assert answer["thread"].is_alive()  # waiting while pending

        services.approval_approve(approval_id, decision="send", comment="go", actor="staff:o")

        # Woken by the decision, long before its 60 s are up.
        answer["thread"].join(timeout=30)
        assert not answer["thread"].is_alive()
        assert answer["status_code"] == 200
        assert (answer["body"]["status"], answer["body"]["decision"]) == ("approved", "send")
        assert SessionApproval.objects.get(pk=approval_id).delivered_at is not None

    def test_a_long_poll_answers_pending_at_its_timeout(self, agent_api):
        api = agent_api()
        session_id = _running_session(api)
        approval_id = api.post(f"/sessions/{session_id}/approvals", ASK).json()["approval_id"]
        response = api.get(f"/approvals/{approval_id}", {"wait_seconds": 1})
        assert (response.status_code, response.json()["status"]) == (200, "pending")

    def test_a_long_poll_gets_the_default_decision_at_the_deadline(self, agent_api):
        api = agent_api()
        session_id = _running_session(api)
        deadline = timezone.now() + timedelta(seconds=1)
        approval_id = api.post(
            f"/sessions/{session_id}/approvals",
            {**ASK, "deadline": deadline.isoformat(), "default_decision": "hold"},
        ).json()["approval_id"]
        body = api.get(f"/approvals/{approval_id}", {"wait_seconds": 30}).json()
        assert (body["status"], body["decision"]) == ("expired", "hold")
        event = AuditEvent.objects.get(action="expire_approval")
        assert event.metadata["decision"] == "hold"

    def test_a_long_poll_returns_when_the_session_is_cancelled(self, agent_api):
        api = agent_api()
        session_id = _running_session(api)
        approval_id = api.post(f"/sessions/{session_id}/approvals", ASK).json()["approval_id"]
        answer = self._poll_in_thread(api, approval_id, 60)
        answer["thread"].join(timeout=0.5)
        api.post(f"/sessions/{session_id}/cancel", {"reason": "stop"})
        answer["thread"].join(timeout=30)
        assert not answer["thread"].is_alive()
        assert answer["body"]["status"] == ApprovalStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_without_redis_a_long_poll_still_gets_the_decision_by_looking_itself(agent_api, settings):
    from sessions.approval_wakeups import _guard

    settings.SERGAS_SESSIONS = {
        **settings.SERGAS_SESSIONS,
        "CACHE_REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there
        "APPROVAL_WAIT_FALLBACK_SECONDS": 0.2,
    }
    _guard.cache_clear()
    try:
        api = agent_api()
        session_id = _running_session(api)
        approval_id = api.post(f"/sessions/{session_id}/approvals", ASK).json()["approval_id"]
        answer = TestLongPoll()._poll_in_thread(api, approval_id, 60)
        answer["thread"].join(timeout=0.5)
        services.approval_reject(approval_id, comment="no", actor="staff:o")
        answer["thread"].join(timeout=30)
        assert not answer["thread"].is_alive()
        assert answer["body"]["status"] == "rejected"
    finally:
        _guard.cache_clear()
