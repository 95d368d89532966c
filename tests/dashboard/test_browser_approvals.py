"""Approvals end to end in a real browser: an agent process asks, an operator decides in
Chromium, the agent goes on with the decision."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.urls import reverse

from access.services import agent_token_create
from sessions.models import AgentSession, ApprovalStatus, SessionApproval
from tests.dashboard.conftest import make_staff
from tests.dashboard.test_browser import (  # noqa: F401  (fixtures)
    _fast_refresh,
    browser,
    page_for,
    shot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
AGENT = Path(__file__).resolve().parent / "approval_agent.py"


def _agent_process(url: str, token: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, str(AGENT), url, token],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for(condition, timeout: float = 30.0) -> None:
    ends = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < ends, "gave up waiting"
        time.sleep(0.1)


def test_an_agent_asks_an_operator_decides_in_the_browser_and_the_agent_acts_on_it(
    page_for,  # noqa: F811  (the fixture)
    live_server,
    tmp_path,
):
    make_staff("olivia", "Operators")
    make_staff("victor", "Viewers")
    operator = page_for("olivia")
    viewer = page_for("victor")
    panel = operator.locator("#open-approvals")
    assert "Nothing waits for staff" in panel.inner_text()

    token = agent_token_create(name="renewals-agent", scopes=["write"]).secret
    log = tmp_path / "agent.log"
    agent = _agent_process(live_server.url, token, log)
    try:
        _wait_for(lambda: SessionApproval.objects.exists())
        approval = SessionApproval.objects.get()

        # The overview's live panel shows the question without a reload.
        card = operator.locator(f"[data-approval='{approval.pk}']")
        card.wait_for()
        assert "Send the renewal offer to ACME?" in card.inner_text()
        assert "5% discount" in card.inner_text()
        viewer_card = viewer.locator(f"[data-approval='{approval.pk}']")
        viewer_card.wait_for()
        assert viewer_card.locator("[data-decide]").count() == 0
        shot(viewer, "approval-viewer")

        card.locator("[data-comment]").fill("Approved by sales ops")
        shot(operator, "approval-open")
        card.locator("[data-option='send']").click()
        operator.locator(".messages .success").wait_for()
        assert "send" in operator.locator(".messages .success").inner_text()
        shot(operator, "approval-decided")

        assert agent.wait(timeout=60) == 0, log.read_text()
    finally:
        if agent.poll() is None:
            agent.kill()
    output = log.read_text()
    assert "answer approved send comment='Approved by sales ops'" in output
    assert "email sent" in output
    decided = SessionApproval.objects.get(pk=approval.pk)
    assert (decided.status, decided.decided_by) == (ApprovalStatus.APPROVED, "staff:olivia")
    assert decided.delivered_at is not None
    session = AgentSession.objects.get(pk=approval.session_id)
    assert session.status == "completed"
    assert session.context["metadata"]["email"] == "sent"
    # The session page tells the story.
    operator.goto(live_server.url + reverse("dashboard:session", args=[session.session_id]))
    outcome = operator.locator("[data-approval-status='approved']")
    assert "Approved by sales ops" in outcome.inner_text()
    assert "read by the agent" in outcome.inner_text()
    shot(operator, "approval-on-session-page")
