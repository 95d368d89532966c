"""Approvals on the dashboard: "Needs a decision" on the overview, the session page, and
deciding, which only Operators may do."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from sessions import services
from sessions.models import ApprovalStatus, SessionApproval
from tests.factories import make_session

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("dashboard:overview")
PANEL = reverse("dashboard:open_approvals")


def _ask(question: str = "Send the renewal email to ACME?") -> SessionApproval:
    session = make_session("running")
    return services.approval_request(
        session.session_id,
        question=question,
        options=["send", "hold"],
        payload={"email": "Dear ACME, your renewal ..."},
        actor="agent:reviewer",
    )


def _decide(client, approval: SessionApproval, decision: str, comment: str = "", **extra):
    url = reverse("dashboard:approval_decide", kwargs={"approval_id": approval.pk})
    button = {"reject": "on"} if decision == "reject" else {"decision": decision}
    return client.post(url, {**button, "comment": comment, **extra})


def test_the_overview_lists_open_approvals_live_with_their_payload(viewer_client):
    approval = _ask()
    decided = _ask("Already answered?")
    services.approval_reject(decided.pk, actor="staff:o")

    for url in (OVERVIEW, PANEL):
        html = viewer_client.get(url).content.decode()
        assert "Needs a decision" in html
        assert f'data-approval="{approval.pk}"' in html
        assert "Dear ACME, your renewal ..." in html
        assert f'data-approval="{decided.pk}"' not in html
    assert f'hx-get="{PANEL}"' in viewer_client.get(OVERVIEW).content.decode()


def test_a_viewer_sees_no_decision_buttons_and_a_post_is_refused(viewer_client):
    approval = _ask()
    html = viewer_client.get(OVERVIEW).content.decode()
    assert "data-decide" not in html
    assert "data-reject" not in html
    session_html = viewer_client.get(
        reverse("dashboard:session", kwargs={"session_id": approval.session_id})
    ).content.decode()
    assert "Send the renewal email to ACME?" in session_html
    assert "data-decide" not in session_html

    response = _decide(viewer_client, approval, "send")

    assert response.status_code == 403
    assert SessionApproval.objects.get(pk=approval.pk).status == ApprovalStatus.PENDING


def test_an_operator_approves_with_an_option_and_a_comment(operator_client):
    approval = _ask()
    html = operator_client.get(OVERVIEW).content.decode()
    assert 'data-option="send"' in html
    assert "data-reject" in html
    assert "csrfmiddlewaretoken" in html

    response = _decide(operator_client, approval, "hold", "After the renewal call")

    assert response.status_code == 302
    assert response["Location"] == reverse(
        "dashboard:session", kwargs={"session_id": approval.session_id}
    )
    decided = SessionApproval.objects.get(pk=approval.pk)
    assert (decided.status, decided.decision, decided.comment) == (
        ApprovalStatus.APPROVED,
        "hold",
        "After the renewal call",
    )
    assert decided.decided_by == "staff:olivia"
    event = AuditEvent.objects.get(action="approve_approval")
    assert event.actor == "staff:olivia"
    page = operator_client.get(response["Location"]).content.decode()
    assert "After the renewal call" in page
    assert 'data-approval-status="approved"' in page


def test_an_operator_rejects_from_the_overview_and_returns_there(operator_client):
    approval = _ask()
    response = _decide(operator_client, approval, "reject", "Not now", next="overview")
    assert response["Location"] == OVERVIEW
    decided = SessionApproval.objects.get(pk=approval.pk)
    assert (decided.status, decided.decision) == (ApprovalStatus.REJECTED, None)


def test_deciding_twice_says_why_instead_of_failing(operator_client):
    approval = _ask()
    _decide(operator_client, approval, "send")
    response = _decide(operator_client, approval, "hold")
    assert response.status_code == 302
    page = operator_client.get(response["Location"]).content.decode()
    assert "approved already" in page
    assert SessionApproval.objects.get(pk=approval.pk).decision == "send"


def test_a_decision_that_is_not_an_option_is_refused_with_a_message(operator_client):
    approval = _ask()
    response = _decide(operator_client, approval, "maybe")
    page = operator_client.get(response["Location"]).content.decode()
    assert "is not one of the options" in page
    assert SessionApproval.objects.get(pk=approval.pk).status == ApprovalStatus.PENDING


def test_deciding_is_a_post_only(operator_client):
    approval = _ask()
    url = reverse("dashboard:approval_decide", kwargs={"approval_id": approval.pk})
    assert operator_client.get(url).status_code == 405


def test_a_post_with_no_button_changes_nothing_and_says_so(operator_client):
    approval = _ask()
    url = reverse("dashboard:approval_decide", kwargs={"approval_id": approval.pk})
    response = operator_client.post(url, {"comment": "hm"})
    page = operator_client.get(response["Location"]).content.decode()
    assert "Choose an option, or reject." in page
    assert SessionApproval.objects.get(pk=approval.pk).status == ApprovalStatus.PENDING
