"""sergas_client's approvals against a live server: ask, be told on a heartbeat, wait."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from access.services import agent_token_create
from sergas_client import Approval, SergasAPIError, SergasClient
from sessions import services
from sessions.models import SessionApproval

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(live_server):
    token = agent_token_create(name="asker", scopes=["write"]).secret
    with SergasClient(live_server.url, token, backoff_seconds=0.01) as client:
        yield client


def _running(api: SergasClient) -> str:
    session = api.create_session(orchestrator_id="o", account_ids=["a1"])
    api.start(session.session_id)
    return session.session_id


def test_an_agent_asks_learns_of_it_on_a_heartbeat_and_waits_for_the_decision(api):
    session_id = _running(api)
    asked = api.request_approval(
        session_id,
        question="Send the renewal email?",
        options=["send", "hold"],
        payload={"email": "Dear ACME"},
    )
    assert isinstance(asked, Approval)
    assert asked.pending
    [notice] = api.heartbeat(session_id).approvals
    assert (notice.approval_id, notice.status) == (asked.approval_id, "pending")

    def decide() -> None:
        time.sleep(0.3)
        try:
            services.approval_approve(asked.approval_id, decision="send", actor="staff:o")
        finally:
            connection.close()  # this thread's own

    deciding = threading.Thread(target=decide)
    deciding.start()
    decided = api.wait_for_approval(asked.approval_id, timeout=60)
    deciding.join()

    assert (decided.status, decided.decision, decided.approved) == ("approved", "send", True)
    assert api.heartbeat(session_id).approvals == ()  # read: no longer mentioned
    assert [a.approval_id for a in api.approvals(session_id)] == [asked.approval_id]


def test_the_default_decision_applies_at_the_deadline(api):
    session_id = _running(api)
    asked = api.request_approval(
        session_id,
        question="Discount?",
        options=["5%", "none"],
        deadline=datetime.now(UTC) + timedelta(seconds=1),
        default_decision="none",
    )
    decided = api.wait_for_approval(asked.approval_id, timeout=60)
    assert (decided.status, decided.decision) == ("expired", "none")


def test_a_timeout_returns_the_pending_approval_and_bad_requests_raise(api):
    session_id = _running(api)
    asked = api.request_approval(session_id, question="Q?", options=["a", "b"])
    assert api.wait_for_approval(asked.approval_id, timeout=0.5).pending
    with pytest.raises(SergasAPIError) as refused:
        api.request_approval(session_id, question="Q?", options=["a", "b"], default_decision="c")
    assert refused.value.status_code == 422
    assert SessionApproval.objects.count() == 1
